//! The training setup: batch, sequence, tokens, number format and the software stack's habits.

use crate::error::{Error, Result};
use crate::hardware::Precision;
use serde::{Deserialize, Serialize};

/// How attention is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKernel {
    /// Fused (FlashAttention-style): no `s x s` tensor in memory, masked blocks skipped, the
    /// backward pass recomputes scores (5 matmuls instead of 4; Dao 2023).
    Flash,
    /// Unfused (Megatron-LM 2021-2022): scores materialised, softmax and dropout are memory-bound
    /// passes over `b·a·s²` elements, the full square is computed.
    Unfused,
}

/// Precision of the Adam moments (the master weights stay FP32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

/// Batch, tokens, number format and software-stack switches of one training run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingSetup {
    /// Global batch in sequences.
    pub global_batch: u64,
    /// Sequence length in tokens.
    pub seq_len: u64,
    /// Tokens to train (for time to train).
    pub tokens: f64,
    /// Number format of the matmuls in the linear layers.
    pub precision: Precision,
    /// Attention kernel.
    pub attention: AttentionKernel,
    /// Tensor-parallel communication overlapped with GEMMs (Megatron-Core `--tp-comm-overlap`, NeMo).
    pub tp_comm_overlap: bool,
    /// Data-parallel gradient reduction overlapped with the backward pass.
    pub dp_comm_overlap: bool,
    /// Collectives spanning scale-up domains aggregate inside each domain first (see
    /// [`crate::network::Fabric::hierarchical`]).
    pub hierarchical_collectives: bool,
    /// Precision of the optimizer's moments.
    pub optimizer_states: OptimizerStates,
    /// Precision of the accumulated gradients.
    pub main_grads: MainGrads,
}

impl TrainingSetup {
    /// A setup with modern defaults: flash attention, overlapped TP and DP communication.
    ///
    /// # Errors
    /// [`Error::Input`] for a zero batch or sequence, or a non-positive token count.
    pub fn new(global_batch: u64, seq_len: u64, tokens: f64, precision: Precision) -> Result<Self> {
        if global_batch == 0 {
            return Err(Error::input("global_batch", "must be at least 1 sequence"));
        }
        if seq_len == 0 {
            return Err(Error::input("seq_len", "must be at least 1 token"));
        }
        if !(tokens.is_finite() && tokens > 0.0) {
            return Err(Error::input(
                "tokens",
                format!("must be a positive number of tokens, got {tokens}"),
            ));
        }
        if precision == Precision::Fp32 || precision == Precision::Tf32 {
            return Err(Error::input(
                "precision",
                "training precision must be bf16, fp8 or fp4",
            ));
        }
        Ok(Self {
            global_batch,
            seq_len,
            tokens,
            precision,
            attention: AttentionKernel::Flash,
            tp_comm_overlap: true,
            dp_comm_overlap: true,
            hierarchical_collectives: true,
            optimizer_states: OptimizerStates::Fp32,
            main_grads: MainGrads::Bf16,
        })
    }

    /// A global batch given in tokens, as sequences of `seq_len`.
    ///
    /// # Errors
    /// [`Error::Input`] when the tokens are not a whole number of sequences.
    pub fn sequences_for_tokens(batch_tokens: u64, seq_len: u64) -> Result<u64> {
        if seq_len == 0 || batch_tokens == 0 || batch_tokens % seq_len != 0 {
            return Err(Error::input(
                "global_batch_tokens",
                format!("{batch_tokens} tokens is not a positive whole number of {seq_len}-token sequences"),
            ));
        }
        Ok(batch_tokens / seq_len)
    }

    /// Tokens in one optimizer step.
    #[must_use]
    pub fn tokens_per_step(&self) -> f64 {
        self.global_batch as f64 * self.seq_len as f64
    }
}
