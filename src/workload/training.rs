//! The training setup: batch, sequence, tokens, number format and the software stack's habits.

use crate::hardware::Precision;
use serde::{Deserialize, Serialize};

/// How attention is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum AttentionKernel {
    /// Fused (FlashAttention-style): no `s x s` tensor in memory, masked blocks skipped, the
    /// backward pass recomputes scores (5 matmuls instead of 4; Dao 2023).
    Flash,
    /// Unfused (Megatron-LM 2021-2022): scores materialised, softmax and dropout are memory-bound
    /// passes over `b·a·s²` elements, the full square is computed.
    Unfused,
}

/// How the transformer layers are divided among pipeline stages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum PipelineSplit {
    /// Layers spread as evenly as they divide; the first stage also holds the input embedding
    /// and the last the output layer and the loss.
    #[default]
    Even,
    /// The embedding and the loss each count as one layer, so the first and last stages hold one
    /// layer fewer than the others (Megatron-LM `--account-for-embedding-in-pipeline-split` with
    /// `--account-for-loss-in-pipeline-split`, or `--decoder-first-pipeline-num-layers` /
    /// `--decoder-last-pipeline-num-layers` set one below the rest).
    OneFewerAtEnds,
}

impl PipelineSplit {
    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Even => "even",
            Self::OneFewerAtEnds => "one-fewer-at-ends",
        }
    }
}

/// Precision of the Adam moments (the master weights stay FP32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OptimizerStates {
    /// FP32 master weights and moments: 12 bytes per parameter (mixed-precision Adam).
    Fp32,
    /// FP32 master weights, BF16 moments: 8 bytes per parameter.
    Bf16,
}

impl OptimizerStates {
    /// Bytes per parameter of optimizer state.
    #[must_use]
    pub fn bytes_per_param(self) -> f64 {
        match self {
            Self::Fp32 => 12.0,
            Self::Bf16 => 8.0,
        }
    }
}

/// Precision of the gradients kept between backward and the optimizer ("main grads").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum MainGrads {
    /// FP32 gradient accumulation (Megatron-LM 2021-2022, `--accumulate-allreduce-grads-in-fp32`).
    Fp32,
    /// Gradients in the weights' BF16 (Megatron-Core, NeMo, PyTorch FSDP and DeepSpeed defaults).
    Bf16,
}

impl MainGrads {
    /// Bytes per parameter.
    #[must_use]
    pub fn bytes_per_param(self) -> f64 {
        match self {
            Self::Fp32 => 4.0,
            Self::Bf16 => 2.0,
        }
    }
}

/// Batch, tokens, number format and software-stack switches of one training run, validated
/// (made by [`crate::request::SetupRequest::resolve`]; read it with the accessors).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingSetup {
    pub(crate) global_batch: u64,
    pub(crate) seq_len: u64,
    pub(crate) tokens: f64,
    pub(crate) precision: Precision,
    pub(crate) attention: AttentionKernel,
    pub(crate) tp_comm_overlap: bool,
    pub(crate) dp_comm_overlap: bool,
    pub(crate) hierarchical_collectives: bool,
    pub(crate) logarithmic_collectives: bool,
    pub(crate) optimizer_states: OptimizerStates,
    pub(crate) main_grads: MainGrads,
    pub(crate) pipeline_split: PipelineSplit,
    pub(crate) low_precision_activations: bool,
}

impl TrainingSetup {
    /// Global batch in sequences.
    #[must_use]
    pub fn global_batch(&self) -> u64 {
        self.global_batch
    }
    /// Sequence length in tokens.
    #[must_use]
    pub fn seq_len(&self) -> u64 {
        self.seq_len
    }
    /// Tokens to train (for time to train).
    #[must_use]
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
    /// Number format of the matmuls in the linear layers.
    #[must_use]
    pub fn precision(&self) -> Precision {
        self.precision
    }
    /// Attention kernel.
    #[must_use]
    pub fn attention(&self) -> AttentionKernel {
        self.attention
    }
    /// Tensor-parallel communication overlapped with GEMMs (Megatron-Core `--tp-comm-overlap`).
    #[must_use]
    pub fn tp_comm_overlap(&self) -> bool {
        self.tp_comm_overlap
    }
    /// Data-parallel gradient reduction overlapped with the backward pass.
    #[must_use]
    pub fn dp_comm_overlap(&self) -> bool {
        self.dp_comm_overlap
    }
    /// Collectives spanning scale-up domains aggregate inside each domain first.
    #[must_use]
    pub fn hierarchical_collectives(&self) -> bool {
        self.hierarchical_collectives
    }
    /// Collectives across domains use logarithmic algorithms (PAT, trees) instead of rings.
    #[must_use]
    pub fn logarithmic_collectives(&self) -> bool {
        self.logarithmic_collectives
    }
    /// Precision of the optimizer's moments.
    #[must_use]
    pub fn optimizer_states(&self) -> OptimizerStates {
        self.optimizer_states
    }
    /// Precision of the accumulated gradients.
    #[must_use]
    pub fn main_grads(&self) -> MainGrads {
        self.main_grads
    }
    /// How layers are divided among pipeline stages.
    #[must_use]
    pub fn pipeline_split(&self) -> PipelineSplit {
        self.pipeline_split
    }
    /// Whether the inputs of the linear layers are kept for backward in the training format
    /// (FP8/FP4) rather than BF16, as NVIDIA Transformer Engine does in FP8 training (it saves
    /// the quantized GEMM input it already made for the forward GEMM). Only matters when the
    /// precision is FP8 or FP4.
    #[must_use]
    pub fn low_precision_activations(&self) -> bool {
        self.low_precision_activations
    }

    /// A setup with modern defaults, for unit tests (front ends resolve a
    /// [`crate::request::SetupRequest`]).
    #[cfg(test)]
    pub(crate) fn new(
        global_batch: u64,
        seq_len: u64,
        tokens: f64,
        precision: Precision,
    ) -> crate::error::Result<Self> {
        let mut r = crate::request::SetupRequest {
            global_batch: i64::try_from(global_batch).ok(),
            seq_len: i64::try_from(seq_len).ok(),
            tokens: Some(tokens),
            precision: Some(precision),
            ..Default::default()
        };
        r.seq_len = r.seq_len.or(Some(1));
        let model = crate::workload::preset("llama3-8b")?;
        r.resolve("", &model)
            .map_err(|problems| crate::error::Error::Input { problems })
    }

    /// Tokens in one optimizer step.
    #[must_use]
    pub fn tokens_per_step(&self) -> f64 {
        self.global_batch as f64 * self.seq_len as f64
    }
}
