//! Step-level tests, and the fixtures the per-file tests share.

use super::{step_terms, Efficiency, Machine, Shape, StepBreakdown};
use crate::hardware::{Catalog, Precision};
use crate::parallelism::{Layout, Recompute};
use crate::workload::{preset, AttentionKernel, TrainingSetup};
use approx::assert_relative_eq;

/// GPT-3 175B on `chips` H100s with `layout` (validated), batch 512 of 2048 tokens, BF16.
pub(super) fn setup_for(layout: Layout, chips: u64) -> (Shape, Machine) {
    setup_with(layout, chips, |_| {})
}

/// As [`setup_for`], with the training setup adjusted by `adjust` first.
pub(super) fn setup_with(
    layout: Layout,
    chips: u64,
    adjust: impl FnOnce(&mut TrainingSetup),
) -> (Shape, Machine) {
    let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cluster = c
        .cluster("h100-sxm", chips)
        .unwrap_or_else(|e| panic!("{e}"));
    let model = preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"));
    let mut setup =
        TrainingSetup::new(512, 2048, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    adjust(&mut setup);
    layout
        .validate(&model, &cluster, &setup, false)
        .unwrap_or_else(|e| panic!("{e}"));
    (
        Shape::new(&model, &setup, &layout),
        Machine::new(&cluster, Precision::Bf16).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// tp 8, dp 8, the given pipeline, selective recompute, sequence parallelism, ZeRO-1.
pub(super) fn layout(pp: u32, v: u32) -> Layout {
    Layout {
        tp: 8,
        pp,
        dp: 8,
        cp: 1,
        ep: 1,
        microbatch: 1,
        virtual_stages: v,
        recompute: Recompute::Selective,
        sequence_parallel: true,
        zero: 1,
        zero_group: 0,
    }
}

/// The step at the prior.
fn step(s: &Shape, m: &Machine) -> StepBreakdown {
    step_terms(s, m).breakdown(&Efficiency::PRIOR.to_theta())
}

/// Narayanan et al. 2021: interleaving v chunks divides the bubble by v.
#[test]
fn interleaving_divides_the_bubble() {
    let (s1, m) = setup_for(layout(8, 1), 512);
    let (s2, _) = setup_for(layout(8, 2), 512);
    let b1 = step(&s1, &m).bubble.seconds();
    let b2 = step(&s2, &m).bubble.seconds();
    // The per-stage work is the same up to the extra point-to-point of the second chunk.
    assert_relative_eq!(b2 / b1, 0.5, max_relative = 0.01);
    assert!(b1 > 0.0);
}

/// The parts of the breakdown add up to the step.
#[test]
fn breakdown_adds_up() {
    let (s, m) = setup_for(layout(4, 1), 256);
    let b = step(&s, &m);
    let sum = b.matmul
        + b.memory_bound
        + b.kernel_overhead
        + b.tp_comm
        + b.cp_comm
        + b.ep_comm
        + b.pp_comm
        + b.dp_comm
        + b.bubble
        + b.optimizer;
    assert_relative_eq!(sum.seconds(), b.step.seconds(), max_relative = 1e-9);
    let by_level = b.scale_up_comm + b.scale_out_comm;
    let by_kind = b.tp_comm + b.cp_comm + b.ep_comm + b.pp_comm + b.dp_comm;
    assert_relative_eq!(by_level.seconds(), by_kind.seconds(), max_relative = 1e-9);
}

/// Without overlap, all data-parallel traffic is exposed; with it, no more than that.
#[test]
fn dp_overlap_only_hides_traffic() {
    let (mut s, m) = setup_for(layout(4, 1), 256);
    let hidden = step(&s, &m).dp_comm;
    s.dp_overlap = false;
    let exposed = step(&s, &m).dp_comm;
    assert!(
        exposed.seconds() > 0.0 && hidden < exposed,
        "{hidden} vs {exposed}"
    );
}

/// Twice the peak FLOP/s never makes a step slower, and makes matmuls exactly twice as fast.
#[test]
fn faster_matmuls_never_slow_the_step() {
    let mut fsdp = layout(1, 1);
    fsdp.pp = 1;
    fsdp.dp = 32;
    fsdp.zero = 3;
    let cases = [
        (layout(4, 1), 256, AttentionKernel::Flash),
        (layout(8, 2), 512, AttentionKernel::Unfused),
        (fsdp, 256, AttentionKernel::Flash),
    ];
    for (l, chips, attention) in cases {
        let (s, m) = setup_with(l, chips, |t| t.attention = attention);
        let fast = Machine {
            peak_linear: m.peak_linear * 2.0,
            peak_bf16: m.peak_bf16 * 2.0,
            ..m
        };
        let (slow, quick) = (step(&s, &m), step(&s, &fast));
        assert!(quick.step <= slow.step, "{} > {}", quick.step, slow.step);
        assert_relative_eq!(
            quick.matmul.seconds(),
            slow.matmul.seconds() / 2.0,
            max_relative = 1e-12
        );
    }
}

/// A small deterministic generator (xorshift64*), so the property test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// HFU counts the FLOPs the kernels execute, and model FLOPs over the causal half never exceed
/// them: over ≥ 100,000 random valid configurations (presets, chips, sizes, contexts of 1K to
/// 128K, layouts from the search) both stay finite and at most 1 at the shipped calibration.
#[test]
fn hfu_and_causal_mfu_never_exceed_one() {
    use super::evaluate;
    use crate::calibration::Calibration;
    use crate::parallelism::LayoutConstraints;
    use crate::request::SetupRequest;
    use crate::sweep::{candidates, SearchSpace};

    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let calibration = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let models = crate::workload::presets().unwrap_or_else(|e| panic!("{e}"));
    let chips_ids = [
        "h100-sxm",
        "a100-80gb",
        "gb300",
        "tpu-v5p",
        "ironwood",
        "trn2",
        "trn3",
    ];
    let space = SearchSpace::default();
    let pinned = LayoutConstraints::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut checked, mut worst_hfu, mut worst_mfu) = (0usize, 0.0f64, 0.0f64);
    let mut setups = 0;
    while checked < 100_000 {
        setups += 1;
        assert!(setups < 100_000, "too few valid configurations: {checked}");
        let model = &models[rng.below(models.len())];
        let id = rng.pick(&chips_ids);
        let chips = rng.pick(&[8u64, 16, 32, 64, 72, 128, 144, 256, 512, 1024, 2048, 4096]);
        let cluster = match catalog.cluster(id, chips) {
            Ok(c) => c,
            Err(_) => continue,
        };
        let seq = 1024 * (1 + rng.below(128)) as i64;
        let request = SetupRequest {
            global_batch: Some(1 << (4 + rng.below(8))),
            seq_len: Some(seq),
            tokens: Some(1e12),
            precision: Some(rng.pick(&[Precision::Bf16, Precision::Fp8])),
            attention: Some(rng.pick(&[AttentionKernel::Flash, AttentionKernel::Unfused])),
            ..SetupRequest::default()
        };
        let setup = match request.resolve("setup", model) {
            Ok(s) => s,
            Err(_) => continue,
        };
        let Ok(machine) = Machine::new(&cluster, setup.precision) else {
            continue;
        };
        let eff = calibration.for_chip(&cluster.chip).1;
        let layouts = candidates(model, &cluster, &setup, &pinned, &space);
        // A random sample of each setup's layouts, so that many setups are covered.
        for _ in 0..layouts.len().min(300) {
            let layout = layouts[rng.below(layouts.len())];
            if layout.validate(model, &cluster, &setup, false).is_err() {
                continue;
            }
            let p = evaluate(&Shape::new(model, &setup, &layout), &machine).predict(&eff);
            let what = || format!("{} on {chips} {id}, seq {seq}: {layout:?}", model.id);
            assert!(
                p.hfu.is_finite() && p.hfu > 0.0,
                "{}: HFU {}",
                what(),
                p.hfu
            );
            assert!(p.mfu_causal.is_finite(), "{}", what());
            assert!(p.hfu <= 1.0, "{}: HFU {}", what(), p.hfu);
            assert!(
                p.mfu_causal <= p.hfu,
                "{}: causal MFU {}",
                what(),
                p.mfu_causal
            );
            worst_hfu = worst_hfu.max(p.hfu);
            worst_mfu = worst_mfu.max(p.mfu);
            checked += 1;
        }
    }
    // The sample reaches long contexts where the full-square MFU passes 1.
    assert!(
        worst_hfu > 0.3 && worst_mfu > 1.0,
        "{worst_hfu} {worst_mfu}"
    );
    eprintln!(
        "{checked} configurations, {setups} setups: max HFU {worst_hfu}, max MFU {worst_mfu}"
    );
}
