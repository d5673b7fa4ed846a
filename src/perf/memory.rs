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

    // Activations of one layer for one micro-batch.
    let t = s.tokens_per_microbatch();
    let d = s.d_model;
    let sp_div = if l.sequence_parallel { tp } else { 1.0 };
    let per_layer = match l.recompute {
        Recompute::Full => 2.0 * t * d / sp_div,
        _ => {
            let outside = 10.0 * t * d / sp_div;
            let inside = 2.0 * t * (2.0 * s.q_width + 2.0 * s.kv_width) / tp
                + 2.0 * t * s.mlp_width * (s.mlp_matrices + 1.0) / tp;
            let scores =
                if s.attention == AttentionKernel::Unfused && l.recompute == Recompute::None {
                    5.0 * s.heads * s.seq * t / tp
                } else {
                    0.0
                };
            outside + inside + scores
        }
    };
    // 1F1B keeps up to `pp` micro-batches in flight on the first stage; interleaving adds
    // (pp-1)/(pp·v) more (Korthikanti et al. 2022 §4.2.3); fewer when there are fewer micro-batches.
    let pp = l.pp as f64;
    let v = l.virtual_stages as f64;
    let in_flight = if l.pp == 1 {
        1.0
    } else if l.virtual_stages == 1 {
        pp.min(s.microbatches)
    } else {
        (pp * (1.0 + (pp - 1.0) / (pp * v))).min(s.microbatches * v)
    };
    let activations = Bytes::new(per_layer * s.layers_per_stage * in_flight);
    // Logits of the last stage (FP32) and, under ZeRO-3, two gathered layers of weights.
    let logits = 4.0 * t * s.vocab / tp;
    let gathered = if l.zero >= 3 {
        2.0 * s.layer_params_per_chip() * WEIGHT_BYTES
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
