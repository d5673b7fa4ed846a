//! The training model end to end: required answers, bad input, invariants (proptest),
//! determinism across thread counts.

use crate::{estimate, setup_new, L};
use approx::assert_relative_eq;
use proptest::prelude::*;
use xpusim::report::Row;
use xpusim::{
    preset, Calibration, Catalog, Error, Feasibility, Model, Precision, Recompute, Scenario,
};

fn catalog() -> Catalog {
    Catalog::builtin().unwrap_or_else(|e| panic!("{e}"))
}
fn cal() -> Calibration {
    Calibration::shipped().unwrap_or_else(|e| panic!("{e}"))
}
fn model(id: &str) -> Model {
    preset(id).unwrap_or_else(|e| panic!("{e}"))
}
fn layout(tp: u32, pp: u32, dp: u32) -> L {
    L {
        tp,
        pp,
        dp,
        cp: 1,
        ep: 1,
        microbatch: 1,
        virtual_stages: 1,
        recompute: Recompute::Selective,
        sequence_parallel: tp > 1,
        zero: 1,
        zero_group: 0,
    }
}

#[test]
fn gpt3_on_1024_a100_llama405b_on_16k_h100_and_a_million_trn3() {
    let c = catalog();
    let cases = [
        (
            "gpt3-175b",
            "a100-80gb",
            1024_u64,
            layout(8, 8, 16),
            1536_u64,
            Precision::Bf16,
        ),
        (
            "llama3-405b",
            "h100-sxm",
            16384,
            layout(8, 16, 128),
            2048,
            Precision::Bf16,
        ),
        (
            "llama3-405b",
            "trn3",
            1_000_000,
            layout(8, 125, 1000),
            16000,
            Precision::Fp8,
        ),
    ];
    for (m, hw, chips, l, gbs, prec) in cases {
        let model = model(m);
        let cluster = c.cluster(hw, chips).unwrap_or_else(|e| panic!("{e}"));
        let setup = setup_new(gbs, model.seq_len, 1e12, prec).unwrap_or_else(|e| panic!("{e}"));
        let e = estimate(&model, &l, &cluster, &setup, &cal())
            .unwrap_or_else(|e| panic!("{m} on {hw}: {e}"));
        let p = &e.prediction;
        assert!(p.step_time.is_finite() && p.step_time.seconds() > 0.0);
        assert!(p.mfu > 0.0 && p.mfu < 1.0, "{m}: mfu {}", p.mfu);
        let json = serde_json::to_value(Row::new(hw, &e)).unwrap_or_else(|e| panic!("{e}"));
        for key in crate::ROW_KEYS {
            assert!(json.get(key).is_some(), "JSON lacks {key}");
        }
        for key in [
            "tp",
            "pp",
            "dp",
            "cp",
            "ep",
            "microbatch",
            "recompute",
            "zero",
        ] {
            assert!(json["layout"].get(key).is_some(), "JSON layout lacks {key}");
        }
    }
}

/// The time of one GEMM `m×k · k×n` on an H100 at the prior's efficiency, by hand: 132 SMs of
/// 128×256×64 tiles (`xpusim::MatrixUnits`), quantized to whole tiles and waves, or its operand
/// and output traffic at 3.35 TB/s when that is longer.
fn h100_gemm_s(m: f64, n: f64, k: f64) -> f64 {
    let tiles = (m / 128.0).ceil() * (n / 256.0).ceil();
    let work = (tiles / 132.0).ceil() * 132.0 * 128.0 * 256.0 * (k / 64.0).ceil() * 64.0;
    let compute = 2.0 * work / 989.4e12;
    let traffic = 2.0 * (m * k + k * n + m * n) / 3.35e12;
    compute.max(traffic) / 0.80
}

/// Hand calculation: one H100, a tiny dense model, BF16, no communication. The step is the sum
/// of the basis terms at θ; matmul time is each GEMM's quantized roofline (forward, data and
/// weight gradient of every linear layer and of the logits) plus the attention core's FLOPs and
/// softmax exponentials, over the prior's efficiency.
#[test]
fn single_chip_matmul_time_is_flops_over_efficient_peak() {
    let c = catalog();
    let m = model("gpt3-175b");
    let mut small = m.clone();
    small.layers = 2;
    small.d_model = 1024;
    small.heads = 8;
    small.kv_heads = 8;
    small.head_dim = 128;
    small.ffn = 4096;
    small.vocab = 1000;
    let cluster = c.cluster("h100-sxm", 1).unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(8, 512, 1e9, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let mut l = layout(1, 1, 1);
    l.recompute = Recompute::None;
    let e = estimate(&small, &l, &cluster, &setup, &Calibration::prior())
        .unwrap_or_else(|e| panic!("{e}"));
    let b = &e.prediction.breakdown;
    // Eight micro-batches of 512 tokens; per linear layer (k, n): forward t×k·k×n, data
    // gradient t×n·n×k, weight gradient k×t·t×n.
    let t = 512.0;
    let linear =
        |k: f64, n: f64| h100_gemm_s(t, n, k) + h100_gemm_s(t, k, n) + h100_gemm_s(k, n, t);
    let layer = linear(1024.0, 3072.0)
        + linear(1024.0, 1024.0)
        + linear(1024.0, 4096.0)
        + linear(4096.0, 1024.0);
    // Per layer, QK^T and AV over 512 keys and 2,048 query/value widths; flash attention skips
    // the masked half and does 2.5x forward in backward; one exponential per score of the
    // causal half (8 heads x 512 keys per token) in forward and again in backward at H100's
    // 3.9 Texp/s; all at the attention kernel's efficiency.
    let core = (2.0 * 512.0 * 2048.0 * t * 0.5 * 3.5 / 989.4e12
        + 2.0 * 8.0 * 512.0 * t * 0.5 / 3.9e12)
        / 0.65;
    let expect = 8.0 * (2.0 * (layer + core) + linear(1024.0, 1000.0));
    assert_relative_eq!(b.matmul.seconds(), expect, max_relative = 1e-9);
    // The small GEMMs run below the prior's efficiency: tiles and waves left partly idle.
    let flops = 8.0 * (2.0 * 3.0 * 2.0 * t * (4.0 + 2.0 * 4.0) * 1024.0 * 1024.0);
    assert!(b.matmul.seconds() > flops / (0.80 * 989.4e12));
    assert!(
        b.tp_comm.seconds().abs() < 1e-15
            && b.dp_comm.seconds().abs() < 1e-15
            && b.bubble.seconds().abs() < 1e-15
    );
}

#[test]
fn a_layout_that_does_not_divide_the_cluster_is_an_error() {
    let c = catalog();
    let cluster = c
        .cluster("h100-sxm", 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(1024, 2048, 1e9, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let err = estimate(
        &model("gpt3-175b"),
        &layout(8, 8, 16),
        &cluster,
        &setup,
        &cal(),
    )
    .err()
    .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("does not equal the cluster's 1000 chips")),
        "{err:?}"
    );
}

#[test]
fn tp_outside_the_scale_up_domain_is_refused_unless_allowed() {
    let c = catalog();
    let cluster = c.cluster("h100-sxm", 256).unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(256, 2048, 1e9, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let l = layout(16, 1, 16);
    let err = estimate(&model("gpt3-175b"), &l, &cluster, &setup, &cal())
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("scale-up domain")),
        "{err:?}"
    );
    assert!(crate::estimate_with(&model("gpt3-175b"), &l, &cluster, &setup, &cal(), true).is_ok());
}

#[test]
fn model_divisibility_and_batch_errors_are_reported_together() {
    let c = catalog();
    let cluster = c
        .cluster("h100-sxm", 7 * 8)
        .unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(100, 2048, 1e9, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let mut l = layout(7, 1, 8);
    l.sequence_parallel = true;
    let err = estimate(&model("gpt3-175b"), &l, &cluster, &setup, &cal())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("heads do not divide by tp 7"), "{err}");
    assert!(err.contains("not a multiple of dp x microbatch"), "{err}");
}

#[test]
fn a_format_the_chip_lacks_is_an_error() {
    let c = catalog();
    let cluster = c.cluster("a100-80gb", 8).unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(8, 2048, 1e9, Precision::Fp8).unwrap_or_else(|e| panic!("{e}"));
    let err = estimate(
        &model("llama3-8b"),
        &layout(8, 1, 1),
        &cluster,
        &setup,
        &cal(),
    )
    .err()
    .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("no fp8 figure")),
        "{err:?}"
    );
}

#[test]
fn a_model_that_does_not_fit_is_a_result_not_an_error() {
    let c = catalog();
    let cluster = c.cluster("h100-sxm", 8).unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(8, 8192, 1e9, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let e = estimate(
        &model("llama3-405b"),
        &layout(8, 1, 1),
        &cluster,
        &setup,
        &cal(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(e.feasibility, Feasibility::Infeasible(ref r) if r.contains("h100-sxm has 80.0 GB"))
    );
    assert!(e.prediction.step_time.is_finite());
}

#[test]
fn zero_sizes_are_refused() {
    assert!(matches!(
        setup_new(0, 2048, 1e9, Precision::Bf16),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        setup_new(8, 2048, -1.0, Precision::Bf16),
        Err(Error::Input { .. })
    ));
    assert!(catalog().cluster("trn3", 0).is_err());
}

const SCENARIO: &str = r#"
schema_version = 1
name = "t"
[model]
preset = "llama3-8b"
[training]
global_batch = 64
tokens = 1e9
precision = "bf16"
[[hardware]]
id = "h100-sxm"
chips = [8, 16]
"#;

fn scenario_err(text: &str) -> String {
    match Scenario::parse("s.toml", text, &catalog()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn scenario_bad_input_names_file_key_and_reason() {
    let e = scenario_err(&SCENARIO.replace("tokens = 1e9", "tokens = 1e9\nepochs = 3"));
    assert!(
        e.contains("s.toml") && e.contains("training") && e.contains("unknown field `epochs`"),
        "{e}"
    );
    let e = scenario_err(&SCENARIO.replace("chips = [8, 16]", "chips = [0]"));
    assert!(
        e.contains("s.toml") && e.contains("hardware[0].chips") && e.contains("at least 1"),
        "{e}"
    );
    let e = scenario_err(&SCENARIO.replace("global_batch = 64", "global_batch = -4"));
    assert!(e.contains("training.global_batch"), "{e}");
    let e = scenario_err(&SCENARIO.replace("id = \"h100-sxm\"", "id = \"h1000\""));
    assert!(
        e.contains("hardware[0].id") && e.contains("unknown chip or system `h1000`"),
        "{e}"
    );
    let e = scenario_err(&format!("{SCENARIO}\n[layout]\ntp = -2\n"));
    assert!(e.contains("layout.tp"), "{e}");
}

#[test]
fn scenario_rows_keep_file_order_and_report_unrunnable_cases() {
    let text = format!("{SCENARIO}\n[layout]\ntp = 8\npp = 1\n");
    let s = Scenario::parse("s.toml", &text, &catalog()).unwrap_or_else(|e| panic!("{e}"));
    let rows = s.run(&cal(), &Default::default());
    assert_eq!(rows.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(
        rows.iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|(c, _)| c.cluster.chips)
            .collect::<Vec<_>>(),
        vec![8, 16]
    );
    assert!(rows.iter().all(|(_, r)| matches!(r, Ok((_, Ok(_))))));
}

/// Searches give bitwise-identical results with 1, 2 and 8 threads.
#[test]
fn layout_search_is_deterministic_across_thread_counts() {
    let m = model("llama3-70b");
    let cluster = crate::cluster("h100-sxm", 512).unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(512, 8192, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let job = xpusim::Job::new(m, setup, cluster);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let s = pool
            .install(|| xpusim::search(&job, &Default::default(), &cal()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.considered > 100);
        std::iter::once(&s.best)
            .chain(&s.runner_ups)
            .map(|e| {
                (
                    e.layout.to_string(),
                    e.prediction.step_time.seconds().to_bits(),
                )
            })
            .collect::<Vec<_>>()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(8));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Full recompute of a block of layers per pipeline chunk, over random depths, pipelines,
    /// interleavings and splits: one more recomputed layer never raises the activations and
    /// never lowers the recompute time or the FLOPs executed; no block at all (0) keeps no
    /// fewer activations than any block.
    #[test]
    fn more_recomputed_layers_never_raise_activations(
        layers in 8_u32..128, pp_log in 0_u32..4, v_log in 0_u32..3, one_fewer in any::<bool>(), pick in 0_u32..64,
    ) {
        let pp = 1_u32 << pp_log;
        let v = if pp > 1 { 1_u32 << v_log } else { 1 };
        prop_assume!(layers >= pp * v);
        let mut m = model("llama3-8b");
        m.layers = layers;
        let chips = u64::from(8 * pp);
        let cluster = catalog().cluster("h100-sxm", chips).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let setup = xpusim::SetupRequest {
            global_batch: Some(i64::from(4 * pp)),
            seq_len: Some(4096),
            tokens: Some(1e12),
            pipeline_split: Some(if one_fewer { xpusim::PipelineSplit::OneFewerAtEnds } else { xpusim::PipelineSplit::Even }),
            ..Default::default()
        }
        .resolve("", &m)
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let job = xpusim::Job::new(m, setup, cluster);
        let at = |n: u32| {
            let l = xpusim::LayoutRequest {
                tp: Some(8),
                pp: Some(i64::from(pp)),
                virtual_stages: Some(i64::from(v)),
                recompute_layers: Some(i64::from(n)),
                ..Default::default()
            }
            .resolve("layout")
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            xpusim::run(&job, &l, &cal())
                .map(|a| a.estimate.prediction)
                .map_err(|e| TestCaseError::fail(e.to_string()))
        };
        let chunk = match (one_fewer && pp > 1, pp == 2 && v == 1) {
            // Two stages of one chunk: both are ends, each one layer short.
            (true, true) => (layers + 2).div_ceil(pp * v) - 1,
            (true, false) => (layers + 2).div_ceil(pp * v),
            _ => layers.div_ceil(pp * v),
        };
        let n = pick % chunk;
        let (a, b) = (at(n)?, at(n + 1)?);
        // Within rounding: with one pipeline rank the first recomputed layer's saving is
        // exactly the working set it adds back.
        let tol = 1.0 + 1e-12;
        prop_assert!(b.memory.activations.bytes() <= a.memory.activations.bytes() * tol);
        prop_assert!(b.breakdown.recompute >= a.breakdown.recompute);
        prop_assert!(b.hfu * b.step_time.seconds() >= a.hfu * a.step_time.seconds() * (1.0 - 1e-12));
        let none = at(0)?;
        prop_assert!(none.memory.activations.bytes() * tol >= b.memory.activations.bytes());
        // Beyond the largest chunk is refused, not clamped.
        prop_assert!(at(chunk + 1).is_err());
    }

    /// More chips never lower peak FLOP/s.
    #[test]
    fn more_chips_never_lower_peak(a in 1_u64..2_000_000, b in 1_u64..2_000_000, pick in 0_usize..16) {
        let c = catalog();
        let chip = &c.chips()[pick % c.chips().len()];
        let p = Precision::ALL.iter().copied().find(|p| chip.peak(*p).is_some());
        prop_assume!(p.is_some() && chip.hbm_capacity.is_some() && chip.hbm_bandwidth.is_some());
        let p = p.unwrap_or(Precision::Bf16);
        let (lo, hi) = (a.min(b), a.max(b));
        let tl = xpusim::hardware::totals(chip, lo, p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let th = xpusim::hardware::totals(chip, hi, p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(th.peak >= tl.peak);
        prop_assert!(th.hbm_capacity >= tl.hbm_capacity);
    }

    /// Step time is positive and finite, MFU within (0, 1], over random valid configurations.
    #[test]
    fn step_time_is_positive_and_finite(
        layers in 2_u32..96, width in 8_u64..128, heads_log in 3_u32..7, gqa in 0_u32..3, ffn_mult in 2_u64..5,
        chips_log in 0_u32..12, gbs_mult in 1_u64..8, seq_log in 9_u32..14, pick in 0_usize..3, idx in 0_usize..10_000,
    ) {
        let heads = 1_u32 << heads_log;
        let d = width * 128;
        let mut m = model("llama3-8b");
        m.layers = layers;
        m.d_model = d;
        m.heads = heads;
        m.kv_heads = heads >> gqa;
        m.head_dim = d / heads as u64;
        m.ffn = ffn_mult * d;
        let hw = ["h100-sxm", "tpu-v5p", "trn2"][pick];
        let chips = 1_u64 << chips_log;
        let c = catalog();
        let cluster = c.cluster(hw, chips).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let setup = setup_new(chips * gbs_mult, 1 << seq_log, 1e12, Precision::Bf16).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let space = xpusim::SearchSpace { max_virtual: 2, ..Default::default() };
        let job = xpusim::Job::new(m, setup, cluster);
        let found = xpusim::search_in(&job, &Default::default(), &cal(), &space);
        prop_assume!(found.is_ok());
        let found = found.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let e = found.runner_ups.get(idx % (found.runner_ups.len() + 1)).unwrap_or(&found.best).clone();
        let l = e.layout;
        let p = e.prediction;
        prop_assert!(p.step_time.is_finite() && p.step_time.seconds() > 0.0, "{l}: {}", p.step_time);
        prop_assert!(p.mfu > 0.0 && p.mfu <= 1.0, "{l}: mfu {}", p.mfu);
        prop_assert!(p.memory.total().is_finite() && p.memory.total().bytes() > 0.0);
        prop_assert!(e.train_time.is_finite() && e.chip_hours.is_finite());
    }

    /// Weak scaling by data parallelism never lowers throughput.
    #[test]
    fn adding_data_parallel_replicas_never_lowers_throughput(dp_log in 0_u32..10, tp_log in 0_u32..4) {
        let c = catalog();
        let m = model("llama3-8b");
        let tp = 1_u32 << tp_log;
        let tput = |dp: u32| -> Result<f64, TestCaseError> {
            let cluster = c.cluster("h100-sxm", (tp * dp) as u64).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let setup = setup_new(dp as u64 * 4, 8192, 1e12, Precision::Bf16).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut l = layout(tp, 1, dp);
            l.microbatch = 1;
            estimate(&m, &l, &cluster, &setup, &cal()).map(|e| e.prediction.tokens_per_second).map_err(|e| TestCaseError::fail(e.to_string()))
        };
        let dp = 1_u32 << dp_log;
        prop_assert!(tput(dp * 2)? >= tput(dp)?);
    }

    /// Energy equals power times time; costs are never negative.
    #[test]
    fn energy_is_power_times_time_and_costs_are_non_negative(
        watts in 1.0_f64..5000.0, chips in 1_u64..2_000_000, hours in 0.0_f64..1e5, pue in 1.0_f64..2.0,
        price in 0.0_f64..100.0, chip_hours in -1e9_f64..1e12,
    ) {
        use xpusim::units::{Seconds, UsdPerChipHour, Watts};
        let f = xpusim::Facility { pue, grid_kg_co2_per_kwh: 0.4 };
        let e = f.energy(Watts::new(watts), chips, Seconds::new(hours * 3600.0));
        // Independently: kW x hours = kWh; x PUE; in joules (3.6e6 J per kWh).
        let expect_j = watts / 1e3 * chips as f64 * hours * pue * 3.6e6;
        prop_assert!((e.joules() - expect_j).abs() <= 1e-9 * expect_j.max(1.0));
        let c = xpusim::cost(chip_hours, UsdPerChipHour::new(price)).usd();
        prop_assert!(c >= 0.0);
        if chip_hours > 0.0 {
            prop_assert!((c - chip_hours * price).abs() <= 1e-9 * (chip_hours * price).max(1.0));
        }
    }

    /// A calibration survives a TOML round trip.
    #[test]
    fn calibration_round_trips(scale in 0.5_f64..1.0) {
        let mut cal = cal();
        for g in cal.groups.values_mut() {
            g.efficiency.matmul *= scale;
        }
        let text = cal.to_toml().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("xpusim-cal-{}-{}.toml", std::process::id(), scale.to_bits()));
        xpusim::io::OutputPath::check(&dir, &[]).and_then(|o| o.write(text.as_bytes())).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Calibration::load(&dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = std::fs::remove_file(&dir);
        prop_assert_eq!(back, cal);
    }
}

/// Hybrid sharding: ZeRO state sharded inside groups of `zero_group` ranks, replicated across
/// them; memory divides by the group, not by all data-parallel ranks.
#[test]
fn zero_group_shards_memory_within_the_group_only() {
    let c = catalog();
    let m = model("llama3-70b");
    let cluster = c.cluster("h100-sxm", 256).unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(256, 8192, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let mut full = layout(1, 1, 256);
    full.zero = 3;
    let mut hybrid = full;
    hybrid.zero_group = 8;
    let a = estimate(&m, &full, &cluster, &setup, &cal()).unwrap_or_else(|e| panic!("{e}"));
    let b = estimate(&m, &hybrid, &cluster, &setup, &cal()).unwrap_or_else(|e| panic!("{e}"));
    assert_relative_eq!(
        b.prediction.memory.optimizer.bytes() / a.prediction.memory.optimizer.bytes(),
        256.0 / 8.0,
        max_relative = 1e-12
    );
    assert_relative_eq!(
        b.prediction.memory.weights.bytes() / a.prediction.memory.weights.bytes(),
        256.0 / 8.0,
        max_relative = 1e-12
    );
    let mut bad = hybrid;
    bad.zero_group = 7;
    let err = estimate(&m, &bad, &cluster, &setup, &cal())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("layout.zero_group") && err.contains("7 does not divide"),
        "{err}"
    );
}

/// Issue 8: a searched layout on every shipped preset and chip family never shows an MFU above
/// the best measured MFU of the fit it uses plus that fit's rms error without saying so in its
/// extrapolation flags (the flag names the ceiling).
#[test]
fn searched_mfu_above_the_fitted_ceiling_is_flagged() {
    let (cat, cal) = (catalog(), cal());
    let presets = xpusim::presets().unwrap_or_else(|e| panic!("{e}"));
    let mut flagged = 0;
    for hw in [
        "a100-80gb",
        "h100-sxm",
        "gb300",
        "tpu-v5p",
        "ironwood",
        "trn2",
        "trn3",
    ] {
        let cluster = cat.cluster(hw, 64).unwrap_or_else(|e| panic!("{e}"));
        for m in &presets {
            let Ok(setup) = xpusim::SetupRequest {
                global_batch: Some(256),
                tokens: Some(1e12),
                ..Default::default()
            }
            .resolve("", m) else {
                continue;
            };
            let job = xpusim::Job::new(m.clone(), setup, cluster.clone());
            let Ok(s) = xpusim::search(&job, &Default::default(), &cal) else {
                continue;
            };
            let e = &s.best;
            let ceiling = cal
                .envelope(&e.calibration_group)
                .map_or(0, |env| env.mfu_bp);
            assert!(ceiling > 0, "{hw}: the shipped fit records its best MFU");
            if e.prediction.mfu * 1e4 > ceiling as f64 + 0.5 {
                flagged += 1;
                assert!(
                    e.extrapolation.iter().any(|x| x.starts_with("MFU")),
                    "{} on {hw}: MFU {:.3} above {ceiling} bp without a flag: {:?}",
                    m.id,
                    e.prediction.mfu,
                    e.extrapolation
                );
            }
        }
    }
    // Small models on one node do exceed every published MFU in the search: they are flagged.
    assert!(flagged > 0);
}

/// Issue 8: the MoE fixed cost is learnt only from MoE runs. A fit with none (Ampere, TPU v5,
/// Trainium: dense runs only) keeps the prior; the fit with MoE runs moves off it.
#[test]
fn an_uninformed_moe_fixed_cost_stays_at_its_prior() {
    let cal = cal();
    let prior = xpusim::Efficiency::PRIOR.moe_fixed_us;
    for g in ["trainium", "nvidia-ampere", "tpu-v5"] {
        let (_, eff) = cal.for_group(g, "");
        assert!((eff.moe_fixed_us - prior).abs() < 1e-9, "{g}: {eff:?}");
    }
    let (_, hopper) = cal.for_group("nvidia-hopper", "");
    assert!((hopper.moe_fixed_us - prior).abs() > 1e-6, "{hopper:?}");
}

/// Issue 8: no prior exceeds a fitted sibling. Trainium's fit has no FP8 run, so FP8 matmuls get
/// less than its fitted BF16 fraction (in the priors' proportion), and on Trn1, whose FP8 and
/// BF16 peaks are equal, FP8 is not faster than BF16.
#[test]
fn an_unfitted_fp8_prior_never_beats_the_fitted_bf16() {
    let cal = cal();
    for g in ["trainium", "nvidia-ampere", "tpu-v5"] {
        let (_, eff) = cal.for_group(g, "");
        assert!(eff.matmul_low <= eff.matmul + 1e-12, "{g}: {eff:?}");
    }
    let cluster = catalog()
        .cluster("trn1", 32)
        .unwrap_or_else(|e| panic!("{e}"));
    let step = |precision: Precision| {
        let setup = setup_new(64, 4096, 1e9, precision).unwrap_or_else(|e| panic!("{e}"));
        let job = xpusim::Job::new(model("llama3-8b"), setup, cluster.clone());
        let l = xpusim::LayoutRequest {
            tp: Some(8),
            pp: Some(1),
            ..Default::default()
        }
        .resolve("layout")
        .unwrap_or_else(|e| panic!("{e:?}"));
        xpusim::run(&job, &l, &cal)
            .unwrap_or_else(|e| panic!("{e}"))
            .estimate
            .prediction
            .step_time
            .seconds()
    };
    assert!(step(Precision::Fp8) >= step(Precision::Bf16) * (1.0 - 1e-12));
}

/// Issue 8: a matmul format that no run of a fit informs moves from its prior in proportion to
/// the format the runs do inform. Trainium's and TPU v5's runs are all BF16, so their FP8
/// fraction follows the fitted BF16 one; a fit of FP8-only runs ties BF16 the other way;
/// Hopper, fitted on both, is left free (and shows about the priors' ratio).
#[test]
fn an_uninformed_matmul_format_follows_its_fitted_sibling() {
    let cal = cal();
    let prior = xpusim::Efficiency::PRIOR;
    let ratio = prior.matmul_low / prior.matmul;
    for g in ["trainium", "tpu-v5"] {
        let (_, eff) = cal.for_group(g, "");
        assert_relative_eq!(eff.matmul_low / eff.matmul, ratio, max_relative = 1e-9);
    }
    // The other way round: B200's long-context study alone is all FP8, so a fit of it ties
    // BF16 to the fitted FP8 fraction instead of keeping the 80% prior.
    let samples: Vec<_> = xpusim::load_runs(
        &["tests/data/validation/nemo-longseq-b200.toml"],
        &catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .iter()
    .map(xpusim::Run::sample)
    .collect();
    let (_, fp8_only) = xpusim::calibrate(&samples, "test")
        .unwrap_or_else(|e| panic!("{e}"))
        .for_group("nvidia-blackwell", "");
    assert_relative_eq!(
        fp8_only.matmul_low / fp8_only.matmul,
        ratio,
        max_relative = 1e-9
    );
    assert!(fp8_only.matmul < prior.matmul - 0.05, "{fp8_only:?}");
    let (_, hopper) = cal.for_group("nvidia-hopper", "");
    assert!(
        (hopper.matmul_low / hopper.matmul - ratio).abs() > 1e-6,
        "{hopper:?}"
    );
    assert!(
        (hopper.matmul_low / hopper.matmul - ratio).abs() < 0.1,
        "{hopper:?}"
    );
}

/// Issue 8, item 1: full recompute of a block of layers per pipeline chunk, requested as a run
/// file or scenario would (`recompute_layers`), lies between keeping every activation and
/// recomputing every layer, in memory and in step time; the search finds a block where
/// keeping every activation does not fit.
#[test]
fn issue_8_block_recompute_lies_between_none_and_full() {
    let cal = cal();
    let cluster = catalog()
        .cluster("h100-sxm", 1024)
        .unwrap_or_else(|e| panic!("{e}"));
    let setup = setup_new(512, 8192, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let job = xpusim::Job::new(model("llama3-405b"), setup, cluster);
    let at = |recompute: Recompute, layers: Option<i64>| {
        let l = xpusim::LayoutRequest {
            tp: Some(8),
            pp: Some(8),
            recompute: Some(recompute),
            recompute_layers: layers,
            ..Default::default()
        }
        .resolve("layout")
        .unwrap_or_else(|e| panic!("{e:?}"));
        xpusim::run(&job, &l, &cal)
            .unwrap_or_else(|e| panic!("{e}"))
            .estimate
    };
    let (none, block, full) = (
        at(Recompute::None, None),
        at(Recompute::Full, Some(8)),
        at(Recompute::Full, None),
    );
    assert_eq!(block.layout.recompute_layers(), Some(8));
    let mem = |e: &xpusim::Estimate| e.prediction.memory.activations;
    let step = |e: &xpusim::Estimate| e.prediction.step_time;
    assert!(mem(&full) < mem(&block) && mem(&block) < mem(&none));
    assert!(step(&none) < step(&block) && step(&block) < step(&full));
    // Every layer of the 16-layer chunks is the same as full recompute.
    let all = at(Recompute::Full, Some(16));
    assert_eq!(all.prediction.step_time, full.prediction.step_time);
    assert_eq!(all.prediction.memory, full.prediction.memory);
    // Searched with full recompute pinned: a block wins, and it is the smallest that fits.
    let pinned = xpusim::LayoutRequest {
        tp: Some(8),
        pp: Some(8),
        recompute: Some(Recompute::Full),
        search_rest: Some(true),
        ..Default::default()
    }
    .resolve("layout")
    .unwrap_or_else(|e| panic!("{e:?}"));
    let found = xpusim::run(&job, &pinned, &cal)
        .unwrap_or_else(|e| panic!("{e}"))
        .estimate;
    let n = found
        .layout
        .recompute_layers()
        .unwrap_or_else(|| panic!("a block: {}", found.layout));
    assert!(found.prediction.fits_memory && n >= 1);
    assert!(found.prediction.step_time < full.prediction.step_time);
}
