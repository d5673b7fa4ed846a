//! Compute of one step: per-layer forward, backward and recompute, logits and optimizer, each a
//! [`Terms`] of matmul, memory-bound and per-kernel time; and their assembly into [`StepTerms`].
//!
//! Byte and kernel counts are per layer and micro-batch, per token `t` and model width `d` (or
//! per score or logit element), for one rank. Where a count is an assumption about how a
//! framework fuses kernels rather than a measurement, its doc says so; the shipped calibration
//! absorbs the error through the `memory` and `kernel_overhead_us` parameters.

use super::comm::{self, DpWindow};
use super::evaluate::StepTerms;
use super::memory::WEIGHT_BYTES;
use super::terms::Terms;
use super::theta::Param;
use super::{Machine, Shape};
use crate::parallelism::Recompute;
use crate::workload::AttentionKernel;

/// Bytes per element of a BF16 tensor (activations, gradients and weights in flight).
pub(super) const BF16_BYTES: f64 = 2.0;
/// Seconds per microsecond: kernel counts × `kernel_overhead_us`.
const SECONDS_PER_US: f64 = 1e-6;

/// HBM bytes per token per `d` outside the tensor-parallel region (split only by sequence
/// parallelism): two norms each reading and writing a BF16 tensor (2 × (2 + 2) B), and two fused
/// bias-dropout-residual-adds (Megatron-LM) each reading the branch output and the residual and
/// writing the sum (2 × (2 + 2 + 2) B): 8 + 12 = 20. Assumes one read and one write per tensor
/// per kernel.
const NORM_BYTES_PER_TOKEN_PER_D: f64 = 20.0;
/// With dropout, the two residual adds also write a 1-byte mask each.
const DROPOUT_MASK_BYTES_PER_TOKEN_PER_D: f64 = 2.0;
/// HBM bytes per token per `d` per routed expert for MoE token shuffling: permuting each copy of
/// the token into its expert's buffer and un-permuting/combining it afterwards, each reading and
/// writing it in BF16 (2 × (2 + 2) B). An assumption (no fused permute).
const ROUTE_BYTES_PER_TOKEN_PER_D: f64 = 8.0;
/// HBM bytes per element of the unfused `a·s × s` score tensor: the fused scale-mask-softmax
/// reads the BF16 scores and writes the probabilities (2 + 2 B). The QKᵀ write and AV read are
/// part of the matmuls.
const UNFUSED_SCORE_BYTES: f64 = 4.0;
/// With attention dropout, dropout also reads the probabilities and writes the dropped-out
/// probabilities and a 1-byte mask (2 + 2 + 1 B) per score element.
const SCORE_DROPOUT_BYTES: f64 = 5.0;
/// Fraction of the `s × s` square a fused causal kernel computes: masked blocks are skipped
/// (Dao 2023); unfused attention computes the full square.
const FLASH_CAUSAL_FRACTION: f64 = CAUSAL_HALF;
/// The share of the `s × s` score square a causal mask leaves.
const CAUSAL_HALF: f64 = 0.5;

/// Kernels per layer forward, dense, fused attention: two norms, four linear GEMMs (QKV,
/// output projection, MLP up and down), the attention kernel, the MLP activation, two
/// bias-dropout-adds, and two for rotary embedding and layout copies. An assumption.
const LAYER_KERNELS: f64 = 12.0;
/// Extra forward kernels of unfused attention: batched QKᵀ, scale-mask-softmax, dropout,
/// batched AV (an assumption; also what selective recompute relaunches).
const UNFUSED_ATTENTION_KERNELS: f64 = 4.0;
/// Kernels MLP recompute relaunches: the norm, the fused up-projection GEMM, the activation and
/// the down-projection GEMM (an assumption, as [`LAYER_KERNELS`]).
const MLP_RECOMPUTE_KERNELS: f64 = 4.0;
/// Extra forward kernels per MoE layer: router GEMM, top-k softmax, permute, un-permute and
/// the dispatch and combine all-to-alls. An assumption.
const MOE_KERNELS: f64 = 6.0;

/// Backward GEMMs per forward GEMM of a linear layer: data gradient and weight gradient.
const BACKWARD_LINEAR: f64 = 2.0;
/// Backward / forward matmul FLOPs of the unfused attention core: four matmuls (dV, dP, dQ, dK)
/// against the forward's two (QKᵀ, AV).
const UNFUSED_BACKWARD_CORE: f64 = 2.0;
/// Backward / forward matmul FLOPs of fused attention: the backward also recomputes the scores,
/// five matmuls against two (Dao 2023).
const FLASH_BACKWARD_CORE: f64 = 2.5;
/// Backward / forward HBM traffic of the memory-bound kernels: each reads the output gradient
/// and the saved input and writes the input gradient. An assumption.
const BACKWARD_MEMORY: f64 = 2.0;
/// Backward / forward kernel count: two GEMMs (data, weight gradient) per forward GEMM, and
/// about two per elementwise kernel (its gradient, and the reductions of norm weight gradients).
/// An assumption.
const BACKWARD_KERNELS: f64 = 2.0;

/// Logit matmul passes: forward, and its data and weight gradients in backward (the logits are
/// never recomputed).
const LOGIT_MATMUL_PASSES: f64 = 3.0;
/// HBM bytes per logit element of the softmax cross-entropy: a max pass reading the BF16
/// logits (2 B), a normalising pass reading them again and writing FP32 probabilities
/// (2 + 4 B), and backward reading the probabilities and writing the BF16 logit gradient
/// (4 + 2 B): 14. A reconstruction of the FP32 loss passes; the pass split is an assumption.
const LOGIT_BYTES: f64 = 14.0;
/// Logit kernels per micro-batch: the three GEMMs and the three cross-entropy passes.
const LOGIT_KERNELS: f64 = 6.0;

/// Optimizer state bytes move twice per step: read, then written back.
const STATE_READ_WRITE: f64 = 2.0;
/// Kernels per optimizer step: gradient norm and clipping, inf/NaN check, the Adam update and
/// the copy to BF16 weights, each a few multi-tensor launches. An assumption.
const OPTIMIZER_KERNELS: f64 = 20.0;

/// `n` kernels.
fn kernels(n: f64) -> Terms {
    Terms::one(Param::Kernel, n * SECONDS_PER_US)
}

/// One layer's forward pass for one micro-batch.
struct Forward {
    /// Linear layers (in the training format).
    linear: Terms,
    /// Attention core (BF16).
    core: Terms,
    /// Memory-bound kernels.
    memory: Terms,
    /// Kernels launched.
    kernels: f64,
    /// Of `memory`, the bytes of the unfused score tensor.
    score_bytes: f64,
    /// Of `memory`, the bytes of the MLP activation function.
    mlp_act_bytes: f64,
}

impl Forward {
    fn new(s: &Shape, m: &Machine) -> Self {
        let l = &s.layout;
        let tp = l.tp as f64;
        let t = s.tokens_per_microbatch();
        let d = s.d_model;
        let flash = s.attention == AttentionKernel::Flash;
        let lin_param = if m.low_precision {
            Param::MatmulLow
        } else {
            Param::Matmul
        };
        let sp_div = if l.sequence_parallel { tp } else { 1.0 };

        let f_lin = t * s.linear_per_token / tp;
        let causal = if flash { FLASH_CAUSAL_FRACTION } else { 1.0 };
        let f_core = t * s.core_per_token / tp * causal;
        let bw = m.hbm_bandwidth.bytes_per_second();
        // The MLP activation reads its inputs (one per up-projection) and writes one output.
        let act_bytes = BF16_BYTES * t * s.mlp_width * (s.mlp_matrices + 1.0) / tp;
        let (mask_bytes, score_dropout_bytes) = if s.dropout {
            (DROPOUT_MASK_BYTES_PER_TOKEN_PER_D, SCORE_DROPOUT_BYTES)
        } else {
            (0.0, 0.0)
        };
        let norm_bytes = (NORM_BYTES_PER_TOKEN_PER_D + mask_bytes) * t * d / sp_div;
        let route_bytes = ROUTE_BYTES_PER_TOKEN_PER_D * t * d * s.moe_active * s.moe_fraction / tp;
        let score_bytes = if flash {
            0.0
        } else {
            (UNFUSED_SCORE_BYTES + score_dropout_bytes) * t * s.seq * s.heads / tp
        };
        let attention_kernels = if flash {
            0.0
        } else {
            UNFUSED_ATTENTION_KERNELS
        };
        Self {
            linear: Terms::one(lin_param, f_lin / m.peak_linear.flops_per_second()),
            core: Terms::one(Param::Matmul, f_core / m.peak_bf16.flops_per_second()),
            memory: Terms::one(
                Param::Memory,
                (act_bytes + norm_bytes + route_bytes + score_bytes) / bw,
            ),
            kernels: LAYER_KERNELS + attention_kernels + MOE_KERNELS * s.moe_fraction,
            score_bytes,
            mlp_act_bytes: act_bytes,
        }
    }

    fn total(&self) -> Terms {
        self.linear + self.core + self.memory + kernels(self.kernels)
    }
}

/// One layer's backward pass: (matmuls, everything).
fn backward(f: &Forward, attention: AttentionKernel) -> (Terms, Terms) {
    let core = if attention == AttentionKernel::Flash {
        FLASH_BACKWARD_CORE
    } else {
        UNFUSED_BACKWARD_CORE
    };
    let matmul = f.linear * BACKWARD_LINEAR + f.core * core;
    let total = matmul + f.memory * BACKWARD_MEMORY + kernels(BACKWARD_KERNELS * f.kernels);
    (matmul, total)
}

/// One layer's recompute: (matmuls, memory, kernels). Full recompute repeats the forward;
/// selective recompute (Korthikanti et al. 2022) repeats the unfused attention core only; MLP
/// recompute repeats the MLP's share of the linear layers and its activation's traffic.
fn recompute(f: &Forward, s: &Shape, m: &Machine) -> (Terms, Terms, f64) {
    let flash = s.attention == AttentionKernel::Flash;
    let bw = m.hbm_bandwidth.bytes_per_second();
    match s.layout.recompute {
        Recompute::Full => (f.linear + f.core, f.memory, f.kernels),
        Recompute::Mlp => (
            f.linear * mlp_share(s),
            Terms::one(Param::Memory, f.mlp_act_bytes / bw),
            MLP_RECOMPUTE_KERNELS,
        ),
        Recompute::Selective if !flash => (
            f.core,
            Terms::one(Param::Memory, f.score_bytes / bw),
            UNFUSED_ATTENTION_KERNELS,
        ),
        _ => (Terms::default(), Terms::default(), 0.0),
    }
}

/// The MLP's share of a layer's linear-layer FLOPs.
fn mlp_share(s: &Shape) -> f64 {
    if s.linear_per_token > 0.0 {
        s.mlp_per_token / s.linear_per_token
    } else {
        0.0
    }
}

/// The logits and loss of one micro-batch: (matmul, memory).
fn logits(s: &Shape, m: &Machine) -> (Terms, Terms) {
    let tp = s.layout.tp as f64;
    let t = s.tokens_per_microbatch();
    let f_logit = t * s.logit_per_token / tp;
    let bw = m.hbm_bandwidth.bytes_per_second();
    (
        Terms::one(
            Param::Matmul,
            LOGIT_MATMUL_PASSES * f_logit / m.peak_bf16.flops_per_second(),
        ),
        Terms::one(Param::Memory, LOGIT_BYTES * t * s.vocab / tp / bw),
    )
}

/// The optimizer step over the parameters of one chip, sharded `shard` ways.
fn optimizer(s: &Shape, m: &Machine, shard: f64) -> Terms {
    // Adam reads the gradient and the state, writes the state and the BF16 weights.
    let adam_bytes = s.grad_bytes + STATE_READ_WRITE * s.optimizer_bytes + WEIGHT_BYTES;
    let bw = m.hbm_bandwidth.bytes_per_second();
    Terms::one(Param::Memory, s.params_per_chip() / shard * adam_bytes / bw)
        + kernels(OPTIMIZER_KERNELS)
}

/// Training FLOPs per token that the kernels execute, whole model: the linear layers' forward
/// and two backward GEMMs, the attention core as computed (the causal half with a fused kernel,
/// whose backward also recomputes the scores; the full square unfused), recompute, and the
/// logits. The same counts as the matmul terms of [`step_terms`].
pub(super) fn executed_flops_per_token(s: &Shape) -> f64 {
    let flash = s.attention == AttentionKernel::Flash;
    let (causal, backward_core) = if flash {
        (FLASH_CAUSAL_FRACTION, FLASH_BACKWARD_CORE)
    } else {
        (1.0, UNFUSED_BACKWARD_CORE)
    };
    let core = s.core_per_token * causal;
    let recompute = match s.layout.recompute {
        Recompute::Full => s.linear_per_token + core,
        Recompute::Mlp => s.mlp_per_token,
        Recompute::Selective if !flash => core,
        _ => 0.0,
    };
    s.layers
        * ((1.0 + BACKWARD_LINEAR) * s.linear_per_token + (1.0 + backward_core) * core + recompute)
        + LOGIT_MATMUL_PASSES * s.logit_per_token
}

/// Training model FLOPs per token with the attention scores counted over the causal half of
/// the `s × s` square (forward plus a backward of twice the forward, no recompute).
pub(super) fn causal_model_flops_per_token(s: &Shape) -> f64 {
    (1.0 + BACKWARD_LINEAR)
        * (s.layers * (s.linear_per_token + s.core_per_token * CAUSAL_HALF) + s.logit_per_token)
}

/// Build the step terms for one configuration. Pure arithmetic; no allocation.
#[must_use]
pub fn step_terms(s: &Shape, m: &Machine) -> StepTerms {
    let l = &s.layout;
    let fwd = Forward::new(s, m);
    let fwd_compute = fwd.total();
    let (bwd_matmul, bwd_compute) = backward(&fwd, s.attention);
    let (re_matmul, re_mem, re_kern) = recompute(&fwd, s, m);
    let layer = comm::layer(s, m);

    // --- one micro-batch on the slowest stage ---
    let ls = s.layers_per_stage;
    let (logit_mm, logit_mem) = logits(s, m);
    let logits = logit_mm + logit_mem + kernels(LOGIT_KERNELS);
    let layer_compute = fwd_compute + bwd_compute;
    let layer_recompute = re_matmul + re_mem + kernels(re_kern);
    let stage_compute = (layer_compute + layer_recompute) * ls;
    let pp_mb = comm::pipeline(s, m);
    let comm_mb = layer.tp.scaled(ls) + layer.cp.scaled(ls) + layer.ep.scaled(ls);
    let t_max = stage_compute + logits + comm_mb.total() + pp_mb.total();
    // The logits run on the last stage only: 1/pp of them per stage on average.
    let t_avg = stage_compute + logits * (1.0 / l.pp as f64) + comm_mb.total() + pp_mb.total();
    let mb = s.microbatches;
    // 1F1B bubble: (pp-1)/v stage-times (Narayanan et al. 2021).
    let bubble = t_avg * ((l.pp as f64 - 1.0) / l.virtual_stages as f64);

    // --- data-parallel reduction and optimizer ---
    let (dp, window) = comm::data_parallel(s, m);
    let window = match window {
        _ if !s.dp_overlap => Terms::default(),
        DpWindow::LastBackward => bwd_compute * ls,
        DpWindow::LastMicrobatch => (bwd_compute + fwd_compute) * ls,
        DpWindow::EveryMicrobatch => (stage_compute + logits) * mb,
    };
    let shard = if l.zero >= 1 {
        l.zero_group_size() as f64
    } else {
        1.0
    };

    // Forward plus backward: the step's memory-bound traffic and kernels per layer.
    let mem_passes = 1.0 + BACKWARD_MEMORY;
    let kernel_passes = 1.0 + BACKWARD_KERNELS;
    let matmul = ((bwd_matmul + fwd.linear + fwd.core) * ls + re_matmul * ls + logit_mm) * mb;
    let memory = ((fwd.memory * mem_passes + re_mem) * ls + logit_mem) * mb;
    let kernels = kernels((kernel_passes * fwd.kernels + re_kern) * ls + LOGIT_KERNELS) * mb;
    StepTerms {
        matmul,
        memory,
        kernels,
        recompute: layer_recompute * (ls * mb),
        tp: layer.tp.scaled(ls * mb),
        cp: layer.cp.scaled(ls * mb),
        ep: layer.ep.scaled(ls * mb),
        pp: pp_mb.scaled(mb),
        bubble,
        optimizer: optimizer(s, m, shard),
        dp,
        dp_window: window,
    }
    .check(t_max, mb)
}
