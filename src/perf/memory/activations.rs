//! Activations kept for the backward pass, per layer and micro-batch, and how many micro-batches
//! a pipeline rank holds at its peak.
//!
//! Korthikanti et al. 2022 (eq. 1-2), generalised to GQA, gated MLPs, MoE, models without
//! dropout and FP8-cached GEMM inputs. Per token of one layer, in units of `d` (or of the
//! named width):
//!
//! | tensor | bytes | split by |
//! |---|---|---|
//! | two norm inputs | 2 × 2 | sequence parallelism |
//! | QKV-projection and MLP inputs | 2 × `i` | sequence parallelism |
//! | two dropout masks (if the model has dropout) | 2 × 1 | sequence parallelism |
//! | Q (query width) | 2 | tensor parallelism |
//! | attention output = output projection's input (query width) | `i` | tensor parallelism |
//! | K and V (K/V width) | 2 × 2 | tensor parallelism |
//! | up-projection outputs (MLP width, one per up-projection) | 2 each | tensor parallelism |
//! | down-projection input (MLP width) | `i` | tensor parallelism |
//!
//! where `i` is 2 B (BF16), or 1 B when FP8 training caches the GEMM inputs in FP8 (Transformer
//! Engine). Unfused attention without recompute also keeps `a·s` scores per token: the softmax
//! output (2 B) and, with dropout, its mask (1 B) and output (2 B). For a standard-MLP model
//! without GQA (`q = kv = d`, `ffn = 4d`) with dropout and BF16 this is the paper's
//! `s·b·h·(34 + 5·a·s/h)` (tp = 1), split `t` ways with sequence parallelism, and `2·s·b·h`
//! with full recompute; without dropout it is `32 + 2·a·s/h`.

use super::super::Shape;
use crate::hardware::Precision;
use crate::parallelism::Recompute;
use crate::workload::AttentionKernel;

/// Bytes per element of a BF16 activation.
const ACTIVATION_BYTES: f64 = Precision::Bf16.bytes();
/// Norm inputs kept per token per `d`: the two layer norms' inputs.
const NORM_INPUTS: f64 = 2.0;
/// Linear-layer inputs of width `d` kept per token: the QKV projection's and the MLP's.
const D_WIDTH_GEMM_INPUTS: f64 = 2.0;
/// Dropout masks per token per `d` (after attention and after the MLP), 1 byte each
/// (Korthikanti et al. 2022 §4.1): kept for backward here, written by the residual adds in the
/// step model's traffic.
pub(crate) const DROPOUT_MASK_BYTES_PER_TOKEN_PER_D: f64 = 2.0;
/// Tensors of K/V width kept for backward: K and V.
const KV_WIDTH_TENSORS: f64 = 2.0;
/// Bytes per element of the unfused `a·s × s` score tensor kept for backward: the softmax
/// output (Korthikanti et al. 2022).
const SOFTMAX_BYTES: f64 = Precision::Bf16.bytes();
/// Further bytes per score element when attention has dropout: its 1-byte mask and its 2-byte
/// output (Korthikanti et al. 2022).
const SCORE_DROPOUT_BYTES: f64 = 3.0;

/// Activation bytes of one layer for one micro-batch on one chip, averaged over the layers of
/// the most loaded pipeline rank.
pub(super) fn per_layer(s: &Shape) -> f64 {
    per_layer_on(s, s.layers_per_stage)
}

/// Activation bytes of one layer for one micro-batch on one chip, averaged over the `layers`
/// layers of one pipeline rank: with a block of fully recomputed layers
/// ([`Shape::full_recompute_fraction`]), those keep only their input and the rest everything
/// ([`kept_layer`]).
pub(super) fn per_layer_on(s: &Shape, layers: f64) -> f64 {
    let full = s.full_recompute_fraction(layers);
    if full >= 1.0 {
        recomputed_layer(s)
    } else if full <= 0.0 {
        kept_layer(s)
    } else {
        full * recomputed_layer(s) + (1.0 - full) * kept_layer(s)
    }
}

/// A fully recomputed layer keeps only its input.
fn recomputed_layer(s: &Shape) -> f64 {
    let l = &s.layout;
    let sp_div = if l.sequence_parallel {
        l.tp as f64
    } else {
        1.0
    };
    ACTIVATION_BYTES * s.tokens_per_microbatch() * s.d_model / sp_div
}

/// A layer that is not fully recomputed: the table above, less what its recomputed modules
/// ([`crate::parallelism::Layout::recomputed_modules`]) do not keep.
///
/// - `core-attn`: the unfused score tensors (Korthikanti et al. 2022, selective recompute).
/// - `mlp` / `moe`: the MLP block of the dense / MoE layers is re-run from the block's input,
///   the second norm's input, already counted: its up-projection outputs, down-projection input
///   and own GEMM input go (by the share of such layers).
/// - `moe-act`: the routed experts' down-projection input (their activation's output) goes;
///   their up-projection outputs stay, the activation is recomputed from them.
/// - `layernorm`: the two norms' outputs, the QKV projection's and the MLP's GEMM inputs, go;
///   the norms' inputs (the residual stream) stay.
fn kept_layer(s: &Shape) -> f64 {
    use crate::parallelism::RecomputeModule as M;
    let l = &s.layout;
    let modules = l.recomputed_modules();
    let tp = l.tp as f64;
    let t = s.tokens_per_microbatch();
    let d = s.d_model;
    let sp_div = if l.sequence_parallel { tp } else { 1.0 };
    let i = s.linear_input_bytes;
    let masks = if s.dropout {
        DROPOUT_MASK_BYTES_PER_TOKEN_PER_D
    } else {
        0.0
    };
    let outside =
        (NORM_INPUTS * ACTIVATION_BYTES + D_WIDTH_GEMM_INPUTS * i + masks) * t * d / sp_div;
    let attention = t
        * (s.q_width * (ACTIVATION_BYTES + i) + s.kv_width * KV_WIDTH_TENSORS * ACTIVATION_BYTES)
        / tp;
    // Of the layers, the share whose MLP block is recomputed from its input.
    let (dense_mlp, moe_mlp) = (modules.contains(M::Mlp), modules.contains(M::Moe));
    let mlp_recomputed = s.mlp_recomputed_share(modules);
    // The MLP keeps its up-projections' outputs and the down-projection's input, unless it is
    // recomputed from its input (then only that input, the second norm's input, is kept:
    // counted above, less the MLP's own GEMM input).
    let dense_width = s.ffn * (1.0 - s.moe_fraction);
    let kept_width = match (dense_mlp, moe_mlp) {
        (false, false) => s.mlp_width,
        (true, false) => s.mlp_width - dense_width,
        (false, true) => dense_width,
        (true, true) => 0.0,
    };
    let mut mlp = t * kept_width * (s.mlp_matrices * ACTIVATION_BYTES + i) / tp;
    if kept_width <= 0.0 {
        mlp = 0.0;
    }
    if mlp_recomputed > 0.0 {
        mlp -= i * t * d / sp_div * mlp_recomputed;
    }
    if modules.contains(M::MoeAct) && !moe_mlp {
        mlp -= i * t * s.moe_fraction * s.moe_active * s.expert_ffn / tp;
    }
    // The norms' outputs: the QKV input, and the MLP input where the MLP is not recomputed
    // (where it is, that input is gone already).
    let norms = if modules.contains(M::Layernorm) {
        -i * t * d / sp_div * (2.0 - mlp_recomputed)
    } else {
        0.0
    };
    let scores = if s.attention == AttentionKernel::Unfused && !modules.contains(M::CoreAttn) {
        let per_score = if s.dropout {
            SOFTMAX_BYTES + SCORE_DROPOUT_BYTES
        } else {
            SOFTMAX_BYTES
        };
        per_score * s.heads * s.seq * t / tp
    } else {
        0.0
    };
    outside + attention + mlp + scores + norms
}

/// Bytes of the working set recomputation adds at its peak on a rank of `rank_layers` layers:
/// the backward pass re-runs one layer's forward and holds all of that layer's activations for
/// one micro-batch while it differentiates it (Chen et al. 2016, "Training Deep Nets with
/// Sublinear Memory Cost", §3: checkpointing keeps the segment inputs plus one segment's
/// activations), less the layer input already kept. Module recompute (MLP, norms, expert
/// activation) likewise re-materialises one layer's recomputed tensors. A block of fully
/// recomputed layers adds it only once it covers a whole chunk of the rank (Megatron's block
/// method recomputes the first N layers of a chunk, which backward reaches after the chunk's
/// kept layers have freed theirs). Zero otherwise (and for selective recompute of the
/// attention core alone, whose scores are re-made one head block at a time).
pub(super) fn recompute_working_set(s: &Shape, rank_layers: f64) -> f64 {
    let l = &s.layout;
    let mut kept = *s;
    kept.layout.recompute = Recompute::None;
    kept.layout.recompute_modules = crate::parallelism::RecomputeModules::EMPTY;
    kept.layout.recompute_layers = None;
    // The rank's shortest chunk (chunks differ by at most one layer).
    let shortest = (rank_layers / f64::from(l.virtual_stages.max(1))).floor();
    match (l.recompute, l.recompute_layers) {
        (Recompute::Full, None) => kept_layer(&kept) - recomputed_layer(s),
        (Recompute::Full, Some(n)) if f64::from(n) >= shortest && n > 0 => {
            kept_layer(&kept) - recomputed_layer(s)
        }
        (Recompute::Full, Some(_)) => 0.0,
        _ if l.recompute == Recompute::Mlp || !l.recompute_modules.is_empty() => {
            kept_layer(&kept) - kept_layer(s)
        }
        _ => 0.0,
    }
}

/// Layer-activations pipeline rank `rank` (0-based) holds at its peak, in units of one layer
/// for one micro-batch: its layers times the micro-batches in flight.
///
/// 1F1B without interleaving: rank `r` runs `pp − r` forwards before its first backward
/// (Narayanan et al. 2021). Interleaved with `v` chunks per rank: Megatron-LM's warm-up runs
/// `2·(pp − r − 1) + (v − 1)·pp` chunk-forwards before the first backward, so `r` holds that
/// plus one chunks of `layers / v` layers; for the first rank this is Korthikanti et al.'s
/// `pp·(1 + (pp−1)/(pp·v))` micro-batches of a stage (§4.2.3). Never more than every
/// micro-batch of every chunk.
pub(super) fn layer_microbatches(s: &Shape, rank: u32, layers: f64) -> f64 {
    let l = &s.layout;
    let pp = f64::from(l.pp);
    let v = f64::from(l.virtual_stages);
    let r = f64::from(rank.min(l.pp.saturating_sub(1)));
    let m = s.microbatches.max(1.0);
    if l.pp == 1 {
        layers
    } else if l.virtual_stages == 1 {
        layers * (pp - r).min(m)
    } else {
        let chunks = (2.0 * (pp - r - 1.0) + (v - 1.0) * pp + 1.0).min(m * v);
        chunks * layers / v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Precision;
    use crate::parallelism::Layout;
    use crate::workload::{preset, Mlp, TrainingSetup};
    use approx::assert_relative_eq;

    /// GPT-3 175B, micro-batch `b` of 2048 tokens, unfused attention: (shape, s, b, h, a).
    pub(crate) fn gpt3(
        tp: u32,
        sp: bool,
        recompute: Recompute,
        b: u32,
    ) -> (Shape, f64, f64, f64, f64) {
        let model = preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"));
        // The closed form assumes a standard 4h MLP and one K/V head per query head.
        assert_eq!(model.mlp, Mlp::Standard);
        assert_eq!(model.ffn, 4 * model.d_model);
        assert!(model.dropout);
        assert_relative_eq!(model.q_width(), model.d_model as f64);
        assert_relative_eq!(model.kv_width(), model.d_model as f64);
        let mut setup =
            TrainingSetup::new(512, 2048, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
        setup.attention = AttentionKernel::Unfused;
        let layout = Layout {
            tp,
            sequence_parallel: sp,
            recompute,
            recompute_modules: crate::parallelism::RecomputeModules::EMPTY,
            recompute_layers: None,
            microbatch: b,
            ..Layout::data_parallel(8)
        };
        let s = Shape::new(&model, &setup, &layout);
        (s, 2048.0, f64::from(b), 12288.0, 96.0)
    }

    /// Korthikanti et al. 2022 eq. 1: `s·b·h·(34 + 5·a·s/h)` bytes per layer without
    /// parallelism.
    #[test]
    fn activations_match_korthikanti_without_parallelism() {
        for b in [1, 2] {
            let (shape, s, b, h, a) = gpt3(1, false, Recompute::None, b);
            let want = s * b * h * (34.0 + 5.0 * a * s / h);
            assert_relative_eq!(per_layer(&shape), want, max_relative = 1e-12);
        }
    }

    /// Without dropout the two 1-byte masks and the score dropout's mask and output go:
    /// `s·b·h·(32 + 2·a·s/h)`.
    #[test]
    fn no_dropout_drops_the_masks() {
        let (mut shape, s, b, h, a) = gpt3(1, false, Recompute::None, 1);
        shape.dropout = false;
        let want = s * b * h * (32.0 + 2.0 * a * s / h);
        assert_relative_eq!(per_layer(&shape), want, max_relative = 1e-12);
    }

    /// FP8-cached GEMM inputs: the QKV, output-projection, MLP and down-projection inputs
    /// (`2 + 2 + 2 + 8 = 14` of the 34 bytes per `s·b·h`) take half: 34 − 7 = 27.
    #[test]
    fn fp8_cached_gemm_inputs_halve_their_bytes() {
        let (mut shape, s, b, h, _) = gpt3(1, false, Recompute::Selective, 1);
        shape.linear_input_bytes = 1.0;
        assert_relative_eq!(per_layer(&shape), s * b * h * 27.0, max_relative = 1e-12);
    }

    /// With tensor and sequence parallelism every term is split `t` ways (eq. 4's `34/t`,
    /// plus the scores the paper then recomputes).
    #[test]
    fn activations_match_korthikanti_with_sequence_parallelism() {
        let (shape, s, b, h, a) = gpt3(8, true, Recompute::None, 1);
        let t = 8.0;
        let want = s * b * h * 34.0 / t + 5.0 * a * s * s * b / t;
        assert_relative_eq!(per_layer(&shape), want, max_relative = 1e-12);
        // Selective recompute drops the scores: `34·s·b·h/t` (eq. 5).
        let (shape, ..) = gpt3(8, true, Recompute::Selective, 1);
        let want = s * b * h * 34.0 / t;
        assert_relative_eq!(per_layer(&shape), want, max_relative = 1e-12);
    }

    /// Full recompute keeps only the layer input: `2·s·b·h` (split by sequence parallelism).
    #[test]
    fn full_recompute_keeps_the_layer_input() {
        let (shape, s, b, h, _) = gpt3(1, false, Recompute::Full, 2);
        assert_relative_eq!(per_layer(&shape), 2.0 * s * b * h, max_relative = 1e-12);
        let (shape, s, b, h, _) = gpt3(8, true, Recompute::Full, 1);
        assert_relative_eq!(
            per_layer(&shape),
            2.0 * s * b * h / 8.0,
            max_relative = 1e-12
        );
    }

    /// MLP recompute keeps the attention block (scores included, unfused) and the MLP block's
    /// input: for GPT-3 with dropout, 34 − 2 (MLP input) − 16 (MLP tensors) = 16 bytes per
    /// `s·b·h`, plus `5·a·s²·b`.
    #[test]
    fn mlp_recompute_keeps_the_attention_block() {
        let (shape, s, b, h, a) = gpt3(1, false, Recompute::Mlp, 1);
        let want = s * b * h * (16.0 + 5.0 * a * s / h);
        assert_relative_eq!(per_layer(&shape), want, max_relative = 1e-12);
    }

    /// Full recompute holds one whole layer again while differentiating it.
    #[test]
    fn full_recompute_working_set_is_one_whole_layer() {
        let (shape, s, b, h, a) = gpt3(1, false, Recompute::Full, 1);
        let want = s * b * h * (34.0 - 2.0 + 5.0 * a * s / h);
        assert_relative_eq!(
            recompute_working_set(&shape, shape.layers_per_stage),
            want,
            max_relative = 1e-12
        );
        let (shape, ..) = gpt3(1, false, Recompute::Selective, 1);
        assert_relative_eq!(recompute_working_set(&shape, shape.layers_per_stage), 0.0);
    }

    /// The first rank of an interleaved pipeline holds Korthikanti's
    /// `pp·(1 + (pp−1)/(pp·v))` stage-micro-batches; the last rank of a plain 1F1B one.
    #[test]
    fn in_flight_follows_the_schedule() {
        let (mut shape, ..) = gpt3(1, false, Recompute::Selective, 1);
        shape.microbatches = 64.0;
        shape.layout.pp = 8;
        shape.layout.virtual_stages = 3;
        let layers = 12.0;
        assert_relative_eq!(
            layer_microbatches(&shape, 0, layers),
            layers * 8.0 * (1.0 + 7.0 / 24.0),
            max_relative = 1e-12
        );
        shape.layout.virtual_stages = 1;
        assert_relative_eq!(layer_microbatches(&shape, 0, layers), 8.0 * layers);
        assert_relative_eq!(layer_microbatches(&shape, 7, layers), layers);
        // Fewer micro-batches than stages: all of them.
        shape.microbatches = 2.0;
        assert_relative_eq!(layer_microbatches(&shape, 0, layers), 2.0 * layers);
    }

    /// A block of `N` layers per chunk keeps, on a rank of `L` layers in `v` chunks, `N·v`
    /// layers at the full-recompute size and the rest at the size of no recompute.
    #[test]
    fn block_recompute_mixes_the_per_layer_sizes() {
        let (mut b, ..) = gpt3(8, true, Recompute::Full, 1);
        b.layout.pp = 8;
        b.layout.virtual_stages = 2;
        b.layout.recompute_layers = Some(2);
        let (full, ..) = gpt3(8, true, Recompute::Full, 1);
        let (none, ..) = gpt3(8, true, Recompute::None, 1);
        // 12 layers on the rank, 2 × 2 of them recomputed.
        assert_relative_eq!(
            per_layer_on(&b, 12.0),
            per_layer(&full) * 4.0 / 12.0 + per_layer(&none) * 8.0 / 12.0,
            max_relative = 1e-12
        );
        // A rank with fewer layers than the block recomputes them all.
        assert_relative_eq!(per_layer_on(&b, 3.0), per_layer(&full));
        // Backward reaches the block after the chunk's kept layers have freed theirs: no
        // working set on top, where full recompute needs a whole layer's.
        assert_relative_eq!(recompute_working_set(&b, b.layers_per_stage), 0.0);
        assert!(recompute_working_set(&full, full.layers_per_stage) > 0.0);
        // A block as long as the chunk is full recompute, working set included.
        b.layout.recompute_layers = Some(10);
        b.layers_per_stage = 20.0;
        assert_relative_eq!(
            recompute_working_set(&b, b.layers_per_stage),
            recompute_working_set(&full, full.layers_per_stage),
            max_relative = 1e-12
        );
    }

    /// `layernorm` drops the two norm outputs (the QKV and MLP GEMM inputs, `2 × 2` bytes per
    /// `s·b·h`, split by sequence parallelism); with the MLP recomputed only the QKV one is left
    /// to drop. `moe-act` drops nothing from a dense model.
    #[test]
    fn layernorm_recompute_drops_the_norm_outputs() {
        use crate::parallelism::{RecomputeModule as M, RecomputeModules};
        let (base, s, b, h, _) = gpt3(8, true, Recompute::Selective, 1);
        let mut norms = base;
        norms.layout.recompute_modules = RecomputeModules::EMPTY.with(M::Layernorm);
        let t = 8.0;
        assert_relative_eq!(
            per_layer(&base) - per_layer(&norms),
            4.0 * s * b * h / t,
            max_relative = 1e-12
        );
        let (mlp, ..) = gpt3(8, true, Recompute::Mlp, 1);
        let mut both = mlp;
        both.layout.recompute_modules = RecomputeModules::EMPTY.with(M::Layernorm);
        assert_relative_eq!(
            per_layer(&mlp) - per_layer(&both),
            2.0 * s * b * h / t,
            max_relative = 1e-12
        );
        let mut act = base;
        act.layout.recompute_modules = RecomputeModules::EMPTY.with(M::MoeAct);
        assert_relative_eq!(per_layer(&act), per_layer(&base));
    }

    /// `moe-act` drops the routed experts' activation output: `i` bytes per routed expert
    /// width per token, split by tensor parallelism.
    #[test]
    fn moe_act_recompute_drops_the_expert_activation_output() {
        use crate::parallelism::{RecomputeModule as M, RecomputeModules};
        let model = preset("mixtral-8x7b").unwrap_or_else(|e| panic!("{e}"));
        let moe = model.moe.clone().unwrap_or_else(|| panic!("an MoE preset"));
        let setup =
            TrainingSetup::new(512, 4096, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
        let layout = Layout {
            tp: 4,
            sequence_parallel: true,
            recompute: Recompute::None,
            ..Layout::data_parallel(8)
        };
        let base = Shape::new(&model, &setup, &layout);
        let mut act = base;
        act.layout.recompute_modules = RecomputeModules::EMPTY.with(M::MoeAct);
        let want = 2.0 * 4096.0 * f64::from(moe.active) * moe.expert_ffn as f64 / 4.0;
        assert_relative_eq!(
            per_layer(&base) - per_layer(&act),
            want * base.moe_fraction,
            max_relative = 1e-12
        );
        // With the whole MoE block recomputed, moe-act adds nothing.
        let mut moe_block = base;
        moe_block.layout.recompute_modules = RecomputeModules::EMPTY.with(M::Moe);
        let mut both = moe_block;
        both.layout.recompute_modules = moe_block.layout.recompute_modules.with(M::MoeAct);
        assert_relative_eq!(per_layer(&both), per_layer(&moe_block));
    }
}
