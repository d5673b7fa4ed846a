//! Memory per chip: weights, gradients, optimizer states, activations, buffers.
//!
//! Mixed-precision Adam (Micikevicius et al. 2018; Rajbhandari et al. 2020): BF16 weights (2 B),
//! BF16 gradients (2 B; 4 B with FP32 accumulation), FP32 master weights and two moments (12 B, or 8 B with BF16
//! moments) per parameter; ZeRO
//! stage 1 shards the 12 B, stage 2 also the gradients, stage 3 also the weights.
//! Activations follow Korthikanti et al. 2022 (eq. 1-2), generalised to GQA, gated MLPs and MoE:
//! per layer and micro-batch `2·T·d·5` bytes outside the tensor-parallel region (norm inputs,
//! dropout masks, the MLP input) plus the tensor-parallel tensors (Q, K, V, attention output,
//! MLP intermediates) and, for unfused attention without recompute, `5·a·s·T` bytes of scores.
//! For a standard-MLP model without GQA (`q = kv = d`, `ffn = 4d`) this is the paper's
//! `s·b·h·(34 + 5·a·s/h)` (tp = 1), `s·b·h·(34 + 5·a·s/h)/t` with sequence parallelism, and
//! `2·s·b·h` with full recompute.

use super::Shape;
use crate::parallelism::Recompute;
use crate::units::Bytes;
use crate::workload::AttentionKernel;
use serde::{Deserialize, Serialize};

/// Bytes per parameter of each kind of model state under mixed-precision Adam.
pub const WEIGHT_BYTES: f64 = 2.0;
/// Runtime reserve per chip: framework context, communicator buffers, allocator slack.
/// An assumption (the order of NCCL and CUDA context footprints), not a measurement.
pub const RUNTIME_RESERVE_GB: f64 = 3.0;

/// Bytes per element of a BF16 activation.
const ACTIVATION_BYTES: f64 = 2.0;
/// Activation bytes per token per `d` outside the tensor-parallel region: Korthikanti et al.'s
/// 34 less the 24 that tensor parallelism splits. The inputs of the two norms, of the QKV
/// projection and of the MLP in BF16 (4 × 2 B), and the two 1-byte dropout masks (2 × 1 B).
const OUTSIDE_TP_BYTES_PER_TOKEN_PER_D: f64 = 10.0;
/// Tensors of query width kept for backward: Q and the attention output (the output
/// projection's input).
const Q_WIDTH_TENSORS: f64 = 2.0;
/// Tensors of K/V width kept for backward: K and V.
const KV_WIDTH_TENSORS: f64 = 2.0;
/// Bytes per element of the unfused `a·s × s` score tensor kept for backward: the softmax
/// output (2 B), the dropout mask (1 B) and the dropout output (2 B) (Korthikanti et al. 2022).
const SCORE_BYTES: f64 = 5.0;
/// Bytes per logit kept for the loss's backward: FP32.
const LOGIT_BYTES: f64 = 4.0;
/// Layers of gathered weights ZeRO-3 holds at once: the current one and the prefetched next.
const GATHERED_LAYERS: f64 = 2.0;

/// Memory needed per chip, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryBreakdown {
    /// Model weights held.
    pub weights: Bytes,
    /// Gradients held.
    pub gradients: Bytes,
    /// Optimizer states held.
    pub optimizer: Bytes,
    /// Activations kept for the backward pass (peak over the pipeline schedule).
    pub activations: Bytes,
    /// Logits, gathered weights and runtime reserve.
    pub buffers: Bytes,
}

impl MemoryBreakdown {
    /// Total per chip.
    #[must_use]
    pub fn total(&self) -> Bytes {
        self.weights + self.gradients + self.optimizer + self.activations + self.buffers
    }
}

/// Activation bytes of one layer for one micro-batch on one chip.
fn activations_per_layer(s: &Shape) -> f64 {
    let l = &s.layout;
    let tp = l.tp as f64;
    let t = s.tokens_per_microbatch();
    let d = s.d_model;
    let sp_div = if l.sequence_parallel { tp } else { 1.0 };
    match l.recompute {
        // Only the layer input is kept.
        Recompute::Full => ACTIVATION_BYTES * t * d / sp_div,
        _ => {
            let outside = OUTSIDE_TP_BYTES_PER_TOKEN_PER_D * t * d / sp_div;
            // The MLP keeps its up-projections' outputs and the down-projection's input.
            let inside = ACTIVATION_BYTES
                * t
                * (Q_WIDTH_TENSORS * s.q_width + KV_WIDTH_TENSORS * s.kv_width)
                / tp
                + ACTIVATION_BYTES * t * s.mlp_width * (s.mlp_matrices + 1.0) / tp;
            let scores =
                if s.attention == AttentionKernel::Unfused && l.recompute == Recompute::None {
                    SCORE_BYTES * s.heads * s.seq * t / tp
                } else {
                    0.0
                };
            outside + inside + scores
        }
    }
}

/// Micro-batches whose activations the first stage holds at its peak: 1F1B keeps up to `pp`
/// in flight; interleaving adds (pp-1)/(pp·v) more (Korthikanti et al. 2022 §4.2.3); fewer
/// when there are fewer micro-batches.
fn in_flight(s: &Shape) -> f64 {
    let l = &s.layout;
    let pp = l.pp as f64;
    let v = l.virtual_stages as f64;
    if l.pp == 1 {
        1.0
    } else if l.virtual_stages == 1 {
        pp.min(s.microbatches)
    } else {
        (pp * (1.0 + (pp - 1.0) / (pp * v))).min(s.microbatches * v)
    }
}

/// Per-chip memory of the most loaded pipeline stage.
pub(crate) fn memory(s: &Shape) -> MemoryBreakdown {
    let l = &s.layout;
    let tp = l.tp as f64;
    let dp_shards = l.zero_group_size() as f64;
    let params = s.params_per_chip();
    let (w_div, g_div, o_div) = match l.zero {
        0 => (1.0, 1.0, 1.0),
        1 => (1.0, 1.0, dp_shards),
        2 => (1.0, dp_shards, dp_shards),
        _ => (dp_shards, dp_shards, dp_shards),
    };
    let weights = Bytes::new(params * WEIGHT_BYTES / w_div);
    let gradients = Bytes::new(params * s.grad_bytes / g_div);
    let optimizer = Bytes::new(params * s.optimizer_bytes / o_div);
    let activations = Bytes::new(activations_per_layer(s) * s.layers_per_stage * in_flight(s));
    // Logits of the last stage and, under ZeRO-3, gathered layers of weights.
    let t = s.tokens_per_microbatch();
    let logits = LOGIT_BYTES * t * s.vocab / tp;
    let gathered = if l.zero >= 3 {
        GATHERED_LAYERS * s.layer_params_per_chip() * WEIGHT_BYTES
    } else {
        0.0
    };
    let buffers = Bytes::new(logits + gathered) + Bytes::from_gb(RUNTIME_RESERVE_GB);
    MemoryBreakdown {
        weights,
        gradients,
        optimizer,
        activations,
        buffers,
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
    fn gpt3(tp: u32, sp: bool, recompute: Recompute, b: u32) -> (Shape, f64, f64, f64, f64) {
        let model = preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"));
        // The closed form assumes a standard 4h MLP and one K/V head per query head.
        assert_eq!(model.mlp, Mlp::Standard);
        assert_eq!(model.ffn, 4 * model.d_model);
        assert_relative_eq!(model.q_width(), model.d_model as f64);
        assert_relative_eq!(model.kv_width(), model.d_model as f64);
        let mut setup =
            TrainingSetup::new(512, 2048, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
        setup.attention = AttentionKernel::Unfused;
        let layout = Layout {
            tp,
            sequence_parallel: sp,
            recompute,
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
            assert_relative_eq!(activations_per_layer(&shape), want, max_relative = 1e-12);
        }
    }

    /// With tensor and sequence parallelism every term is split `t` ways (eq. 4's `34/t`,
    /// plus the scores the paper then recomputes).
    #[test]
    fn activations_match_korthikanti_with_sequence_parallelism() {
        let (shape, s, b, h, a) = gpt3(8, true, Recompute::None, 1);
        let t = 8.0;
        let want = s * b * h * 34.0 / t + 5.0 * a * s * s * b / t;
        assert_relative_eq!(activations_per_layer(&shape), want, max_relative = 1e-12);
        // Selective recompute drops the scores: `34·s·b·h/t` (eq. 5).
        let (shape, ..) = gpt3(8, true, Recompute::Selective, 1);
        let want = s * b * h * 34.0 / t;
        assert_relative_eq!(activations_per_layer(&shape), want, max_relative = 1e-12);
    }

    /// Full recompute keeps only the layer input: `2·s·b·h` (split by sequence parallelism).
    #[test]
    fn full_recompute_keeps_the_layer_input() {
        let (shape, s, b, h, _) = gpt3(1, false, Recompute::Full, 2);
        assert_relative_eq!(
            activations_per_layer(&shape),
            2.0 * s * b * h,
            max_relative = 1e-12
        );
        let (shape, s, b, h, _) = gpt3(8, true, Recompute::Full, 1);
        assert_relative_eq!(
            activations_per_layer(&shape),
            2.0 * s * b * h / 8.0,
            max_relative = 1e-12
        );
    }
}
