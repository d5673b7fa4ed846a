//! The inputs of one step: the configuration reduced to numbers, and the hardware's peaks.

use super::gemm::MatrixUnits;
use crate::error::Result;
use crate::hardware::{Cluster, Precision};
use crate::network::Fabric;
use crate::parallelism::Layout;
use crate::units::{Bytes, BytesPerSecond, ExpPerSecond, FlopsPerSecond};
use crate::workload::{AttentionKernel, Model, MoeDispatcher, PipelineSplit, TrainingSetup};

/// Everything the step model needs, reduced to numbers (built once, evaluated many times).
///
/// Widths and parameter counts are whole-model (before any tensor-parallel split); MoE layers
/// are averaged with dense layers by their share of the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub(crate) layout: Layout,
    pub(crate) d_model: f64,
    pub(crate) heads: f64,
    pub(crate) q_width: f64,
    pub(crate) kv_width: f64,
    /// Active MLP intermediate width per token (dense `ffn`, or active experts × expert width).
    pub(crate) mlp_width: f64,
    /// Up-projections per MLP: matrices less the down-projection (1 standard, 2 gated).
    pub(crate) mlp_matrices: f64,
    pub(crate) moe_fraction: f64,
    /// Routed experts per token (top-k); 0 for dense models.
    pub(crate) moe_active: f64,
    /// Node-limited routing: scale-up domains a token's experts may span (0: no limit).
    pub(crate) max_routed_domains: u32,
    pub(crate) vocab: f64,
    pub(crate) seq: f64,
    pub(crate) layers: f64,
    /// Layers on the most loaded pipeline rank (all its virtual chunks).
    pub(crate) layers_per_stage: f64,
    /// Layers on the first, a middle and the last pipeline rank (all their virtual chunks).
    pub(crate) stage_layers: StageLayers,
    pub(crate) microbatches: f64,
    /// The model trains with dropout (its masks are kept and written).
    pub(crate) dropout: bool,
    /// Input and output embeddings share one matrix.
    pub(crate) tied_embeddings: bool,
    /// Bytes per element of a linear layer's input kept for backward: 1 when FP8/FP4 GEMM
    /// inputs are cached in that format, else 2 (BF16).
    pub(crate) linear_input_bytes: f64,
    pub(crate) pipeline_split: PipelineSplit,
    pub(crate) attention: AttentionKernel,
    pub(crate) tp_overlap: bool,
    /// Expert-parallel dispatch and combine overlapped with compute.
    pub(crate) ep_overlap: bool,
    /// Bytes per weight held and all-gathered: 1 with FP8 parameter gather in FP8/FP4
    /// training, else 2 (BF16).
    pub(crate) param_bytes: f64,
    pub(crate) dp_overlap: bool,
    pub(crate) hierarchical: bool,
    pub(crate) logarithmic: bool,
    pub(crate) dispatcher: MoeDispatcher,
    pub(crate) expert_tensor_parallel: bool,
    pub(crate) optimizer_bytes: f64,
    pub(crate) grad_bytes: f64,
    /// Forward FLOPs per token of one layer's linear layers (layer-averaged); the sum of the
    /// GEMMs below (at no load imbalance), which `gemm` prices one by one.
    pub(crate) linear_per_token: f64,
    /// Output width of the attention block's input projections (`q`, `k`, `v` fused; for
    /// multi-head latent attention, its low-rank projections as one equivalent GEMM of the
    /// same FLOPs).
    pub(crate) attn_in_width: f64,
    /// Input width of the attention output projection (all value heads).
    pub(crate) attn_out_width: f64,
    /// Dense-MLP intermediate width.
    pub(crate) ffn: f64,
    /// Intermediate width of one expert (0 for dense models).
    pub(crate) expert_ffn: f64,
    /// Tokens routed to the most loaded expert over the mean (≥ 1).
    pub(crate) moe_imbalance: f64,
    /// Share of the saved activations offloaded to host memory (0 to 1).
    pub(crate) offload: f64,
    /// Of `linear_per_token`, the MLP's (layer-averaged; routed and shared experts and the
    /// router in MoE layers).
    pub(crate) mlp_per_token: f64,
    /// Of `mlp_per_token`, the dense layers' MLP (weighted by their share of layers).
    pub(crate) dense_mlp_per_token: f64,
    /// Forward FLOPs per token of one layer's attention core (full square).
    pub(crate) core_per_token: f64,
    pub(crate) logit_per_token: f64,
    pub(crate) attention_params: f64,
    /// Dense-MLP parameters per layer, weighted by the share of dense layers.
    pub(crate) mlp_params_avg: f64,
    /// Expert parameters one EP rank holds per layer, weighted by the share of MoE layers.
    pub(crate) expert_params_avg: f64,
    pub(crate) embedding_params: f64,
    /// Multi-token-prediction modules (each one more layer on the last stage).
    pub(crate) mtp_modules: f64,
    /// Parameters of the MTP projections.
    pub(crate) mtp_projection_params: f64,
    pub(crate) model_flops_per_step: f64,
    pub(crate) tokens_per_step: f64,
    pub(crate) chips: f64,
    /// What [`Shape::place`] needs to derive the layout's share: routed experts, shared experts,
    /// parameters of one expert, layers, and the global batch in sequences.
    pub(crate) experts: f64,
    pub(crate) shared_experts: f64,
    expert_params: f64,
    layer_count: u64,
    global_batch: u64,
}

impl Shape {
    /// Build from validated parts (the layout is assumed valid).
    #[must_use]
    pub fn new(model: &Model, setup: &TrainingSetup, layout: &Layout) -> Self {
        Self::unplaced(model, setup).place(layout)
    }

    /// Everything that depends on the model and the setup only, computed once per job (a search
    /// then [`Shape::place`]s each candidate layout); the layout fields hold a single-chip
    /// placeholder until placed.
    #[must_use]
    pub fn unplaced(model: &Model, setup: &TrainingSetup) -> Self {
        let layers = model.layers as f64;
        let moe_fraction = model.moe_layers() as f64 / layers;
        let dense = model.layer_flops_per_token(setup.seq_len, false);
        let moe = model.layer_flops_per_token(setup.seq_len, true);
        let avg = |a: f64, b: f64| a * (1.0 - moe_fraction) + b * moe_fraction;
        let (mlp_width, moe_active, mlp_params_avg, experts, shared_experts) = match &model.moe {
            Some(m) => (
                // Summed in f64: a u32 sum of expert counts could wrap.
                avg(
                    model.ffn as f64,
                    (m.active as f64 + m.shared as f64) * m.expert_ffn as f64,
                ),
                m.active as f64,
                (1.0 - moe_fraction) * model.dense_mlp_params(),
                m.experts as f64,
                m.shared as f64,
            ),
            None => (model.ffn as f64, 0.0, model.dense_mlp_params(), 0.0, 0.0),
        };
        let tokens_per_step = setup.tokens_per_step();
        let d = model.d_model as f64;
        let attn_out_width = model.v_width();
        Self {
            layout: Layout {
                tp: 1,
                pp: 1,
                dp: 1,
                cp: 1,
                ep: 1,
                microbatch: 1,
                virtual_stages: 1,
                recompute: crate::parallelism::Recompute::None,
                recompute_modules: crate::parallelism::RecomputeModules::EMPTY,
                recompute_layers: None,
                sequence_parallel: false,
                zero: 0,
                zero_group: 0,
            },
            d_model: model.d_model as f64,
            heads: model.heads as f64,
            q_width: model.q_width(),
            kv_width: model.kv_width(),
            mlp_width,
            mlp_matrices: model.mlp.matrices() - 1.0,
            moe_fraction,
            moe_active,
            max_routed_domains: model.moe.as_ref().map_or(0, |m| m.max_routed_domains),
            vocab: model.vocab as f64,
            seq: setup.seq_len as f64,
            layers,
            layers_per_stage: layers,
            stage_layers: StageLayers {
                first: layers,
                middle: layers,
                last: layers,
            },
            microbatches: 0.0,
            dropout: model.dropout,
            tied_embeddings: model.tied_embeddings,
            linear_input_bytes: if setup.low_precision_activations
                && matches!(setup.precision, Precision::Fp8 | Precision::Fp4)
            {
                LOW_PRECISION_INPUT_BYTES
            } else {
                BF16_INPUT_BYTES
            },
            pipeline_split: setup.pipeline_split,
            attention: setup.attention,
            tp_overlap: setup.tp_comm_overlap,
            ep_overlap: setup.ep_comm_overlap,
            param_bytes: if setup.fp8_param_gather
                && matches!(setup.precision, Precision::Fp8 | Precision::Fp4)
            {
                Precision::Fp8.bytes()
            } else {
                Precision::Bf16.bytes()
            },
            dp_overlap: setup.dp_comm_overlap,
            hierarchical: setup.hierarchical_collectives,
            logarithmic: setup.logarithmic_collectives,
            dispatcher: setup.moe_dispatcher,
            expert_tensor_parallel: setup.expert_tensor_parallel,
            optimizer_bytes: setup.optimizer_states.bytes_per_param(),
            grad_bytes: setup.main_grads.bytes_per_param(),
            linear_per_token: avg(
                (dense.attention_linear + dense.mlp).flops(),
                (moe.attention_linear + moe.mlp).flops(),
            ),
            attn_in_width: model.attention_params() / d - attn_out_width,
            attn_out_width,
            ffn: model.ffn as f64,
            expert_ffn: model.moe.as_ref().map_or(0.0, |m| m.expert_ffn as f64),
            moe_imbalance: setup.moe_load_imbalance,
            offload: setup.offload_activations,
            mlp_per_token: avg(dense.mlp.flops(), moe.mlp.flops()),
            dense_mlp_per_token: dense.mlp.flops() * (1.0 - moe_fraction),
            core_per_token: dense.attention_core.flops(),
            // The multi-token-prediction modules run after the last layer, beside the output
            // head, on the last pipeline stage: priced with the logits.
            logit_per_token: (model.logit_flops_per_token()
                + model.mtp_flops_per_token(setup.seq_len))
            .flops(),
            attention_params: model.attention_params(),
            mlp_params_avg,
            expert_params_avg: 0.0,
            embedding_params: model.vocab as f64 * model.d_model as f64,
            mtp_modules: f64::from(model.mtp_modules),
            mtp_projection_params: model.mtp_projection_params(),
            model_flops_per_step: model.training_flops_per_token(setup.seq_len).flops()
                * tokens_per_step,
            tokens_per_step,
            chips: 1.0,
            experts,
            shared_experts,
            expert_params: if model.moe.is_some() {
                model.expert_params()
            } else {
                0.0
            },
            layer_count: u64::from(model.layers),
            global_batch: setup.global_batch,
        }
    }

    /// This shape with `layout` in place: the layout's share of experts, layers per stage,
    /// micro-batches and chips (cheap; the search's per-candidate step).
    #[must_use]
    pub fn place(mut self, layout: &Layout) -> Self {
        self.expert_params_avg = if self.experts > 0.0 {
            let experts_per_rank = self.experts / layout.ep as f64 + self.shared_experts;
            self.moe_fraction * experts_per_rank * self.expert_params
        } else {
            0.0
        };
        self.stage_layers = stage_layers(self.layer_count, layout, self.pipeline_split);
        self.layers_per_stage = self.stage_layers.most();
        self.microbatches = (self.global_batch
            / (u64::from(layout.dp) * u64::from(layout.microbatch)).max(1))
            as f64;
        self.chips = layout.chips() as f64;
        self.layout = *layout;
        self
    }

    /// Share of the layers of a pipeline rank holding `layers` layers (all its chunks) that
    /// full recompute recomputes: all of them without a block; with a block of `N` layers per
    /// chunk, `min(N·v, layers) / layers` (exact when only the end chunks are short by one,
    /// [`PipelineSplit::OneFewerAtEnds`]); none without full recompute.
    pub(crate) fn full_recompute_fraction(&self, layers: f64) -> f64 {
        let l = &self.layout;
        match (l.recompute, l.recompute_layers) {
            (crate::parallelism::Recompute::Full, None) => 1.0,
            (crate::parallelism::Recompute::Full, Some(n)) if layers > 0.0 => {
                (f64::from(n) * f64::from(l.virtual_stages)).min(layers) / layers
            }
            _ => 0.0,
        }
    }

    /// Share of the layers whose MLP block `modules` recompute from its input: the dense
    /// layers' with `mlp`, the MoE layers' with `moe`. The memory model and the step price the
    /// same share.
    pub(crate) fn mlp_recomputed_share(
        &self,
        modules: crate::parallelism::RecomputeModules,
    ) -> f64 {
        use crate::parallelism::RecomputeModule as M;
        match (modules.contains(M::Mlp), modules.contains(M::Moe)) {
            (true, true) => 1.0,
            (true, false) => 1.0 - self.moe_fraction,
            (false, true) => self.moe_fraction,
            (false, false) => 0.0,
        }
    }

    /// Share of the whole model's layers full recompute recomputes: `min(N·pp·v, L) / L` with a
    /// block of `N` layers per chunk (ignoring chunks shorter than `N`).
    pub(crate) fn model_full_recompute_fraction(&self) -> f64 {
        self.full_recompute_fraction(self.layers / f64::from(self.layout.pp.max(1)))
    }

    /// Tokens one rank processes per micro-batch (before the tensor-parallel split).
    pub(crate) fn tokens_per_microbatch(&self) -> f64 {
        self.layout.microbatch as f64 * self.seq / self.layout.cp as f64
    }

    /// Transformer-layer parameters held by one chip of the most loaded stage.
    pub(crate) fn layer_params_per_chip(&self) -> f64 {
        (self.attention_params + self.mlp_params_avg + self.expert_params_avg)
            / self.layout.tp as f64
    }

    /// All parameters held by one chip of the most loaded stage (layers plus one embedding,
    /// and the multi-token-prediction modules the last stage holds: each a layer-averaged layer
    /// and its projection).
    pub(crate) fn params_per_chip(&self) -> f64 {
        self.layer_params_per_chip() * (self.layers_per_stage + self.mtp_modules)
            + (self.embedding_params + self.mtp_projection_params) / self.layout.tp as f64
    }
}

/// Bytes per element of a BF16 GEMM input kept for backward.
const BF16_INPUT_BYTES: f64 = Precision::Bf16.bytes();
/// Bytes per element of an FP8 (or FP4, stored as FP8 by Transformer Engine's recipes) GEMM
/// input kept for backward: Transformer Engine saves the quantized input its forward GEMM
/// already made (NVIDIA Transformer Engine documentation, "FP8 primer"). An assumption for
/// FP4, whose block-scaled format with scales takes about 0.56 B; 1 B is the conservative side.
const LOW_PRECISION_INPUT_BYTES: f64 = Precision::Fp8.bytes();

/// Layers held by the first, a middle and the last pipeline rank, all virtual chunks included
/// (one rank when `pp = 1`: all three equal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StageLayers {
    pub(crate) first: f64,
    pub(crate) middle: f64,
    pub(crate) last: f64,
}

impl StageLayers {
    /// Layers on the most loaded rank.
    pub(crate) fn most(&self) -> f64 {
        self.first.max(self.middle).max(self.last)
    }
}

/// Layers per pipeline rank under `split`, in u64 so that `pp · v` cannot wrap.
///
/// Even: `⌈L / (pp·v)⌉` layers per chunk. One fewer at the ends: the embedding and the loss
/// count as one layer each, `c = ⌈(L + 2) / (pp·v)⌉` per chunk, and the first rank's first chunk
/// and the last rank's last chunk hold one layer fewer (Megatron-LM's
/// `account_for_embedding_in_pipeline_split` / `account_for_loss_in_pipeline_split`).
fn stage_layers(layers: u64, layout: &Layout, split: PipelineSplit) -> StageLayers {
    let even = layers_per_stage(layers, layout) as f64;
    if layout.pp == 1 || split == PipelineSplit::Even {
        return StageLayers {
            first: even,
            middle: even,
            last: even,
        };
    }
    let v = u64::from(layout.virtual_stages);
    let chunks = (u64::from(layout.pp) * v).max(1);
    let full = ((layers + 2).div_ceil(chunks) * v) as f64;
    let end = (full - 1.0).max(0.0);
    StageLayers {
        first: end,
        middle: if layout.pp > 2 { full } else { end },
        last: end,
    }
}
/// Layers on the most loaded pipeline rank (all its virtual chunks): as
/// [`Layout::layers_per_stage`], with the chunk count `pp · v` computed in u64 so it cannot wrap.
fn layers_per_stage(layers: u64, layout: &Layout) -> u64 {
    let v = u64::from(layout.virtual_stages);
    let chunks = u64::from(layout.pp) * v;
    layers.div_ceil(chunks.max(1)) * v
}

/// Hardware numbers the step model needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Machine {
    /// Peak of the linear layers' number format.
    pub peak_linear: FlopsPerSecond,
    /// BF16 peak (attention core, logits).
    pub peak_bf16: FlopsPerSecond,
    /// HBM bandwidth.
    pub hbm_bandwidth: BytesPerSecond,
    /// HBM capacity.
    pub hbm_capacity: Bytes,
    /// The network.
    pub fabric: Fabric,
    /// Whether the linear layers run in a low-precision format (FP8/FP4).
    pub low_precision: bool,
    /// Host memory per chip (activation offload's capacity), when the system publishes it.
    pub host_memory: Option<Bytes>,
    /// Chip-to-host bandwidth, one direction, when the system publishes it.
    pub host_bandwidth: Option<BytesPerSecond>,
    /// The chip's matrix units (tile and wave quantization of GEMMs).
    pub matrix_units: MatrixUnits,
    /// The chip's softmax exponential rate, when published (fused attention's softmax).
    pub exp_rate: Option<ExpPerSecond>,
}

impl Machine {
    /// From a cluster and the training format.
    ///
    /// # Errors
    /// When the chip lacks the format or HBM figures.
    pub fn new(cluster: &Cluster, precision: Precision) -> Result<Self> {
        let chip = &cluster.chip;
        let peak_linear = chip.peak_flops(precision)?;
        let peak_bf16 = chip.peak_flops(Precision::Bf16).unwrap_or(peak_linear);
        let totals = crate::hardware::totals(chip, 1, precision)?;
        Ok(Self {
            peak_linear,
            peak_bf16,
            hbm_bandwidth: totals.hbm_bandwidth,
            hbm_capacity: totals.hbm_capacity,
            fabric: Fabric {
                domain_chips: cluster.domain_chips,
                scale_up: cluster.scale_up_per_chip,
                scale_up_latency: cluster.system.scale_up_latency.value,
                scale_out: cluster.scale_out_per_chip,
                scale_out_latency: cluster.system.scale_out_latency.value,
                hierarchical: true,
                logarithmic: false,
                torus_dims: cluster
                    .system
                    .scale_up_torus_dims
                    .as_ref()
                    .map_or(0, |d| d.value),
            },
            low_precision: matches!(precision, Precision::Fp8 | Precision::Fp4),
            matrix_units: MatrixUnits::of_chip(chip),
            exp_rate: chip.softmax_exp_rate.as_ref().map(|f| f.value),
            host_memory: cluster
                .system
                .host_memory_per_chip
                .as_ref()
                .map(|f| f.value),
            host_bandwidth: cluster.system.host_link.as_ref().map(|l| l.per_direction()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallelism::Recompute;
    use crate::workload::preset;

    proptest::proptest! {
        /// Every split places all layers, and one fewer at the ends never puts more than one
        /// chunk-layer per chunk above the even split on any rank.
        #[test]
        fn splits_place_every_layer(layers in 1u64..400, pp in 1u32..33, v in 1u32..5) {
            let mut l = Layout::data_parallel(1);
            l.pp = pp;
            l.virtual_stages = v;
            for split in [PipelineSplit::Even, PipelineSplit::OneFewerAtEnds] {
                let s = stage_layers(layers, &l, split);
                let ranks = f64::from(pp);
                let placed = if pp == 1 {
                    s.first
                } else {
                    s.first + s.last + s.middle * (ranks - 2.0)
                };
                proptest::prop_assert!(placed >= layers as f64, "{split:?}: {placed} < {layers}");
                let even = stage_layers(layers, &l, PipelineSplit::Even).most();
                proptest::prop_assert!(s.most() <= even + f64::from(v));
            }
        }
    }

    /// The u64 chunk count agrees with the layout's own, and does not wrap where u32 would.
    #[test]
    fn layers_per_stage_agrees_and_does_not_wrap() {
        let model = preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"));
        let mut l = Layout::data_parallel(8);
        l.recompute = Recompute::Selective;
        for (pp, v) in [(1, 1), (8, 1), (8, 3), (16, 2), (5, 1)] {
            l.pp = pp;
            l.virtual_stages = v;
            assert_eq!(
                layers_per_stage(u64::from(model.layers), &l),
                l.layers_per_stage(&model)
            );
        }
        l.pp = 1 << 16;
        l.virtual_stages = 1 << 16;
        // 2^32 chunks: one layer in each of the 2^16 chunks of the first rank.
        assert_eq!(layers_per_stage(u64::from(model.layers), &l), 1 << 16);
    }
}
