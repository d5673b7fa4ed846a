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
