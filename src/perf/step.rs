//! Compute of one step: per-layer forward, backward and recompute, logits and optimizer, each a
//! [`Terms`] of matmul, memory-bound and per-kernel time; and their assembly into [`StepTerms`].
//!
//! Byte and kernel counts are per layer and micro-batch, per token `t` and model width `d` (or
//! per score or logit element), for one rank. Where a count is an assumption about how a
//! framework fuses kernels rather than a measurement, its doc says so; the shipped calibration
//! absorbs the error through the `memory` and `kernel_overhead_us` parameters.

use super::comm::{self, DpWindow};
use super::evaluate::StepTerms;
use super::gemm::GemmCost;
use super::memory::DROPOUT_MASK_BYTES_PER_TOKEN_PER_D;
use super::terms::Terms;
use super::theta::Param;
use super::{Machine, Shape};
use crate::hardware::Precision;
use crate::parallelism::{Recompute, RecomputeModule};
use crate::workload::AttentionKernel;

/// Bytes per element of a BF16 tensor (activations, gradients and weights in flight).
pub(super) const BF16_BYTES: f64 = Precision::Bf16.bytes();
/// Seconds per microsecond: kernel counts × `kernel_overhead_us`.
const SECONDS_PER_US: f64 = 1e-6;

/// HBM bytes per token per `d` outside the tensor-parallel region (split only by sequence
/// parallelism): two norms each reading and writing a BF16 tensor (2 × (2 + 2) B), and two fused
/// bias-dropout-residual-adds (Megatron-LM) each reading the branch output and the residual and
/// writing the sum (2 × (2 + 2 + 2) B): 8 + 12 = 20. Assumes one read and one write per tensor
/// per kernel.
const NORM_BYTES_PER_TOKEN_PER_D: f64 = 20.0;
/// Of [`NORM_BYTES_PER_TOKEN_PER_D`], the two norms' (2 × (2 + 2) B): what recomputing them
/// reads and writes again.
const NORM_RECOMPUTE_BYTES_PER_TOKEN_PER_D: f64 = 8.0;
/// Norm kernels per layer (`input_layernorm`, `pre_mlp_layernorm`).
const NORM_KERNELS: f64 = 2.0;
/// Kernels the recompute of the routed experts' activation function launches: one.
const ACTIVATION_KERNELS: f64 = 1.0;
/// HBM bytes per token per `d` per routed expert for MoE token shuffling: permuting each copy of
/// the token into its expert's buffer and un-permuting/combining it afterwards, each reading and
/// writing it in BF16 (2 × (2 + 2) B). An assumption (no fused permute).
const ROUTE_BYTES_PER_TOKEN_PER_D: f64 = 8.0;
/// HBM bytes per token per routed expert of the router's top-k: reading the FP32 router
/// logits and writing FP32 probabilities (4 + 4 B). An assumption (Megatron-Core keeps the
/// router's scores in FP32).
const ROUTER_SCORE_BYTES: f64 = 8.0;
/// Bytes per element of an FP8 GEMM operand.
const FP8_BYTES: f64 = Precision::Fp8.bytes();
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

/// Offloaded activations cross the host link twice: out in forward, back for backward.
const OFFLOAD_PASSES: f64 = 2.0;
/// Optimizer state bytes move twice per step: read, then written back.
const STATE_READ_WRITE: f64 = 2.0;
/// Kernels per optimizer step: gradient norm and clipping, inf/NaN check, the Adam update and
/// the copy to BF16 weights, each a few multi-tensor launches. An assumption.
const OPTIMIZER_KERNELS: f64 = 20.0;

/// `n` kernels.
fn kernels(n: f64) -> Terms {
    Terms::one(Param::Kernel, n * SECONDS_PER_US)
}

/// The GEMM pricing of the linear layers' format, and of BF16 (router, logits).
fn gemm_costs(m: &Machine) -> (GemmCost, GemmCost) {
    let bf16 = GemmCost {
        param: Param::Matmul,
        peak_flop_per_s: m.peak_bf16.flops_per_second(),
        hbm_bytes_per_s: m.hbm_bandwidth.bytes_per_second(),
        operand_bytes: BF16_BYTES,
        units: m.matrix_units,
    };
    let linear = if m.low_precision {
        GemmCost {
            param: Param::MatmulLow,
            peak_flop_per_s: m.peak_linear.flops_per_second(),
            operand_bytes: FP8_BYTES,
            ..bf16
        }
    } else {
        GemmCost {
            peak_flop_per_s: m.peak_linear.flops_per_second(),
            ..bf16
        }
    };
    (linear, bf16)
}

/// The most loaded expert-parallel rank's expert work over the mean.
///
/// With expert loads independent and of relative spread `σ`, the most loaded of `E` experts
/// is `1 + σ·z(E)` times the mean and the most loaded of `ep` ranks, each summing `L = E/ep`
/// experts, `1 + σ·z(ep)/√L`, where `z(n) ≈ √(2 ln n)` is the expected maximum of `n` standard
/// normals (the Gaussian extreme-value approximation). So the rank's excess is the expert's,
/// `f − 1`, times `√(ln ep / ln E) / √L`: all of it with one expert per rank, none without
/// expert parallelism. The independence is an assumption.
pub(super) fn rank_imbalance(expert_imbalance: f64, experts: f64, ep: f64) -> f64 {
    if experts <= 1.0 || ep <= 1.0 {
        return 1.0;
    }
    let local = (experts / ep).max(1.0);
    let extreme = (ep.min(experts).ln() / experts.ln()).sqrt();
    1.0 + (expert_imbalance - 1.0) * extreme / local.sqrt()
}

/// One layer's linear layers for one micro-batch, GEMM by GEMM: (forward, backward). The
/// attention projections and the dense MLP at `t` tokens; in MoE layers the shared experts at
/// `t`, the routed experts as a grouped GEMM of the rank's local experts at the tokens the most
/// loaded rank routes to each, and the router. Layer-averaged by the share of MoE layers.
fn linear_layers(s: &Shape, lin: &GemmCost, bf16: &GemmCost, imbalance: f64) -> (Terms, Terms) {
    let tp = s.layout.tp as f64;
    let t = s.tokens_per_microbatch();
    let d = s.d_model;
    let mut fwd = Terms::default();
    let mut bwd = Terms::default();
    let mut add = |(f, b): (Terms, Terms), share: f64| {
        fwd += f * share;
        bwd += b * share;
    };
    // The up-projections fused into one GEMM, then the down-projection.
    let mlp = |tokens: f64, width: f64, count: f64| {
        let (uf, ub) = lin.linear(tokens, d, width * s.mlp_matrices / tp, count);
        let (df, db) = lin.linear(tokens, width / tp, d, count);
        (uf + df, ub + db)
    };
    add(lin.linear(t, d, s.attn_in_width / tp, 1.0), 1.0);
    add(lin.linear(t, s.attn_out_width / tp, d, 1.0), 1.0);
    let moe = s.moe_fraction;
    if moe < 1.0 {
        add(mlp(t, s.ffn, 1.0), 1.0 - moe);
    }
    if moe > 0.0 && s.experts > 0.0 {
        if s.shared_experts > 0.0 {
            add(mlp(t, s.shared_experts * s.expert_ffn, 1.0), moe);
        }
        let ep = s.layout.ep as f64;
        let local = s.experts / ep;
        add(
            mlp(t * s.moe_active * imbalance / local, s.expert_ffn, local),
            moe,
        );
        add(bf16.linear(t / tp, d, s.experts, 1.0), moe);
    }
    (fwd, bwd)
}

/// One layer's forward pass for one micro-batch.
struct Forward {
    /// Linear layers (in the training format; the router in BF16).
    linear: Terms,
    /// Their data and weight gradients.
    linear_backward: Terms,
    /// Attention core (BF16), with the softmax's exponentials.
    core: Terms,
    /// Its backward.
    core_backward: Terms,
    /// Memory-bound kernels.
    memory: Terms,
    /// Kernels launched.
    kernels: f64,
    /// Of `memory`, the bytes of the unfused score tensor.
    score_bytes: f64,
    /// Of `memory`, the bytes of the MLP activation function.
    mlp_act_bytes: f64,
    /// Of `mlp_act_bytes`, the dense layers' (weighted by their share of layers).
    dense_act_bytes: f64,
    /// Of `mlp_act_bytes`, the routed experts' (at the most loaded rank's tokens).
    routed_act_bytes: f64,
    /// Of `memory`, the MoE token permutation's and the router's.
    route_bytes: f64,
    /// Of `memory`, the two norms' (reading the residual stream, writing their output).
    norm_bytes: f64,
    /// BF16 GEMM pricing (router, logits).
    bf16: GemmCost,
}

impl Forward {
    fn new(s: &Shape, m: &Machine) -> Self {
        let l = &s.layout;
        let tp = l.tp as f64;
        let t = s.tokens_per_microbatch();
        let d = s.d_model;
        let flash = s.attention == AttentionKernel::Flash;
        let (lin, bf16) = gemm_costs(m);
        let imbalance = rank_imbalance(s.moe_imbalance, s.experts, l.ep as f64);
        let (linear, linear_backward) = linear_layers(s, &lin, &bf16, imbalance);
        let sp_div = if l.sequence_parallel { tp } else { 1.0 };

        let causal = if flash { FLASH_CAUSAL_FRACTION } else { 1.0 };
        let f_core = t * s.core_per_token / tp * causal;
        let core_matmul = f_core / m.peak_bf16.flops_per_second();
        let (core, core_backward) = if flash {
            // The fused kernel evaluates one exponential per score in forward and again in
            // backward, where it rebuilds the probabilities (Dao 2023), on the special-function
            // units. Priced serially with the matmuls (on GB200 the second matmul waits for the
            // softmax: NVIDIA, Making Softmax More Efficient with Blackwell Ultra, 2025), at the
            // fitted attention efficiency, which absorbs how much of them a kernel hides. Chips
            // whose exponential rate is not published (TPU, Trainium, A100) price the matmuls
            // alone.
            let exp = m.exp_rate.map_or(0.0, |r| {
                // Scores per token of one layer: keys attended times query heads.
                t * s.seq * s.heads / tp * causal / r.exp_per_second()
            });
            (
                Terms::one(Param::Attention, core_matmul + exp),
                Terms::one(Param::Attention, core_matmul * FLASH_BACKWARD_CORE + exp),
            )
        } else {
            // Unfused, QKᵀ and AV are batched GEMMs (cuBLAS), at the BF16 GEMM efficiency, and
            // the softmax is its own memory-bound kernel (`score_bytes`).
            let core = Terms::one(Param::Matmul, core_matmul);
            (core, core * UNFUSED_BACKWARD_CORE)
        };
        let bw = m.hbm_bandwidth.bytes_per_second();
        // The MLP activation reads its inputs (one per up-projection) and writes one output;
        // the routed experts' share at the most loaded rank's tokens.
        let routed_width = s.moe_fraction * s.moe_active * s.expert_ffn;
        let mlp_width = s.mlp_width + routed_width * (imbalance - 1.0);
        let act_bytes = BF16_BYTES * t * mlp_width * (s.mlp_matrices + 1.0) / tp;
        let act_bytes_of = |width: f64| BF16_BYTES * t * width * (s.mlp_matrices + 1.0) / tp;
        let (mask_bytes, score_dropout_bytes) = if s.dropout {
            (DROPOUT_MASK_BYTES_PER_TOKEN_PER_D, SCORE_DROPOUT_BYTES)
        } else {
            (0.0, 0.0)
        };
        let norm_bytes = (NORM_BYTES_PER_TOKEN_PER_D + mask_bytes) * t * d / sp_div;
        let route_bytes = ROUTE_BYTES_PER_TOKEN_PER_D * t * d * s.moe_active * imbalance
            + ROUTER_SCORE_BYTES * t * s.experts;
        let route_bytes = route_bytes * s.moe_fraction / tp;
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
            linear,
            linear_backward,
            core,
            core_backward,
            memory: Terms::one(
                Param::Memory,
                (act_bytes + norm_bytes + route_bytes + score_bytes) / bw,
            ),
            kernels: LAYER_KERNELS + attention_kernels + MOE_KERNELS * s.moe_fraction,
            score_bytes,
            mlp_act_bytes: act_bytes,
            dense_act_bytes: act_bytes_of(s.ffn * (1.0 - s.moe_fraction)),
            routed_act_bytes: act_bytes_of(routed_width * imbalance),
            route_bytes,
            norm_bytes: NORM_RECOMPUTE_BYTES_PER_TOKEN_PER_D * t * d / sp_div,
            bf16,
        }
    }

    fn total(&self) -> Terms {
        self.linear + self.core + self.memory + kernels(self.kernels)
    }
}

/// One layer's backward pass: (matmuls, everything).
fn backward(f: &Forward) -> (Terms, Terms) {
    let matmul = f.linear_backward + f.core_backward;
    let total = matmul + f.memory * BACKWARD_MEMORY + kernels(BACKWARD_KERNELS * f.kernels);
    (matmul, total)
}

/// One layer's recompute: (matmuls, memory, kernels), averaged over the most loaded stage's
/// layers. Full recompute repeats the forward (of the block's share of layers with
/// `recompute_layers`); selective recompute (Korthikanti et al. 2022) repeats the unfused
/// attention core only; the `mlp` policy is its `mlp` and `moe` modules. Modules beyond the
/// policy add theirs ([`module_recompute`]).
fn recompute(f: &Forward, s: &Shape, m: &Machine) -> (Terms, Terms, f64) {
    let flash = s.attention == AttentionKernel::Flash;
    let bw = m.hbm_bandwidth.bytes_per_second();
    let l = &s.layout;
    let base = match l.recompute {
        Recompute::Full => {
            let share = s.full_recompute_fraction(s.layers_per_stage);
            (
                (f.linear + f.core) * share,
                f.memory * share,
                f.kernels * share,
            )
        }
        Recompute::Selective if !flash => (
            f.core,
            Terms::one(Param::Memory, f.score_bytes / bw),
            UNFUSED_ATTENTION_KERNELS,
        ),
        _ => (Terms::default(), Terms::default(), 0.0),
    };
    // Modules priced one by one: those beyond the policy, and the `mlp` policy's own (its
    // `mlp` and `moe` modules).
    let all = l.recompute.modules().union(l.recompute_modules);
    let priced = if l.recompute == Recompute::Mlp {
        all
    } else {
        l.recompute_modules.without(l.recompute.modules())
    };
    priced.iter().fold(base, |(mm, mem, k), module| {
        let (a, b, c) = module_recompute(module, all, f, s, m);
        (mm + a, mem + b, k + c)
    })
}

/// What recomputing one module adds to a layer's recompute (layer-averaged), given `all` the
/// modules recomputed: the attention core as selective recompute; the dense or MoE MLP block
/// its linear FLOPs, activation traffic and kernels (the MoE block also its token permutation
/// and router, its dispatch and combine in [`super::comm`]); the routed experts' activation
/// function its traffic and one kernel, unless the MoE block it sits in is recomputed whole;
/// the norms their traffic and two kernels, less the MLP's norm where the MLP block is
/// recomputed (its recompute re-runs that norm). The same accounting as the memory model's.
fn module_recompute(
    module: crate::parallelism::RecomputeModule,
    all: crate::parallelism::RecomputeModules,
    f: &Forward,
    s: &Shape,
    m: &Machine,
) -> (Terms, Terms, f64) {
    use crate::parallelism::RecomputeModule as M;
    // Of the two norms, those not already re-run by an MLP recompute.
    let norms = (2.0 - s.mlp_recomputed_share(all)) / 2.0;
    let bw = m.hbm_bandwidth.bytes_per_second();
    let memory = |bytes: f64| Terms::one(Param::Memory, bytes / bw);
    let moe = s.moe_fraction;
    let share = |flops: f64| {
        if s.linear_per_token > 0.0 {
            flops / s.linear_per_token
        } else {
            0.0
        }
    };
    match module {
        M::CoreAttn if s.attention == AttentionKernel::Unfused => {
            (f.core, memory(f.score_bytes), UNFUSED_ATTENTION_KERNELS)
        }
        M::CoreAttn => (Terms::default(), Terms::default(), 0.0),
        M::Mlp => (
            f.linear * share(s.dense_mlp_per_token),
            memory(f.dense_act_bytes),
            MLP_RECOMPUTE_KERNELS * (1.0 - moe),
        ),
        M::Moe => (
            f.linear * share(s.mlp_per_token - s.dense_mlp_per_token),
            memory(f.mlp_act_bytes - f.dense_act_bytes + f.route_bytes),
            (MLP_RECOMPUTE_KERNELS + MOE_KERNELS) * moe,
        ),
        M::MoeAct if all.contains(M::Moe) => (Terms::default(), Terms::default(), 0.0),
        M::MoeAct => (
            Terms::default(),
            memory(f.routed_act_bytes),
            ACTIVATION_KERNELS * moe,
        ),
        M::Layernorm => (
            Terms::default(),
            memory(f.norm_bytes * norms),
            NORM_KERNELS * norms,
        ),
    }
}

/// The logits and loss of one micro-batch: (matmul, memory).
fn logits(s: &Shape, m: &Machine, bf16: &GemmCost) -> (Terms, Terms) {
    let tp = s.layout.tp as f64;
    let t = s.tokens_per_microbatch();
    let bw = m.hbm_bandwidth.bytes_per_second();
    // Forward, data and weight gradient: LOGIT_MATMUL_PASSES GEMMs. `logit_per_token` also
    // holds the multi-token-prediction modules (priced beside the head on the last stage): they
    // run as one GEMM of the equivalent width, so that their FLOPs are priced as counted.
    let width = s.logit_per_token / (2.0 * s.d_model);
    let (fwd, bwd) = bf16.linear(t, s.d_model, width / tp, 1.0);
    (
        fwd + bwd,
        Terms::one(Param::Memory, LOGIT_BYTES * t * s.vocab / tp / bw),
    )
}

/// Host-offload traffic of one layer and micro-batch: the offloaded activations go to host
/// memory in forward and come back for backward over the chip's host link, overlapped with the
/// layer's compute (Megatron-Core's CPU offloading streams them layer by layer), so priced as
/// overlappable traffic at the fitted exposure. Zero without offload; a system without a
/// host-link figure cannot offload (the job is refused before this is reached).
fn offload(s: &Shape, m: &Machine) -> Terms {
    match m.host_bandwidth {
        Some(bw) if s.offload > 0.0 => Terms::one(
            Param::Overlap,
            OFFLOAD_PASSES * super::memory::offloaded_per_layer(s) / bw.bytes_per_second(),
        ),
        _ => Terms::default(),
    }
}

/// The optimizer step over the parameters of one chip, sharded `shard` ways.
fn optimizer(s: &Shape, m: &Machine, shard: f64) -> Terms {
    // Adam reads the gradient and the state, writes the state and the BF16 weights.
    let adam_bytes = s.grad_bytes + STATE_READ_WRITE * s.optimizer_bytes + s.param_bytes;
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
    let l = &s.layout;
    let mut recompute = match l.recompute {
        Recompute::Full => (s.linear_per_token + core) * s.model_full_recompute_fraction(),
        Recompute::Mlp => s.mlp_per_token,
        Recompute::Selective if !flash => core,
        _ => 0.0,
    };
    for module in l.recompute_modules.without(l.recompute.modules()).iter() {
        recompute += match module {
            RecomputeModule::CoreAttn if !flash => core,
            RecomputeModule::Mlp => s.dense_mlp_per_token,
            RecomputeModule::Moe => s.mlp_per_token - s.dense_mlp_per_token,
            _ => 0.0,
        };
    }
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
    let (bwd_matmul, bwd_compute) = backward(&fwd);
    let (re_matmul, re_mem, re_kern) = recompute(&fwd, s, m);
    let layer = comm::layer(s, m);

    // --- one micro-batch on the slowest stage ---
    let ls = s.layers_per_stage;
    let (logit_mm, logit_mem) = logits(s, m, &fwd.bf16);
    let logits = logit_mm + logit_mem + kernels(LOGIT_KERNELS);
    let layer_compute = fwd_compute + bwd_compute;
    let layer_recompute = re_matmul + re_mem + kernels(re_kern);
    let stage_compute = (layer_compute + layer_recompute) * ls;
    let pp_mb = comm::pipeline(s, m);
    let comm_mb = layer.tp.scaled(ls) + layer.cp.scaled(ls) + layer.ep.scaled(ls);
    let offload_mb = offload(s, m) * ls;
    let t_max = stage_compute + logits + comm_mb.total() + pp_mb.total() + offload_mb;
    // The logits run on the last stage only: 1/pp of them per stage on average.
    let t_avg =
        stage_compute + logits * (1.0 / l.pp as f64) + comm_mb.total() + pp_mb.total() + offload_mb;
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
        offload: offload_mb * mb,
        bubble,
        optimizer: optimizer(s, m, shard),
        dp,
        dp_window: window,
        softmax_priced: s.attention == AttentionKernel::Flash && m.exp_rate.is_some(),
    }
    .check(t_max, mb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{Catalog, Precision};
    use crate::parallelism::Layout;
    use crate::perf::gemm::MatrixUnits;
    use crate::units::BytesPerSecond;
    use crate::workload::{preset, TrainingSetup};
    use approx::assert_relative_eq;

    /// Mixtral 8x7B on 16 H100s, `tp` × `ep`, micro-batch `mb` of 4,096 tokens.
    fn mixtral(tp: u32, ep: u32, mb: u32, imbalance: f64) -> (Shape, Machine) {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let cluster = c.cluster("h100-sxm", 16).unwrap_or_else(|e| panic!("{e}"));
        let model = preset("mixtral-8x7b").unwrap_or_else(|e| panic!("{e}"));
        let mut setup =
            TrainingSetup::new(256, 4096, 1e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
        setup.moe_load_imbalance = imbalance;
        let mut l = Layout::data_parallel(16 / tp);
        l.tp = tp;
        l.ep = ep;
        l.microbatch = mb;
        l.sequence_parallel = tp > 1;
        l.validate(&model, &cluster, &setup, false)
            .unwrap_or_else(|e| panic!("{e}"));
        let m = Machine::new(&cluster, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
        (Shape::new(&model, &setup, &l), m)
    }

    /// Differential: with no quantization and unlimited bandwidth the GEMMs of a layer are its
    /// FLOPs at peak, forward once and backward twice, for dense and MoE models alike; so the
    /// matmul terms and `executed_flops_per_token` count the same FLOPs.
    #[test]
    fn gemms_sum_to_the_layer_flops() {
        for (tp, ep) in [(1, 1), (2, 4), (4, 2)] {
            let (s, m) = mixtral(tp, ep, 1, 1.0);
            let ideal = Machine {
                matrix_units: MatrixUnits::NONE,
                hbm_bandwidth: BytesPerSecond::new(1e30),
                ..m
            };
            let (lin, bf16) = gemm_costs(&ideal);
            let (fwd, bwd) = linear_layers(&s, &lin, &bf16, 1.0);
            let flops = s.tokens_per_microbatch() * s.linear_per_token / tp as f64;
            let peak = ideal.peak_linear.flops_per_second();
            assert_relative_eq!(fwd.get(Param::Matmul) * peak, flops, max_relative = 1e-9);
            assert_relative_eq!(
                bwd.get(Param::Matmul) * peak,
                BACKWARD_LINEAR * flops,
                max_relative = 1e-9
            );
        }
    }

    /// The most loaded rank's excess: all of the expert's with one expert per rank, none
    /// without expert parallelism, less with more experts per rank.
    #[test]
    fn rank_imbalance_limits() {
        assert_relative_eq!(rank_imbalance(1.5, 8.0, 8.0), 1.5);
        assert_relative_eq!(rank_imbalance(1.5, 8.0, 1.0), 1.0);
        assert_relative_eq!(rank_imbalance(1.0, 64.0, 8.0), 1.0);
        let few = rank_imbalance(1.5, 64.0, 32.0);
        let many = rank_imbalance(1.5, 64.0, 4.0);
        assert!(1.0 < many && many < few && few < 1.5, "{many} {few}");
    }

    /// Load imbalance slows the expert GEMMs of the most loaded rank by its factor; fewer
    /// tokens per expert make each expert FLOP dearer (the weights are read for fewer rows).
    #[test]
    fn expert_gemms_follow_tokens_per_expert() {
        let theta = crate::perf::Efficiency::PRIOR.to_theta();
        let time = |s: &Shape, m: &Machine| {
            let (lin, bf16) = gemm_costs(m);
            let f = rank_imbalance(s.moe_imbalance, s.experts, s.layout.ep as f64);
            linear_layers(s, &lin, &bf16, f).0.at(&theta)
        };
        let (balanced, m) = mixtral(1, 8, 1, 1.0);
        let (skewed, _) = mixtral(1, 8, 1, 1.5);
        assert!(time(&skewed, &m) > 1.3 * time(&balanced, &m));
        // A tiny micro-batch: per token, slower than a large one.
        let mut small = balanced;
        small.seq = 64.0;
        let mut large = balanced;
        large.seq = 16384.0;
        let per_token = |s: &Shape| time(s, &m) / s.tokens_per_microbatch();
        assert!(per_token(&small) > 1.5 * per_token(&large));
    }
}
