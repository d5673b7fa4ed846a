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
    model_setup("gpt3-175b", (512, 2048), layout, chips, adjust)
}

/// Preset `model` on `chips` H100s with `layout` (validated), `(global batch, sequence length)`,
/// BF16, the training setup adjusted by `adjust` first.
pub(super) fn model_setup(
    model: &str,
    (batch, seq): (u64, u64),
    layout: Layout,
    chips: u64,
    adjust: impl FnOnce(&mut TrainingSetup),
) -> (Shape, Machine) {
    let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cluster = c
        .cluster("h100-sxm", chips)
        .unwrap_or_else(|e| panic!("{e}"));
    let model = preset(model).unwrap_or_else(|e| panic!("{e}"));
    let mut setup =
        TrainingSetup::new(batch, seq, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
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
        recompute_modules: crate::parallelism::RecomputeModules::EMPTY,
        recompute_layers: None,
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

/// Twice the peak FLOP/s never makes a step slower, and with twice the softmax exponential rate
/// too makes matmuls (the attention kernel's exponentials included) exactly twice as fast.
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
        let peaks = Machine {
            peak_linear: m.peak_linear * 2.0,
            peak_bf16: m.peak_bf16 * 2.0,
            ..m
        };
        let fast = Machine {
            exp_rate: m.exp_rate.map(|r| r * 2.0),
            ..peaks
        };
        let (slow, quick) = (step(&s, &m), step(&s, &fast));
        assert!(step(&s, &peaks).step <= slow.step);
        assert!(quick.step <= slow.step, "{} > {}", quick.step, slow.step);
        assert_relative_eq!(
            quick.matmul.seconds(),
            slow.matmul.seconds() / 2.0,
            max_relative = 1e-12
        );
    }
}

/// The softmax's exponentials add to a fused attention kernel's time in inverse proportion to
/// the chip's exponential rate (GB300's 10.7 Texp/s against GB200's 5), are not priced without
/// a published rate, and not at all with unfused attention (whose softmax is a memory-bound
/// kernel of its own).
#[test]
fn softmax_exponentials_cost_scores_over_rate() {
    use crate::units::ExpPerSecond;
    for (attention, priced) in [
        (AttentionKernel::Flash, true),
        (AttentionKernel::Unfused, false),
    ] {
        let (s, m) = setup_with(layout(4, 1), 256, |t| t.attention = attention);
        let at = |rate: Option<f64>| {
            let m = Machine {
                exp_rate: rate.map(ExpPerSecond::new),
                ..m
            };
            (
                step(&s, &m).matmul.seconds(),
                step_terms(&s, &m).softmax_priced(),
            )
        };
        let (none, none_priced) = at(None);
        let (gb200, gb200_priced) = at(Some(5e12));
        let (gb300, _) = at(Some(10.7e12));
        assert!(!none_priced);
        assert_eq!(gb200_priced, priced);
        if priced {
            assert!(gb200 > gb300 && gb300 > none, "{gb200} {gb300} {none}");
            assert_relative_eq!(
                (gb200 - none) / (gb300 - none),
                10.7 / 5.0,
                max_relative = 1e-9
            );
        } else {
            assert_relative_eq!(gb200, none);
        }
    }
}

/// FP8 parameter gather halves the weights held and the weight all-gathers (ZeRO-1's gather of
/// updated weights, ZeRO-3's per-layer gathers), leaves the BF16 gradient reduction alone, and
/// does nothing in BF16 training.
#[test]
fn fp8_parameter_gather_halves_the_weight_bytes() {
    let theta = Efficiency::PRIOR.to_theta();
    let mut fsdp = layout(1, 1);
    fsdp.zero = 3;
    for (l, chips) in [(layout(4, 1), 256), (fsdp, 64)] {
        let run = |precision: Precision, gather: bool| {
            let (s, m) = setup_with(l, chips, |t| {
                t.precision = precision;
                t.fp8_param_gather = gather;
            });
            let weights = super::evaluate(&s, &m).memory.weights.bytes();
            (weights, step_terms(&s, &m).dp.total().at(&theta))
        };
        let (w8, dp8) = run(Precision::Fp8, false);
        let (w8g, dp8g) = run(Precision::Fp8, true);
        assert_relative_eq!(w8g, w8 / 2.0, max_relative = 1e-12);
        assert!(dp8g < dp8, "{dp8g} vs {dp8}");
        // Gradients still reduce-scatter in BF16: less than half is saved.
        assert!(dp8g > dp8 / 2.0, "{dp8g} vs {dp8}");
        let (w16, dp16) = run(Precision::Bf16, false);
        let (w16g, dp16g) = run(Precision::Bf16, true);
        assert_relative_eq!(w16g, w16);
        assert_relative_eq!(dp16g, dp16);
    }
}

/// A seeded SplitMix64 stream (Steele et al. 2014): test inputs without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// One of `xs`.
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize].clone()
    }
    /// A whole number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Valid configurations the hardware-FLOPs property checks.
const HFU_CASES: usize = 100_000;
/// Rounding slack of the HFU bound: the step is a sum of hundreds of terms.
const HFU_TOLERANCE: f64 = 1e-9;

/// Issue 8: hardware FLOPs never exceed peak. Over 100,000 random valid configurations (model
/// widths, depth, vocabulary and experts varied around every preset; layout; sequence length;
/// precision; attention kernel; load imbalance; every catalog chip with its shipped
/// calibration), HFU ≤ 1, and the causal-convention MFU never exceeds it.
#[test]
fn hardware_flops_never_exceed_peak() {
    use crate::calibration::Calibration;
    use crate::workload::presets;
    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let calibration = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let models = presets().unwrap_or_else(|e| panic!("{e}"));
    let base =
        TrainingSetup::new(64, 2048, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let chips: Vec<_> = catalog.chips().iter().map(|c| c.id.clone()).collect();
    let mut rng = SplitMix(0x8_2026);
    let (mut valid, mut tried, mut worst) = (0, 0u64, 0.0f64);
    while valid < HFU_CASES {
        tried += 1;
        assert!(
            tried < 50 * HFU_CASES as u64,
            "too few valid configurations"
        );
        let mut model = rng.pick(&models);
        model.layers = rng.range(1, 128) as u32;
        model.ffn = 256 * rng.range(1, 128);
        model.vocab = rng.range(1_000, 256_000);
        if let Some(moe) = model.moe.as_mut() {
            moe.experts = 8 * rng.range(1, 32) as u32;
            moe.active = rng.range(1, 8) as u32;
            moe.expert_ffn = 128 * rng.range(1, 64);
            moe.dense_layers = moe.dense_layers.min(model.layers - 1);
        }
        let mut setup = base.clone();
        setup.seq_len = 1 << rng.range(7, 17);
        setup.precision = rng.pick(&[Precision::Bf16, Precision::Fp8, Precision::Fp4]);
        setup.attention = rng.pick(&[AttentionKernel::Flash, AttentionKernel::Unfused]);
        setup.moe_load_imbalance = 1.0 + rng.range(0, 100) as f64 / 25.0;
        setup.ep_comm_overlap = rng.pick(&[false, true]);
        let tp = rng.pick(&[1, 2, 4, 8]);
        let mut layout = Layout {
            tp,
            pp: rng.pick(&[1, 2, 4, 8, 16]),
            dp: rng.pick(&[1, 2, 4, 8, 16, 32]),
            cp: rng.pick(&[1, 1, 2, 4]),
            ep: rng.pick(&[1, 1, 2, 4, 8]),
            microbatch: rng.pick(&[1, 2, 4, 8]),
            virtual_stages: rng.pick(&[1, 1, 2]),
            recompute: rng.pick(&[
                Recompute::None,
                Recompute::Selective,
                Recompute::Mlp,
                Recompute::Full,
            ]),
            recompute_modules: crate::parallelism::RecomputeModules::EMPTY,
            recompute_layers: None,
            sequence_parallel: tp > 1,
            zero: rng.pick(&[0, 1, 3]),
            zero_group: 0,
        };
        // A block of fully recomputed layers per chunk, or modules beyond the policy.
        if layout.recompute == Recompute::Full {
            if rng.pick(&[false, true]) {
                layout.recompute_layers = Some(rng.range(0, 16) as u32);
            }
        } else {
            use crate::parallelism::RecomputeModule as M;
            for module in [M::CoreAttn, M::Mlp, M::Moe, M::MoeAct, M::Layernorm] {
                if rng.pick(&[false, false, true]) {
                    layout.recompute_modules = layout.recompute_modules.with(module);
                }
            }
        }
        setup.global_batch = u64::from(layout.dp * layout.microbatch) * rng.range(1, 16);
        let Ok(cluster) = catalog.cluster(&rng.pick(&chips), layout.chips()) else {
            continue;
        };
        let Ok(machine) = Machine::new(&cluster, setup.precision) else {
            continue; // the chip lacks the format
        };
        if layout.validate(&model, &cluster, &setup, true).is_err() {
            continue;
        }
        valid += 1;
        let shape = Shape::new(&model, &setup, &layout);
        let (_, eff) = calibration.for_chip(&cluster.chip);
        let p = super::evaluate(&shape, &machine).predict(&eff);
        assert!(
            p.hfu <= 1.0 + HFU_TOLERANCE && p.mfu_causal <= p.hfu * (1.0 + HFU_TOLERANCE),
            "HFU {} (MFU causal {}) for {} on {} with {layout:?}, seq {}",
            p.hfu,
            p.mfu_causal,
            model.id,
            cluster.chip.id,
            setup.seq_len
        );
        worst = worst.max(p.hfu);
    }
    assert!(worst > 0.3, "the cases never come near peak: {worst}");
}

/// Offloading a share of the saved activations moves exactly that share off HBM, costs host-link
/// time, and does not fit once it overflows host memory.
#[test]
fn offload_trades_hbm_for_host_link_time() {
    use super::evaluate;
    let run = |f: f64| {
        let (s, m) = setup_with(layout(8, 1), 512, |s| s.offload_activations = f);
        (evaluate(&s, &m), m)
    };
    let (none, m) = run(0.0);
    let (half, _) = run(0.5);
    let theta = Efficiency::PRIOR.to_theta();
    assert_relative_eq!(
        half.memory.offloaded.bytes(),
        (none.memory.activations - half.memory.activations).bytes(),
        max_relative = 1e-9
    );
    assert!(half.memory.offloaded > crate::units::Bytes::ZERO);
    let (a, b) = (none.terms.breakdown(&theta), half.terms.breakdown(&theta));
    assert_relative_eq!(a.offload.seconds(), 0.0);
    assert!(b.offload > a.offload && b.step > a.step);
    // No host memory to hold it: does not fit.
    let nowhere = Machine {
        host_memory: Some(crate::units::Bytes::new(1.0)),
        ..m
    };
    let (s, _) = setup_with(layout(8, 1), 512, |s| s.offload_activations = 0.5);
    let p = evaluate(&s, &nowhere).predict(&Efficiency::PRIOR);
    assert!(!p.fits_memory);
}

/// DeepSeek-V3's multi-token-prediction module costs step time (its layer and head pass on the
/// last stage), model FLOPs and memory (its weights on the last stage); the same model without
/// it costs none of these.
#[test]
fn the_mtp_module_costs_time_flops_and_memory() {
    use crate::perf::evaluate;
    let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cluster = c
        .cluster("h100-sxm", 1024)
        .unwrap_or_else(|e| panic!("{e}"));
    let with_mtp = preset("deepseek-v3").unwrap_or_else(|e| panic!("{e}"));
    let mut without = with_mtp.clone();
    without.mtp_modules = 0;
    let setup =
        TrainingSetup::new(8192, 4096, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let l = Layout {
        tp: 2,
        pp: 16,
        dp: 32,
        ep: 64,
        ..layout(16, 1)
    };
    let machine = Machine::new(&cluster, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let eval = |m| evaluate(&Shape::new(m, &setup, &l), &machine);
    let (a, b) = (eval(&with_mtp), eval(&without));
    let (pa, pb) = (a.predict(&Efficiency::PRIOR), b.predict(&Efficiency::PRIOR));
    assert!(pa.step_time > pb.step_time);
    // The reported memory is the most loaded rank's (here the first, with the most
    // micro-batches in flight); on one stage the module's weights show.
    assert!(pa.memory.total() >= pb.memory.total());
    let one = Layout { pp: 1, ..l };
    let weights = |m| super::memory::memory(&Shape::new(m, &setup, &one)).weights;
    assert!(weights(&with_mtp) > weights(&without));
    let extra = with_mtp.training_flops_per_token(4096) - without.training_flops_per_token(4096);
    assert_relative_eq!(
        (a.model_flops - b.model_flops).flops(),
        extra.flops() * setup.tokens_per_step(),
        max_relative = 1e-9
    );
    assert!(pa.hfu <= 1.0 && pa.mfu_causal <= 1.0);
}

/// Without dropout the masks are neither written nor kept: the memory-bound traffic drops by
/// the two per-token masks and, unfused, by the score dropout's 5 bytes per score; matmuls are
/// unchanged.
#[test]
fn no_dropout_removes_the_mask_traffic() {
    let (with, m) = setup_with(layout(8, 1), 512, |s| {
        s.attention = AttentionKernel::Unfused
    });
    let mut without = with;
    without.dropout = false;
    let (a, b) = (step(&with, &m), step(&without, &m));
    assert!(b.memory_bound < a.memory_bound);
    assert_relative_eq!(b.matmul.seconds(), a.matmul.seconds(), max_relative = 1e-12);
    assert!(super::memory::memory(&without).activations < super::memory::memory(&with).activations);
}

/// MLP recompute sits between none and full: more matmul time than none, less than full, by
/// exactly the MLP's forward FLOPs in the executed count; activations between full's and none's.
#[test]
fn mlp_recompute_sits_between_none_and_full() {
    let with = |r: Recompute| {
        let mut l = layout(8, 1);
        l.recompute = r;
        setup_for(l, 512)
    };
    let (none, m) = with(Recompute::None);
    let (mlp, _) = with(Recompute::Mlp);
    let (full, _) = with(Recompute::Full);
    let (a, b, c) = (step(&none, &m), step(&mlp, &m), step(&full, &m));
    assert!(a.matmul < b.matmul && b.matmul < c.matmul);
    let mem = |s: &Shape| super::memory::memory(s).activations;
    assert!(mem(&full) < mem(&mlp) && mem(&mlp) < mem(&none));
    let ex = |s: &Shape| super::evaluate(s, &m).executed_flops.flops();
    assert_relative_eq!(
        ex(&mlp) - ex(&none),
        mlp.mlp_per_token * mlp.layers * mlp.tokens_per_step,
        max_relative = 1e-9
    );
}

/// GPT-3 175B on 512 H100s (96 layers on PP8: 12 per rank, 6 per chunk with v 2), with full
/// recompute of a block of `n` layers per chunk (`None`: every layer), under `split`.
fn block(n: Option<u32>, v: u32, split: crate::workload::PipelineSplit) -> (Shape, Machine) {
    let mut l = layout(8, v);
    l.recompute = Recompute::Full;
    l.recompute_layers = n;
    setup_with(l, 512, |s| {
        s.attention = AttentionKernel::Unfused;
        s.pipeline_split = split;
    })
}

/// Full recompute of a block of `N` layers per chunk: `N = 0` prices exactly as no recompute
/// and `N` = every layer of a chunk as full recompute (memory, step, FLOPs); in between, each
/// more recomputed layer never raises the activations (of the most loaded rank) and never
/// lowers the recompute FLOPs or time, for even and uneven pipeline splits, with and without
/// interleaving.
#[test]
fn block_recompute_interpolates_between_none_and_full() {
    use crate::perf::evaluate;
    use crate::workload::PipelineSplit;
    for split in [PipelineSplit::Even, PipelineSplit::OneFewerAtEnds] {
        for v in [1, 2] {
            let (full, m) = block(None, v, split);
            let mut none = full;
            none.layout.recompute = Recompute::None;
            none.layout.recompute_layers = None;
            let eval = |s: &Shape| evaluate(s, &m);
            let same = |a: &Shape, b: &Shape| {
                let (ea, eb) = (eval(a), eval(b));
                assert_eq!(ea.memory, eb.memory, "{split:?} v{v}");
                assert_eq!(ea.terms, eb.terms, "{split:?} v{v}");
                assert_eq!(ea.executed_flops, eb.executed_flops, "{split:?} v{v}");
                assert_eq!(ea.hardware_flops, eb.hardware_flops, "{split:?} v{v}");
            };
            let (zero, _) = block(Some(0), v, split);
            same(&zero, &none);
            let chunk = (full.layers_per_stage / f64::from(v)).ceil() as u32;
            let (all, _) = block(Some(chunk), v, split);
            same(&all, &full);
            let mut last = eval(&zero);
            for n in 1..=chunk {
                let (s, _) = block(Some(n), v, split);
                let e = eval(&s);
                assert!(e.memory.activations <= last.memory.activations, "n {n}");
                assert!(e.executed_flops >= last.executed_flops, "n {n}");
                assert!(e.hardware_flops >= last.hardware_flops, "n {n}");
                let theta = Efficiency::PRIOR.to_theta();
                let re = |e: &crate::perf::Evaluation| e.terms.recompute.at(&theta);
                assert!(re(&e) >= re(&last), "n {n}");
                last = e;
            }
            // Strictly between none and full somewhere inside.
            let (half, _) = block(Some(chunk / 2), v, split);
            let mem = |s: &Shape| eval(s).memory.activations;
            assert!(
                mem(&full) < mem(&half) && mem(&half) < mem(&none),
                "{split:?} v{v}"
            );
        }
    }
}

/// Module recompute beyond the policy: `layernorm` and, on an MoE model, `moe-act` lower the
/// activations and add memory-bound time but no matmul; the `mlp` and `moe` modules together
/// are the `mlp` policy; the `moe` module on a dense model changes nothing.
#[test]
fn recompute_modules_lower_memory_at_their_cost() {
    use crate::parallelism::{RecomputeModule as M, RecomputeModules};
    use crate::perf::evaluate;
    let with = |model: &str, r: Recompute, modules: &[M]| {
        let mut l = layout(8, 1);
        l.recompute = r;
        l.recompute_modules = modules.iter().copied().collect::<RecomputeModules>();
        model_setup(model, (512, 4096), l, 512, |_| {})
    };
    let (base, m) = with("gpt3-175b", Recompute::Selective, &[]);
    let (norms, _) = with("gpt3-175b", Recompute::Selective, &[M::Layernorm]);
    let (a, b) = (evaluate(&base, &m), evaluate(&norms, &m));
    assert!(b.memory.activations < a.memory.activations);
    let (sa, sb) = (step(&base, &m), step(&norms, &m));
    assert!(sb.memory_bound > sa.memory_bound);
    assert_relative_eq!(
        sa.matmul.seconds(),
        sb.matmul.seconds(),
        max_relative = 1e-12
    );
    assert_eq!(a.executed_flops, b.executed_flops);

    // The mlp policy is the mlp and moe modules, on an MoE model.
    let (policy, m2) = with("mixtral-8x7b", Recompute::Mlp, &[]);
    let (modules, _) = with("mixtral-8x7b", Recompute::None, &[M::Mlp, M::Moe]);
    let (p, q) = (evaluate(&policy, &m2), evaluate(&modules, &m2));
    assert_relative_eq!(
        p.memory.activations.bytes(),
        q.memory.activations.bytes(),
        max_relative = 1e-12
    );
    assert_relative_eq!(
        p.executed_flops.flops(),
        q.executed_flops.flops(),
        max_relative = 1e-12
    );
    // ... and the same step: its recompute repeats the MoE dispatch and permutation too.
    assert_relative_eq!(
        step(&policy, &m2).step.seconds(),
        step(&modules, &m2).step.seconds(),
        max_relative = 1e-12
    );
    // moe-act inside a recomputed MoE block, or layernorm beside a recomputed MLP, adds no
    // time twice: the block's recompute already re-runs them.
    let (with_act, _) = with("mixtral-8x7b", Recompute::Mlp, &[M::MoeAct]);
    assert_relative_eq!(
        step(&with_act, &m2).step.seconds(),
        step(&policy, &m2).step.seconds(),
        max_relative = 1e-12
    );
    let (norms_too, _) = with("mixtral-8x7b", Recompute::Mlp, &[M::Layernorm]);
    let (norms_only, _) = with("mixtral-8x7b", Recompute::None, &[M::Layernorm]);
    let (s_none, _) = with("mixtral-8x7b", Recompute::None, &[]);
    let extra =
        |a: &Shape, b: &Shape| step(a, &m2).recompute.seconds() - step(b, &m2).recompute.seconds();
    assert_relative_eq!(
        extra(&norms_too, &policy),
        extra(&norms_only, &s_none) / 2.0,
        max_relative = 1e-9
    );
    // moe-act: the experts' activation output, no matmul.
    let (none, _) = with("mixtral-8x7b", Recompute::None, &[]);
    let (act, _) = with("mixtral-8x7b", Recompute::None, &[M::MoeAct]);
    let (n, a) = (evaluate(&none, &m2), evaluate(&act, &m2));
    assert!(a.memory.activations < n.memory.activations);
    assert_eq!(a.executed_flops, n.executed_flops);
    assert!(step(&act, &m2).memory_bound > step(&none, &m2).memory_bound);
    // The moe module on a dense model recomputes nothing.
    let (dense, _) = with("gpt3-175b", Recompute::Selective, &[M::Moe]);
    let (d, g) = (evaluate(&dense, &m), evaluate(&base, &m));
    assert_eq!(d.memory, g.memory);
    assert_eq!(d.executed_flops, g.executed_flops);
}
