//! Memory per chip: weights, gradients, optimizer states, activations, buffers; and its verdict
//! against HBM ([`MemoryBand`]).
//!
//! Mixed-precision Adam (Micikevicius et al. 2018; Rajbhandari et al. 2020): BF16 weights (2 B),
//! BF16 gradients (2 B; 4 B with FP32 accumulation), FP32 master weights and two moments (12 B,
//! or 8 B with BF16 moments) per parameter; ZeRO stage 1 shards the 12 B, stage 2 also the
//! gradients, stage 3 also the weights. Activations: [`activations`].
//!
//! Pipeline stages differ: the first rank holds the input embedding and the most micro-batches
//! in flight; the last holds the output layer (a copy of the embedding when tied) and the FP32
//! logits of one micro-batch; a middle rank only layers. Each rank's layers follow the
//! setup's [`crate::workload::PipelineSplit`]. The memory per chip is that of the most loaded of
//! the three.

mod activations;
pub(crate) use activations::DROPOUT_MASK_BYTES_PER_TOKEN_PER_D;
mod band;

pub use band::{memory_margin, MemoryBand, MEMORY_MODEL_ERROR};

use super::Shape;
use crate::units::Bytes;
use serde::{Deserialize, Serialize};

/// Runtime reserve per chip: framework context, communicator buffers, allocator slack.
/// An assumption (the order of NCCL and CUDA context footprints), not a measurement.
pub const RUNTIME_RESERVE_GB: f64 = 3.0;

/// Peak bytes per logit element on the last stage: the output layer writes BF16 logits (2 B);
/// Megatron-LM's vocab-parallel cross-entropy casts them to an FP32 copy (4 B) that it turns
/// into the softmax kept for backward, so both live at the end of the forward; in backward the
/// FP32 gradient is formed in that buffer and cast to a BF16 gradient (2 B) for the output
/// layer's GEMMs. Either way 2 + 4 B (Megatron-LM `tensor_parallel/cross_entropy.py`,
/// unfused path). A fused cross-entropy kernel needs less; this is the conservative count.
const LOGIT_BYTES: f64 = 6.0;
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
    /// Activations kept for the backward pass (peak over the pipeline schedule), with the
    /// layer full recompute re-materialises.
    pub activations: Bytes,
    /// Logits, gathered weights and runtime reserve.
    pub buffers: Bytes,
    /// Activations offloaded to host memory (not in HBM, not in [`MemoryBreakdown::total`]).
    #[serde(default)]
    pub offloaded: Bytes,
}

impl MemoryBreakdown {
    /// Total per chip.
    #[must_use]
    pub fn total(&self) -> Bytes {
        self.weights + self.gradients + self.optimizer + self.activations + self.buffers
    }
}

/// What one pipeline rank holds besides its layers.
#[derive(Clone, Copy)]
struct Rank {
    /// 0-based position in the pipeline.
    index: u32,
    /// Transformer layers (all virtual chunks).
    layers: f64,
    /// Embedding-sized matrices (vocabulary × d): input embedding and/or output layer.
    embeddings: f64,
    /// Whether it computes the logits and the loss.
    logits: bool,
}

/// The first, a middle and the last rank (one rank holding everything when `pp = 1`).
fn ranks(s: &Shape) -> impl Iterator<Item = Rank> {
    let pp = s.layout.pp;
    let sl = s.stage_layers;
    let all = if pp == 1 {
        vec![Rank {
            index: 0,
            layers: sl.first,
            embeddings: if s.tied_embeddings { 1.0 } else { 2.0 },
            logits: true,
        }]
    } else {
        let mut v = vec![
            Rank {
                index: 0,
                layers: sl.first,
                embeddings: 1.0,
                logits: false,
            },
            // Tied embeddings: Megatron-LM keeps a copy of the matrix on the last stage.
            Rank {
                index: pp - 1,
                layers: sl.last,
                embeddings: 1.0,
                logits: true,
            },
        ];
        if pp > 2 {
            v.push(Rank {
                index: 1,
                layers: sl.middle,
                embeddings: 0.0,
                logits: false,
            });
        }
        v
    };
    all.into_iter()
}

/// Per-chip memory of one pipeline rank.
fn rank_memory(s: &Shape, r: Rank) -> MemoryBreakdown {
    let l = &s.layout;
    let tp = l.tp as f64;
    let dp_shards = l.zero_group_size() as f64;
    // The last rank also holds the multi-token-prediction modules: a layer and a projection each.
    let mtp = if r.logits {
        s.layer_params_per_chip() * s.mtp_modules + s.mtp_projection_params / tp
    } else {
        0.0
    };
    let params =
        s.layer_params_per_chip() * r.layers + r.embeddings * s.embedding_params / tp + mtp;
    let (w_div, g_div, o_div) = match l.zero {
        0 => (1.0, 1.0, 1.0),
        1 => (1.0, 1.0, dp_shards),
        2 => (1.0, dp_shards, dp_shards),
        _ => (dp_shards, dp_shards, dp_shards),
    };
    let layer_mb = activations::layer_microbatches(s, r.index, r.layers);
    // Offload moves that share of the saved layer activations to host memory; the layer being
    // recomputed stays in HBM.
    let saved = activations::per_layer_on(s, r.layers) * layer_mb;
    let activations =
        Bytes::new(saved * (1.0 - s.offload) + activations::recompute_working_set(s, r.layers));
    let offloaded = Bytes::new(saved * s.offload);
    // Logits of one micro-batch on the last stage and, under ZeRO-3, gathered layers.
    let logits = if r.logits {
        LOGIT_BYTES * s.tokens_per_microbatch() * s.vocab / tp
    } else {
        0.0
    };
    let gathered = if l.zero >= 3 {
        GATHERED_LAYERS * s.layer_params_per_chip() * s.param_bytes
    } else {
        0.0
    };
    MemoryBreakdown {
        weights: Bytes::new(params * s.param_bytes / w_div),
        gradients: Bytes::new(params * s.grad_bytes / g_div),
        optimizer: Bytes::new(params * s.optimizer_bytes / o_div),
        activations,
        buffers: Bytes::new(logits + gathered) + Bytes::from_gb(RUNTIME_RESERVE_GB),
        offloaded,
    }
}

/// Bytes one chip offloads to host memory per layer and micro-batch (and fetches back for
/// backward): the offloaded share of the layer's saved activations.
pub(crate) fn offloaded_per_layer(s: &Shape) -> f64 {
    activations::per_layer(s) * s.offload
}

/// Per-chip memory of the most loaded pipeline rank.
pub(crate) fn memory(s: &Shape) -> MemoryBreakdown {
    ranks(s)
        .map(|r| rank_memory(s, r))
        .fold(MemoryBreakdown::default(), |a, b| {
            if b.total() > a.total() {
                b
            } else {
                a
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Precision;
    use crate::parallelism::{Layout, Recompute};
    use crate::workload::{preset, PipelineSplit, TrainingSetup};
    use approx::assert_relative_eq;

    fn shape(model: &str, pp: u32, split: PipelineSplit) -> Shape {
        let model = preset(model).unwrap_or_else(|e| panic!("{e}"));
        let mut setup =
            TrainingSetup::new(256, 4096, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
        setup.pipeline_split = split;
        let layout = Layout {
            tp: 8,
            pp,
            sequence_parallel: true,
            recompute: Recompute::Selective,
            recompute_modules: crate::parallelism::RecomputeModules::EMPTY,
            recompute_layers: None,
            zero: 1,
            ..Layout::data_parallel(4)
        };
        Shape::new(&model, &setup, &layout)
    }

    /// Without pipelining one chip holds both the input embedding and the untied output layer.
    #[test]
    fn one_stage_holds_both_embeddings() {
        let s = shape("llama3-8b", 1, PipelineSplit::Even);
        let m = memory(&s);
        let want = (s.layer_params_per_chip() * 32.0 + 2.0 * s.embedding_params / 8.0) * 2.0;
        assert_relative_eq!(m.weights.bytes(), want, max_relative = 1e-12);
    }

    /// With a pipeline the first rank (embedding, `pp` micro-batches in flight) is the most
    /// loaded, and one fewer layer at the ends lowers it by one layer's states and activations.
    #[test]
    fn first_rank_is_most_loaded_and_one_fewer_layer_lowers_it() {
        let even = shape("llama3-70b", 4, PipelineSplit::Even);
        let fewer = shape("llama3-70b", 4, PipelineSplit::OneFewerAtEnds);
        // 80 layers on 4 ranks: 20 each; one fewer at the ends: ⌈82/4⌉ = 21 in the middle, 20
        // at the ends. The most loaded rank's compute has one more layer.
        assert_relative_eq!(even.stage_layers.first, 20.0);
        assert_relative_eq!(fewer.stage_layers.first, 20.0);
        assert_relative_eq!(fewer.stage_layers.middle, 21.0);
        assert_relative_eq!(fewer.layers_per_stage, 21.0);
        let first = rank_memory(
            &even,
            Rank {
                index: 0,
                layers: 20.0,
                embeddings: 1.0,
                logits: false,
            },
        );
        assert_relative_eq!(memory(&even).total().bytes(), first.total().bytes());
        // Llama 3 405B-like: 126 layers on 16 ranks, 8 per rank and 7 at the ends (Megatron's
        // account-for-embedding-and-loss split): the first rank holds 7 layers.
        let big = shape("llama3-405b", 16, PipelineSplit::OneFewerAtEnds);
        assert_relative_eq!(big.stage_layers.first, 7.0);
        assert_relative_eq!(big.stage_layers.middle, 8.0);
        let even_big = shape("llama3-405b", 16, PipelineSplit::Even);
        assert!(memory(&big).total() < memory(&even_big).total());
    }
}
