//! Predictions against published training runs (tests/data/validation, copied with citations from
//! the team's compilation of papers' tables and vendor recipes).
//!
//! Tolerances (the README states the same):
//! - every run: |error| of step time <= `PER_RUN`;
//! - mean |error| over all runs <= `MEAN_ALL`;
//! - Korthikanti et al. 2022 (Selene, Table 5): mean <= `KOR22_MEAN`, max <= `KOR22_MAX`;
//! - each study predicted by a fit without it: mean <= 15% (see `HELD_OUT_MEAN`).
//! - fine-grained mixture-of-experts runs (expert FFN narrower than the model width: DeepSeek-V3,
//!   Qwen3-MoE) are held to `MOE_GAP_PER_RUN` instead of `PER_RUN` and count in every mean:
//!   their router, permutation, grouped GEMMs, dispatchers and fixed cost are priced (issue 8,
//!   item 2), but a published layout's software details (DeepEP kernels, overlap of the
//!   dispatch) still move them by up to about 40%.
//!
//! These are measured-run tolerances (tier 3 of the house style): published step times differ by
//! software version and unpublished settings; the calibration has nine parameters per chip family.

use std::path::PathBuf;
use xpusim::hardware::Catalog;
use xpusim::{calibrate as fit, Calibration};
use xpusim::{compare, load_runs, Run};

/// No run may be predicted worse than this relative step-time error.
const PER_RUN: f64 = 0.35;
/// Mean absolute relative error over every run.
const MEAN_ALL: f64 = 0.07;
/// Korthikanti et al. 2022 Selene runs: mean and max.
const KOR22_MEAN: f64 = 0.06;
const KOR22_MAX: f64 = 0.10;
/// Fine-grained MoE runs (see the module docs): the worst, Qwen3-235B at TP4 EP8 PP8, is
/// predicted 35% fast.
const MOE_GAP_PER_RUN: f64 = 0.45;

/// A fine-grained mixture-of-experts run: routed experts narrower than the model width, the
/// regime whose execution costs the step model does not price yet (issue 8, item 2).
fn fine_grained_moe(r: &Run) -> bool {
    r.model
        .moe
        .as_ref()
        .is_some_and(|m| m.expert_ffn < r.model.d_model)
}

fn runs() -> Vec<Run> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/validation");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    load_runs(&files, &catalog).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_published_run_is_predicted_within_tolerance() {
    let runs = runs();
    assert!(
        runs.len() >= 150,
        "expected the full validation set, got {}",
        runs.len()
    );
    let gap: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter(|r| fine_grained_moe(r))
        .map(|r| r.id.as_str())
        .collect();
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let cmp = compare(&runs, &cal);
    let mut worst = Vec::new();
    for c in &cmp {
        println!(
            "{:45} {:>6} measured {:9.3} s predicted {:9.3} s error {:+6.1}%",
            c.id,
            c.chips,
            c.measured_s,
            c.predicted_s,
            100.0 * c.error
        );
        assert!(
            c.predicted_s.is_finite() && c.predicted_s > 0.0,
            "{}: prediction {}",
            c.id,
            c.predicted_s
        );
        let limit = if gap.contains(c.id.as_str()) {
            MOE_GAP_PER_RUN
        } else {
            PER_RUN
        };
        if c.error.abs() > limit {
            worst.push(format!("{} {:+.1}%", c.id, 100.0 * c.error));
        }
    }
    assert!(
        worst.is_empty(),
        "runs outside ±{:.0}% (fine-grained MoE ±{:.0}%): {worst:?}",
        100.0 * PER_RUN,
        100.0 * MOE_GAP_PER_RUN
    );
    let all: Vec<f64> = cmp.iter().map(|c| c.error.abs()).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    println!(
        "mean |error| {:.2}% over {} runs ({} fine-grained MoE runs)",
        100.0 * mean,
        all.len(),
        gap.len()
    );
    assert!(
        mean <= MEAN_ALL,
        "mean |error| {:.2}% > {:.0}%",
        100.0 * mean,
        100.0 * MEAN_ALL
    );
}

#[test]
fn korthikanti_2022_selene_runs_match_closely() {
    let runs: Vec<Run> = runs()
        .into_iter()
        .filter(|r| r.id.starts_with("KOR22"))
        .collect();
    assert_eq!(runs.len(), 8);
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let cmp = compare(&runs, &cal);
    let mean = cmp.iter().map(|c| c.error.abs()).sum::<f64>() / cmp.len() as f64;
    let max = cmp.iter().fold(0.0_f64, |m, c| m.max(c.error.abs()));
    println!("KOR22 mean {:.2}% max {:.2}%", 100.0 * mean, 100.0 * max);
    assert!(
        mean <= KOR22_MEAN && max <= KOR22_MAX,
        "mean {mean:.4} max {max:.4}"
    );
}

/// The shipped calibration is what `xpusim calibrate tests/data/validation` produces.
#[test]
fn shipped_calibration_regenerates() {
    let runs = runs();
    let shipped = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let fresh = fit(
        &runs.iter().map(Run::sample).collect::<Vec<_>>(),
        &shipped.generated_by,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fresh.groups.keys().collect::<Vec<_>>(),
        shipped.groups.keys().collect::<Vec<_>>()
    );
    for (k, g) in &fresh.groups {
        let s = &shipped.groups[k];
        let (a, b) = (g.efficiency, s.efficiency);
        for (x, y) in [
            (a.matmul, b.matmul),
            (a.matmul_low, b.matmul_low),
            (a.memory, b.memory),
            (a.kernel_overhead_us, b.kernel_overhead_us),
            (a.network, b.network),
            (a.overlap_exposure, b.overlap_exposure),
            (a.latency_scale, b.latency_scale),
            (a.moe_fixed_us, b.moe_fixed_us),
        ] {
            assert!((x - y).abs() <= 1e-6 * y.abs().max(1e-6), "{k}: fitted {x} vs shipped {y}; run `xpusim calibrate tests/data/validation -o src/calibration.toml`");
        }
        assert_eq!(g.chips, s.chips, "{k}: chips with fitted runs");
    }
    // Each fit records the chips it saw: H100 and Trn1 runs are fitted, Trn3 only borrows.
    assert!(shipped.measured("nvidia-hopper", "h100-sxm"));
    assert!(shipped.measured("trainium", "trn1"));
    assert!(!shipped.measured("trainium", "trn3"));
}

/// Fitted efficiencies are physical: at most 100% of any peak.
#[test]
fn fitted_parameters_are_physical() {
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    for (k, g) in &cal.groups {
        let e = g.efficiency;
        for (name, v) in [
            ("matmul", e.matmul),
            ("matmul_low", e.matmul_low),
            ("memory", e.memory),
            ("network", e.network),
        ] {
            assert!(v > 0.0 && v <= 1.0, "{k}.{name} = {v}");
        }
        assert!((0.0..=1.0).contains(&e.overlap_exposure), "{k}");
        assert!(e.kernel_overhead_us >= 0.0, "{k}");
    }
}

/// A test problem with a known answer: runs whose "measured" times were generated by the model
/// itself at known efficiencies are fitted back to those efficiencies.
#[test]
fn the_fit_recovers_known_parameters_from_synthetic_runs() {
    use xpusim::Efficiency;
    let truth = Efficiency {
        matmul: 0.55,
        matmul_low: 0.45,
        memory: 0.6,
        kernel_overhead_us: 6.0,
        network: 0.5,
        overlap_exposure: 0.4,
        latency_scale: 1.5,
        moe_fixed_us: 120.0,
        attention: 0.5,
    };
    let mut synthetic: Vec<Run> = runs()
        .into_iter()
        .filter(|r| r.cluster.chip.id == "h100-sxm")
        .collect();
    for r in &mut synthetic {
        r.measured_step = r.evaluation.predict(&truth).step_time;
    }
    let cal = fit(
        &synthetic.iter().map(Run::sample).collect::<Vec<_>>(),
        "synthetic",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got = cal.groups["nvidia-hopper"].efficiency;
    println!("fitted {got:?}");
    // Well-determined by these runs: the matmul efficiencies (most of every step).
    assert!((got.matmul - truth.matmul).abs() < 0.01, "{got:?}");
    assert!((got.matmul_low - truth.matmul_low).abs() < 0.01, "{got:?}");
    // And the fitted model reproduces the synthetic times (within 2%: the prior still pulls the
    // weakly determined latency scale, which only the all-to-all-heavy MoE run feels).
    for r in &synthetic {
        let p = r.evaluation.predict(&got).step_time;
        assert!(
            (p / r.measured_step - 1.0).abs() < 0.02,
            "{}: {p} vs {}",
            r.id,
            r.measured_step
        );
    }
}

/// Every published run actually ran, so the memory model must not say it cannot fit: its
/// memory band is "fits" or "tight" (over HBM by less than the memory model's own error,
/// `MEMORY_MODEL_ERROR`). Frameworks trim memory in ways the model does not itemise (allocator
/// reuse, freeing inputs early, offloading), so a run that fits may be predicted a little over;
/// a large excess would be a modelling error.
/// Runs whose recompute policy xpusim cannot express are skipped: MaxText's "minimal" policy
/// (saves some matmul outputs, recomputes the MLP input projections) and "qkv_proj_offloaded"
/// (host offload); their file records the mapping as an assumption.

#[test]
fn every_published_run_fits_in_memory() {
    let runs = runs();
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let mut over = Vec::new();
    let mut checked = 0;
    for r in &runs {
        let unexpressible = r
            .assumptions
            .iter()
            .any(|a| a.contains("remat policy \"minimal\"") || a.contains("offloaded"));
        if unexpressible {
            continue;
        }
        checked += 1;
        let (_, eff) = cal.for_chip(&r.cluster.chip);
        let p = r.evaluation.predict(&eff);
        let (need, cap) = (p.memory.total().gb(), r.evaluation.hbm_capacity.gb());
        println!(
            "{:45} {need:6.1} GB of {cap:6.1} {}",
            r.id,
            p.memory_band.as_str()
        );
        if !p.memory_band.feasible() {
            over.push(format!("{} {need:.1}/{cap:.1} GB", r.id));
        }
    }
    assert!(checked >= 150, "only {checked} runs checked");
    assert!(
        over.is_empty(),
        "published runs predicted not to fit: {over:?}"
    );
}

/// Issue 8: a published run predicted a few percent over its HBM is "tight" and accepted, not a
/// hard "does not fit" (NVIDIA dgxc-benchmarking Nemotron-4 340B FP8 on 128 H100 ran; the memory
/// model puts it about 2% over 80 GB).
#[test]
fn issue_8_a_run_a_few_percent_over_is_tight_not_refused() {
    let runs = runs();
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let r = runs
        .iter()
        .find(|r| r.id == "DGXC-Nemotron-4-340B-H100-FP8-128")
        .unwrap_or_else(|| panic!("run missing"));
    let (_, eff) = cal.for_chip(&r.cluster.chip);
    let p = r.evaluation.predict(&eff);
    assert!(
        p.memory_margin < 0.0 && p.memory_margin > -xpusim::MEMORY_MODEL_ERROR,
        "{}",
        p.memory_margin
    );
    assert_eq!(p.memory_band, xpusim::MemoryBand::Tight);
    assert!(p.fits_memory);
}

/// Leave-one-study-out: each study predicted by a calibration fitted without it. A guard against
/// a calibration that only memorises its data; the README shows the per-study table.
#[test]
fn held_out_studies_are_predicted_within_tolerance() {
    /// Mean |error| over all runs when every study is held out in turn (12.7% over 214 runs).
    const HELD_OUT_MEAN: f64 = 0.15;
    let runs = runs();
    let cmp = xpusim::cross_validate(&runs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cmp.len(), runs.len());
    let all: Vec<f64> = cmp.iter().map(|c| c.error.abs()).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    println!("held-out mean |error| {:.2}%", 100.0 * mean);
    assert!(mean <= HELD_OUT_MEAN, "held-out mean |error| {mean:.4}");
}

/// A group fit from fewer than `MIN_GROUP_RUNS` runs, or a family fit from fewer than
/// `MIN_FAMILY_STUDIES` studies, does not stand in for a chip: the next, broader fit does.
#[test]
fn thin_fits_give_way_to_broader_ones() {
    let shipped = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let base = shipped.groups["global"].clone();
    let with = |runs: usize, studies: usize| xpusim::GroupFit {
        runs,
        studies,
        ..base.clone()
    };
    let mut cal = shipped.clone();
    cal.groups.clear();
    cal.groups.insert("global".into(), with(100, 10));
    cal.groups.insert("g".into(), with(1, 1));
    cal.groups.insert("f".into(), with(5, 1));
    assert_eq!(cal.for_group("g", "f").0, "global");
    cal.groups
        .insert("f".into(), with(5, xpusim::MIN_FAMILY_STUDIES));
    assert_eq!(cal.for_group("g", "f").0, "f");
    cal.groups
        .insert("g".into(), with(xpusim::MIN_GROUP_RUNS, 1));
    assert_eq!(cal.for_group("g", "f").0, "g");
}
