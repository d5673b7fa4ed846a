//! The step terms of one configuration, and their evaluation at θ into a breakdown and a
//! prediction.

use super::memory::{self, memory_margin, MemoryBand, MemoryBreakdown};
use super::step::{causal_model_flops_per_token, executed_flops_per_token, step_terms};
use super::terms::{Comm, Terms};
use super::theta::{Efficiency, Param, PARAMS};
use super::{Machine, Shape};
use crate::parallelism::{Recompute, RecomputeModule};
use crate::units::{Bytes, Flops, FlopsPerSecond, Seconds};
use crate::workload::AttentionKernel;
use serde::{Deserialize, Serialize};

/// Model FLOPs of training per forward FLOP: forward, and backward at twice the forward.
const TRAINING_PASSES: f64 = 3.0;

/// The step split into linear pieces (each a [`Terms`]), before θ is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTerms {
    pub(super) matmul: Terms,
    pub(super) memory: Terms,
    pub(super) kernels: Terms,
    pub(super) recompute: Terms,
    pub(super) tp: Comm,
    pub(super) cp: Comm,
    pub(super) ep: Comm,
    pub(super) pp: Comm,
    pub(super) offload: Terms,
    pub(super) bubble: Terms,
    pub(super) optimizer: Terms,
    pub(super) dp: Comm,
    pub(super) dp_window: Terms,
    /// Whether the attention term prices the softmax's exponentials (a fused kernel on a chip
    /// with a published exponential rate).
    pub(super) softmax_priced: bool,
}

/// What limits the step most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// Matmul throughput.
    Compute,
    /// HBM bandwidth (memory-bound kernels, optimizer).
    MemoryBandwidth,
    /// Per-kernel fixed costs (small operations).
    KernelOverhead,
    /// Exposed communication on scale-up links.
    ScaleUpNetwork,
    /// Exposed communication on the scale-out network.
    ScaleOutNetwork,
    /// The pipeline bubble.
    Bubble,
}

impl Bound {
    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::MemoryBandwidth => "memory-bandwidth",
            Self::KernelOverhead => "kernel-overhead",
            Self::ScaleUpNetwork => "scale-up-network",
            Self::ScaleOutNetwork => "scale-out-network",
            Self::Bubble => "bubble",
        }
    }
}

/// Where the time of one step goes (all on the critical path; they add up to `step`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepBreakdown {
    /// Matmul time (forward, backward, recompute) outside the bubble; the fused attention
    /// kernel's softmax exponentials, where priced, count here with its matmuls.
    pub matmul: Seconds,
    /// Memory-bound kernels outside the bubble.
    pub memory_bound: Seconds,
    /// Per-kernel fixed costs outside the bubble.
    pub kernel_overhead: Seconds,
    /// Of the compute above, the part spent recomputing activations.
    pub recompute: Seconds,
    /// Exposed tensor-parallel communication.
    pub tp_comm: Seconds,
    /// Exposed context-parallel communication.
    pub cp_comm: Seconds,
    /// Exposed expert-parallel all-to-all.
    pub ep_comm: Seconds,
    /// Exposed pipeline point-to-point.
    pub pp_comm: Seconds,
    /// Exposed activation offload to host memory and back.
    #[serde(default)]
    pub offload: Seconds,
    /// Exposed data-parallel communication.
    pub dp_comm: Seconds,
    /// Exposed communication on scale-up links (all kinds).
    pub scale_up_comm: Seconds,
    /// Exposed communication on the scale-out network (all kinds).
    pub scale_out_comm: Seconds,
    /// Pipeline bubble.
    pub bubble: Seconds,
    /// Optimizer step.
    pub optimizer: Seconds,
    /// Total step time.
    pub step: Seconds,
}

impl StepTerms {
    /// The linear form of the step time at θ (chooses which overlap regime applies at θ).
    #[must_use]
    pub fn linear_at(&self, theta: &[f64; PARAMS]) -> Terms {
        let base = self.matmul
            + self.memory
            + self.kernels
            + self.tp.total()
            + self.cp.total()
            + self.ep.total()
            + self.pp.total()
            + self.offload
            + self.bubble
            + self.optimizer;
        base + self.dp_exposed(theta).1
    }

    /// Whether any matmul runs in a low-precision format (FP8/FP4), so that a fit can learn
    /// its efficiency.
    #[must_use]
    pub fn low_precision_matmul(&self) -> bool {
        self.matmul.get(Param::MatmulLow) > 0.0
    }

    /// Whether the attention term prices the softmax's exponentials beside the matmuls (a
    /// fused kernel on a chip with a published exponential rate): its fitted efficiency is
    /// then that of the serial matmul-plus-exponential time.
    #[must_use]
    pub fn softmax_priced(&self) -> bool {
        self.softmax_priced
    }

    /// Whether the step has MoE layers, whose fixed cost a fit can then learn.
    #[must_use]
    pub fn has_moe_layers(&self) -> bool {
        self.ep.total().get(Param::MoeFixed) > 0.0
    }

    /// (fraction of DP traffic exposed, its terms) at θ.
    ///
    /// Overlapped traffic is exposed by its excess over the compute window, but never by less
    /// than the overlap exposure of the whole traffic (overlapped collectives still contend for
    /// memory bandwidth and compute units).
    fn dp_exposed(&self, theta: &[f64; PARAMS]) -> (f64, Terms) {
        let total = self.dp.total();
        let t = total.at(theta);
        if t <= 0.0 {
            return (0.0, Terms::default());
        }
        if self.dp_window == Terms::default() {
            return (1.0, total);
        }
        let excess = total + self.dp_window * -1.0;
        // The same traffic priced at the overlap exposure instead of the network efficiency.
        let floor = Terms::one(Param::Overlap, total.get(Param::Network));
        let (e, f) = (excess.at(theta), floor.at(theta));
        if e >= t {
            (1.0, total)
        } else if e >= f {
            (e / t, excess)
        } else {
            (f / t, floor)
        }
    }

    /// Apply θ.
    #[must_use]
    pub fn breakdown(&self, theta: &[f64; PARAMS]) -> StepBreakdown {
        let (frac, dp_terms) = self.dp_exposed(theta);
        let at = |t: Terms| Seconds::new(t.at(theta));
        let up = self.tp.up + self.cp.up + self.ep.up + self.pp.up;
        let out = self.tp.out + self.cp.out + self.ep.out + self.pp.out;
        let dp_up = at(self.dp.up) * frac;
        let dp_out = at(self.dp.out) * frac;
        let b = StepBreakdown {
            matmul: at(self.matmul),
            memory_bound: at(self.memory),
            kernel_overhead: at(self.kernels),
            recompute: at(self.recompute),
            tp_comm: at(self.tp.total()),
            cp_comm: at(self.cp.total()),
            ep_comm: at(self.ep.total()),
            pp_comm: at(self.pp.total()),
            offload: at(self.offload),
            dp_comm: at(dp_terms),
            scale_up_comm: at(up) + dp_up,
            scale_out_comm: at(out) + dp_out,
            bubble: at(self.bubble),
            optimizer: at(self.optimizer),
            step: Seconds::ZERO,
        };
        StepBreakdown {
            step: Seconds::new(self.linear_at(theta).at(theta)),
            ..b
        }
    }

    /// Debug check: the pieces outside the bubble are `mb` micro-batches of the slowest stage.
    pub(super) fn check(self, t_max: Terms, mb: f64) -> Self {
        debug_assert!({
            let sum = self.matmul
                + self.memory
                + self.kernels
                + self.tp.total()
                + self.cp.total()
                + self.ep.total()
                + self.pp.total()
                + self.offload;
            let want = t_max * mb;
            sum.0
                .iter()
                .zip(want.0)
                .all(|(a, b)| (a - b).abs() <= 1e-9 * b.abs().max(1e-30))
        });
        self
    }
}

/// Everything about one configuration that does not depend on θ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Step terms.
    pub terms: StepTerms,
    /// Memory per chip.
    pub memory: MemoryBreakdown,
    /// Model FLOPs per step (no recompute).
    pub model_flops: Flops,
    /// Hardware FLOPs per step in the published convention: model FLOPs (full score square)
    /// plus recompute. Converts runs published as HFU; can exceed the FLOPs executed.
    pub hardware_flops: Flops,
    /// FLOPs the kernels execute per step: the causal half of the scores with flash attention,
    /// its backward's score recompute, activation recompute. [`Prediction::hfu`] uses these.
    pub executed_flops: Flops,
    /// Model FLOPs per step with the scores counted over the causal half of the square.
    pub causal_model_flops: Flops,
    /// Tokens per step.
    pub tokens_per_step: f64,
    /// Chips.
    pub chips: f64,
    /// Peak per chip in the training format.
    pub peak: FlopsPerSecond,
    /// HBM capacity per chip.
    pub hbm_capacity: Bytes,
    /// Host memory per chip (offload's capacity), when known.
    pub host_capacity: Option<Bytes>,
}

/// A prediction for one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Time breakdown.
    pub breakdown: StepBreakdown,
    /// Memory per chip.
    pub memory: MemoryBreakdown,
    /// Whether the memory is accepted: it fits the HBM, or is [`MemoryBand::Tight`] (over by
    /// less than the memory model's error).
    pub fits_memory: bool,
    /// Where the memory need falls against the HBM: fits, tight or does not fit.
    pub memory_band: MemoryBand,
    /// Free HBM as a fraction of the capacity (negative by the relative excess when over).
    pub memory_margin: f64,
    /// Step time.
    pub step_time: Seconds,
    /// Tokens per second, whole cluster.
    pub tokens_per_second: f64,
    /// Model FLOPs utilisation against the training format's peak, in the convention of the
    /// published runs: attention scores over the full `s × s` square. Can exceed 1 at long
    /// context, where a causal kernel computes only half of it.
    pub mfu: f64,
    /// Model FLOPs utilisation with the scores counted over the causal half of the square.
    /// Never above [`Prediction::hfu`], so never above 1.
    pub mfu_causal: f64,
    /// Hardware FLOPs utilisation: the FLOPs the kernels execute (the causal half with flash
    /// attention, recompute included) against the peak. Never above 1.
    pub hfu: f64,
    /// Achieved model FLOP/s per chip.
    pub model_flops_per_chip: FlopsPerSecond,
    /// What bounds the step.
    pub bound_by: Bound,
    /// Share of the step taken by `bound_by`.
    pub bound_share: f64,
}

/// Recomputed FLOPs as a fraction of model FLOPs: full recompute adds one forward (a third of
/// training; of the block's share of layers with `recompute_layers`); selective recompute of
/// unfused attention adds the attention core's forward; MLP recompute the MLP's forward; the
/// `mlp` and `moe` modules the dense and MoE layers' MLP forward. Norm and activation
/// recompute add no matmul FLOPs.
fn recompute_share(shape: &Shape) -> f64 {
    let total = TRAINING_PASSES
        * (shape.layers * (shape.linear_per_token + shape.core_per_token) + shape.logit_per_token);
    let l = &shape.layout;
    let base = match (l.recompute, shape.attention) {
        (Recompute::Full, _) => {
            let share = shape.model_full_recompute_fraction();
            if share >= 1.0 {
                1.0 / TRAINING_PASSES
            } else {
                share / TRAINING_PASSES
            }
        }
        _ if total <= 0.0 => 0.0,
        (Recompute::Mlp, _) => shape.mlp_per_token * shape.layers / total,
        (Recompute::Selective, AttentionKernel::Unfused) => {
            shape.core_per_token * shape.layers / total
        }
        _ => 0.0,
    };
    if total <= 0.0 {
        return base;
    }
    let extra: f64 = l
        .recompute_modules
        .without(l.recompute.modules())
        .iter()
        .map(|m| match (m, shape.attention) {
            (RecomputeModule::CoreAttn, AttentionKernel::Unfused) => shape.core_per_token,
            (RecomputeModule::Mlp, _) => shape.dense_mlp_per_token,
            (RecomputeModule::Moe, _) => shape.mlp_per_token - shape.dense_mlp_per_token,
            _ => 0.0,
        })
        .sum();
    if extra > 0.0 {
        base + extra * shape.layers / total
    } else {
        base
    }
}

/// Evaluate one configuration without θ.
#[must_use]
pub fn evaluate(shape: &Shape, machine: &Machine) -> Evaluation {
    let model_flops = Flops::new(shape.model_flops_per_step);
    Evaluation {
        terms: step_terms(shape, machine),
        memory: memory::memory(shape),
        model_flops,
        hardware_flops: model_flops * (1.0 + recompute_share(shape)),
        executed_flops: Flops::new(executed_flops_per_token(shape) * shape.tokens_per_step),
        causal_model_flops: Flops::new(causal_model_flops_per_token(shape) * shape.tokens_per_step),
        tokens_per_step: shape.tokens_per_step,
        chips: shape.chips,
        peak: machine.peak_linear,
        hbm_capacity: machine.hbm_capacity,
        host_capacity: machine.host_memory,
    }
}

/// The memory band: HBM's, unless the offloaded activations overflow host memory (or there is
/// none to offload to), which does not fit.
fn band(memory: &MemoryBreakdown, hbm: Bytes, host: Option<Bytes>) -> MemoryBand {
    let offloaded = memory.offloaded > Bytes::ZERO;
    if offloaded && host.is_none_or(|h| memory.offloaded > h) {
        MemoryBand::DoesNotFit
    } else {
        MemoryBand::of(memory.total(), hbm)
    }
}

/// What a search ranks by, without the rest of a prediction: the memory per chip, its band
/// and, when the band is feasible (fits or tight), the step time in seconds at θ — bitwise what
/// [`Evaluation::predict`] gives. Layouts that do not fit skip the step model.
#[must_use]
pub fn step_if_fits(
    shape: &Shape,
    machine: &Machine,
    theta: &[f64; PARAMS],
) -> (Bytes, MemoryBand, Option<f64>) {
    let memory = memory::memory(shape);
    let band = band(&memory, machine.hbm_capacity, machine.host_memory);
    let step = band
        .feasible()
        .then(|| step_terms(shape, machine).linear_at(theta).at(theta));
    (memory.total(), band, step)
}

/// The memory band of a configuration alone (the search's cheap probe: no step model).
#[must_use]
pub fn memory_band(shape: &Shape, machine: &Machine) -> MemoryBand {
    band(
        &memory::memory(shape),
        machine.hbm_capacity,
        machine.host_memory,
    )
}

impl Evaluation {
    /// Apply efficiency parameters.
    #[must_use]
    pub fn predict(&self, eff: &Efficiency) -> Prediction {
        let b = self.terms.breakdown(&eff.to_theta());
        let step = b.step;
        let denom = step.seconds() * self.chips * self.peak.flops_per_second();
        let candidates = [
            (Bound::Compute, b.matmul),
            (Bound::MemoryBandwidth, b.memory_bound + b.optimizer),
            (Bound::KernelOverhead, b.kernel_overhead),
            (Bound::ScaleUpNetwork, b.scale_up_comm),
            (Bound::ScaleOutNetwork, b.scale_out_comm),
            (Bound::Bubble, b.bubble),
        ];
        // The largest part; the first on ties.
        let (bound_by, worst) =
            candidates
                .iter()
                .copied()
                .fold((Bound::Compute, Seconds::ZERO), |acc, c| {
                    if c.1 > acc.1 {
                        c
                    } else {
                        acc
                    }
                });
        let memory_band = band(&self.memory, self.hbm_capacity, self.host_capacity);
        Prediction {
            breakdown: b,
            memory: self.memory,
            fits_memory: memory_band.feasible(),
            memory_band,
            memory_margin: memory_margin(self.memory.total(), self.hbm_capacity),
            step_time: step,
            tokens_per_second: self.tokens_per_step / step.seconds(),
            mfu: self.model_flops.flops() / denom,
            mfu_causal: self.causal_model_flops.flops() / denom,
            hfu: self.executed_flops.flops() / denom,
            model_flops_per_chip: self.model_flops / step * (1.0 / self.chips),
            bound_by,
            bound_share: worst / step,
        }
    }
}
