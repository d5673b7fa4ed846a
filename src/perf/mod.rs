//! The analytic training-step model.
//!
//! A step is built from first principles as a sum of *basis terms*, each a physical quantity
//! divided by a hardware peak (FLOPs / peak FLOP/s, bytes / HBM bandwidth, kernel launches,
//! bytes / link bandwidth), multiplied by one of seven efficiency parameters:
//!
//! | parameter | meaning | applies to |
//! |---|---|---|
//! | `matmul` | achieved / peak FLOP/s of BF16 matmuls | attention core, logits, BF16 linear layers |
//! | `matmul_low` | achieved / peak of FP8/FP4 matmuls | linear layers in FP8/FP4 |
//! | `memory` | achieved / peak HBM bandwidth | norms, activations, softmax, optimizer |
//! | `kernel_overhead` | fixed cost per kernel (launch, tail) | every kernel |
//! | `network` | achieved / link bandwidth of exposed collectives | TP (not overlapped), EP, DP exposed |
//! | `overlap_exposure` | fraction of overlappable traffic left exposed | TP (overlapped), CP, PP |
//! | `latency_scale` | achieved / catalog per-step link latency | the α term of every collective |
//!
//! The step time is linear in the inverses of the efficiencies (and the kernel cost), which is
//! what makes the calibration a least-squares fit ([`crate::calibration`]).
//!
//! Pipeline: `m` micro-batches on the slowest stage plus the 1F1B bubble `(pp-1)/v` stage-times
//! (Narayanan et al. 2021). Data-parallel reduction overlaps the last micro-batch's backward pass
//! (ZeRO-0/1) or, with FSDP's per-layer collectives (ZeRO-2/3), each micro-batch's compute; the
//! excess over the compute window is exposed, and never less than `overlap_exposure` of it.

mod memory;

pub use memory::{MemoryBreakdown, WEIGHT_BYTES};

use crate::error::Result;
use crate::hardware::{Cluster, Precision};
use crate::network::{Collective, CommTime, Fabric, Group};
use crate::parallelism::{Layout, Recompute};
use crate::units::{Bytes, BytesPerSecond, Flops, FlopsPerSecond, Seconds};
use crate::workload::{AttentionKernel, Model, TrainingSetup};
use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Mul};

/// Number of efficiency parameters.
pub const PARAMS: usize = 7;
/// Names of the efficiency parameters, in [`Efficiency::to_theta`] order.
pub const PARAM_NAMES: [&str; PARAMS] = [
    "matmul",
    "matmul_low",
    "memory",
    "kernel_overhead_us",
    "network",
    "overlap_exposure",
    "latency_scale",
];
const MM: usize = 0;
const LOW: usize = 1;
const MEM: usize = 2;
const KERN: usize = 3;
const NET: usize = 4;
const OVL: usize = 5;
const LAT: usize = 6;

/// Efficiency parameters of one calibration group (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Achieved fraction of BF16 matmul peak.
    pub matmul: f64,
    /// Achieved fraction of FP8/FP4 matmul peak.
    pub matmul_low: f64,
    /// Achieved fraction of HBM bandwidth in memory-bound kernels.
    pub memory: f64,
    /// Fixed cost per kernel, microseconds.
    pub kernel_overhead_us: f64,
    /// Achieved fraction of link bandwidth in exposed collectives.
    pub network: f64,
    /// Fraction of overlappable communication left exposed (bandwidth-normalised).
    pub overlap_exposure: f64,
    /// Achieved per-step collective latency as a multiple of the catalog's (assumed) link latency.
    pub latency_scale: f64,
}

impl Efficiency {
    /// The prior used when nothing is fitted, and as the centre of the fit's regularisation:
    /// vendor-typical GEMM efficiency (~80% BF16, ~65% FP8), STREAM-like HBM efficiency (~70%),
    /// a few microseconds per kernel, NCCL bus bandwidth ~70% of link rate, a third of
    /// overlappable traffic exposed.
    pub const PRIOR: Efficiency = Efficiency {
        matmul: 0.80,
        matmul_low: 0.65,
        memory: 0.70,
        kernel_overhead_us: 4.0,
        network: 0.70,
        overlap_exposure: 0.30,
        latency_scale: 1.0,
    };

    /// Prior standard deviations in θ space (see [`Efficiency::to_theta`]).
    pub const PRIOR_SIGMA: [f64; PARAMS] = [0.35, 0.5, 0.6, 4.0, 0.6, 0.3, 1.0];

    /// The linear parameters θ: inverse efficiencies, kernel cost in µs, exposure, latency scale.
    #[must_use]
    pub fn to_theta(&self) -> [f64; PARAMS] {
        [
            1.0 / self.matmul,
            1.0 / self.matmul_low,
            1.0 / self.memory,
            self.kernel_overhead_us,
            1.0 / self.network,
            self.overlap_exposure,
            self.latency_scale,
        ]
    }

    /// Inverse of [`Efficiency::to_theta`].
    #[must_use]
    pub fn from_theta(t: &[f64; PARAMS]) -> Self {
        Self {
            matmul: 1.0 / t[MM],
            matmul_low: 1.0 / t[LOW],
            memory: 1.0 / t[MEM],
            kernel_overhead_us: t[KERN],
            network: 1.0 / t[NET],
            overlap_exposure: t[OVL],
            latency_scale: t[LAT],
        }
    }
}

/// A time as a linear function of θ: `Σ coef[i] · θ[i]` seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Terms(pub [f64; PARAMS]);

impl Terms {
    fn one(i: usize, v: f64) -> Self {
        let mut t = [0.0; PARAMS];
        t[i] = v;
        Self(t)
    }
    /// Evaluate at θ.
    #[must_use]
    pub fn at(&self, theta: &[f64; PARAMS]) -> f64 {
        self.0.iter().zip(theta).map(|(a, b)| a * b).sum()
    }
}
impl Add for Terms {
    type Output = Self;
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}
impl AddAssign for Terms {
    fn add_assign(&mut self, o: Self) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}
impl Mul<f64> for Terms {
    type Output = Self;
    fn mul(mut self, k: f64) -> Self {
        for a in &mut self.0 {
            *a *= k;
        }
        self
    }
}

/// Communication terms split by network level.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Comm {
    up: Terms,
    out: Terms,
}
impl Comm {
    /// Bandwidth time priced with `param`, latency with the latency scale.
    fn new(t: CommTime, param: usize) -> Self {
        Self {
            up: Terms::one(param, t.scale_up.seconds())
                + Terms::one(LAT, t.scale_up_latency.seconds()),
            out: Terms::one(param, t.scale_out.seconds())
                + Terms::one(LAT, t.scale_out_latency.seconds()),
        }
    }
    fn total(&self) -> Terms {
        self.up + self.out
    }
    fn scaled(self, k: f64) -> Self {
        Self {
            up: self.up * k,
            out: self.out * k,
        }
    }
}
impl Add for Comm {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            up: self.up + o.up,
            out: self.out + o.out,
        }
    }
}

/// Everything the step model needs, reduced to numbers (built once, evaluated many times).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub(crate) layout: Layout,
    pub(crate) d_model: f64,
    pub(crate) heads: f64,
    pub(crate) q_width: f64,
    pub(crate) kv_width: f64,
    pub(crate) mlp_width: f64,
    pub(crate) mlp_matrices: f64,
    pub(crate) moe_fraction: f64,
    pub(crate) moe_active: f64,
    pub(crate) vocab: f64,
    pub(crate) seq: f64,
    pub(crate) layers: f64,
    pub(crate) layers_per_stage: f64,
    pub(crate) microbatches: f64,
    pub(crate) attention: AttentionKernel,
    pub(crate) tp_overlap: bool,
    pub(crate) dp_overlap: bool,
    pub(crate) hierarchical: bool,
    pub(crate) optimizer_bytes: f64,
    pub(crate) grad_bytes: f64,
    pub(crate) linear_per_token: f64,
    pub(crate) core_per_token: f64,
    pub(crate) logit_per_token: f64,
    pub(crate) attention_params: f64,
    pub(crate) mlp_params_avg: f64,
    pub(crate) expert_params_avg: f64,
    pub(crate) embedding_params: f64,
    pub(crate) model_flops_per_step: f64,
    pub(crate) tokens_per_step: f64,
    pub(crate) chips: f64,
}

impl Shape {
    /// Build from validated parts (the layout is assumed valid).
    #[must_use]
    pub fn new(model: &Model, setup: &TrainingSetup, layout: &Layout) -> Self {
        let layers = model.layers as f64;
        let moe_fraction = model.moe_layers() as f64 / layers;
        let dense = model.layer_flops_per_token(setup.seq_len, false);
        let moe = model.layer_flops_per_token(setup.seq_len, true);
        let avg = |a: f64, b: f64| a * (1.0 - moe_fraction) + b * moe_fraction;
        let (mlp_width, moe_active, expert_params_avg, mlp_params_avg) = match &model.moe {
            Some(m) => {
                let w = (m.active + m.shared) as f64 * m.expert_ffn as f64;
                let experts_per_rank = m.experts as f64 / layout.ep as f64 + m.shared as f64;
                (
                    avg(model.ffn as f64, w),
                    m.active as f64,
                    moe_fraction * experts_per_rank * model.expert_params(),
                    (1.0 - moe_fraction) * model.dense_mlp_params(),
                )
            }
            None => (model.ffn as f64, 0.0, 0.0, model.dense_mlp_params()),
        };
        let tokens_per_step = setup.tokens_per_step();
        Self {
            layout: *layout,
            d_model: model.d_model as f64,
            heads: model.heads as f64,
            q_width: model.q_width(),
            kv_width: model.kv_width(),
            mlp_width,
            mlp_matrices: model.mlp.matrices() - 1.0,
            moe_fraction,
            moe_active,
            vocab: model.vocab as f64,
            seq: setup.seq_len as f64,
            layers,
            layers_per_stage: layout.layers_per_stage(model) as f64,
            microbatches: layout.microbatches(setup) as f64,
            attention: setup.attention,
            tp_overlap: setup.tp_comm_overlap,
            dp_overlap: setup.dp_comm_overlap,
            hierarchical: setup.hierarchical_collectives,
            optimizer_bytes: setup.optimizer_states.bytes_per_param(),
            grad_bytes: setup.main_grads.bytes_per_param(),
            linear_per_token: avg(
                (dense.attention_linear + dense.mlp).flops(),
                (moe.attention_linear + moe.mlp).flops(),
            ),
            core_per_token: dense.attention_core.flops(),
            logit_per_token: model.logit_flops_per_token().flops(),
            attention_params: model.attention_params(),
            mlp_params_avg,
            expert_params_avg,
            embedding_params: model.vocab as f64 * model.d_model as f64,
            model_flops_per_step: model.training_flops_per_token(setup.seq_len).flops()
                * tokens_per_step,
            tokens_per_step,
            chips: layout.chips() as f64,
        }
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

    /// All parameters held by one chip of the most loaded stage (layers plus one embedding).
    pub(crate) fn params_per_chip(&self) -> f64 {
        self.layer_params_per_chip() * self.layers_per_stage
            + self.embedding_params / self.layout.tp as f64
    }
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
            },
            low_precision: matches!(precision, Precision::Fp8 | Precision::Fp4),
        })
    }
}

/// The step split into linear pieces (each a [`Terms`]), before θ is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTerms {
    matmul: Terms,
    memory: Terms,
    kernels: Terms,
    recompute: Terms,
    tp: Comm,
    cp: Comm,
    ep: Comm,
    pp: Comm,
    bubble: Terms,
    optimizer: Terms,
    dp: Comm,
    dp_window: Terms,
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
    /// Matmul time (forward, backward, recompute) outside the bubble.
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
            + self.bubble
            + self.optimizer;
        base + self.dp_exposed(theta).1
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
        let floor = Terms::one(OVL, total.0[NET]);
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
}

/// Build the step terms for one configuration. Pure arithmetic; no allocation.
#[must_use]
pub fn step_terms(s: &Shape, m: &Machine) -> StepTerms {
    let l = &s.layout;
    let tp = l.tp as f64;
    let t = s.tokens_per_microbatch();
    let d = s.d_model;
    let flash = s.attention == AttentionKernel::Flash;
    let lin_idx = if m.low_precision { LOW } else { MM };
    let sp_div = if l.sequence_parallel { tp } else { 1.0 };

    // --- one layer, one micro-batch, forward ---
    let f_lin = t * s.linear_per_token / tp;
    let causal = if flash { 0.5 } else { 1.0 };
    let f_core = t * s.core_per_token / tp * causal;
    let mm_lin = Terms::one(lin_idx, f_lin / m.peak_linear.flops_per_second());
    let mm_core = Terms::one(MM, f_core / m.peak_bf16.flops_per_second());
    let bw = m.hbm_bandwidth.bytes_per_second();
    let act_bytes = 2.0 * t * s.mlp_width * (s.mlp_matrices + 1.0) / tp;
    let norm_bytes = 22.0 * t * d / sp_div;
    let route_bytes = 8.0 * t * d * s.moe_active * s.moe_fraction / tp;
    let score_bytes = if flash {
        0.0
    } else {
        9.0 * t * s.seq * s.heads / tp
    };
    let mem_fwd = Terms::one(
        MEM,
        (act_bytes + norm_bytes + route_bytes + score_bytes) / bw,
    );
    let kern_fwd = 12.0 + if flash { 0.0 } else { 4.0 } + 6.0 * s.moe_fraction;
    let kern = |n: f64| Terms::one(KERN, n * 1e-6);

    let core_bwd = if flash { 2.5 } else { 2.0 };
    let fwd_compute = mm_lin + mm_core + mem_fwd + kern(kern_fwd);
    let bwd_matmul = mm_lin * 2.0 + mm_core * core_bwd;
    let bwd_compute = bwd_matmul + mem_fwd * 2.0 + kern(2.0 * kern_fwd);
    let (re_matmul, re_mem, re_kern) = match l.recompute {
        Recompute::Full => (mm_lin + mm_core, mem_fwd, kern_fwd),
        Recompute::Selective if !flash => (mm_core, Terms::one(MEM, score_bytes / bw), 4.0),
        _ => (Terms::default(), Terms::default(), 0.0),
    };

    // --- communication per layer per micro-batch ---
    let fab = &Fabric {
        hierarchical: s.hierarchical,
        ..m.fabric
    };
    let act = Bytes::new(2.0 * t * d);
    let tp_group = Group {
        size: l.tp as u64,
        stride: 1,
    };
    let tp_param = if s.tp_overlap { OVL } else { NET };
    // Per layer: 2 all-reduces forward and 2 backward (with sequence parallelism the same
    // volume as all-gather + reduce-scatter pairs, plus the all-gather of the layer input that
    // backward redoes for the weight gradients: one more all-reduce's worth; Korthikanti et al.
    // 2022 §4.2.2); full recompute repeats the forward's two.
    let tp_count = 4.0
        + if l.sequence_parallel { 1.0 } else { 0.0 }
        + if l.recompute == Recompute::Full {
            2.0
        } else {
            0.0
        };
    let tp_layer =
        Comm::new(fab.time(Collective::AllReduce, act, tp_group), tp_param).scaled(tp_count);
    let cp_group = Group {
        size: l.cp as u64,
        stride: l.tp as u64,
    };
    let kv_full = Bytes::new(2.0 * 2.0 * t * l.cp as f64 * s.kv_width / tp);
    let cp_layer = Comm::new(fab.time(Collective::AllGather, kv_full, cp_group), OVL).scaled(3.0);
    let ep_stride = if l.dp % l.ep == 0 {
        l.tp as u64 * l.cp as u64
    } else {
        1
    };
    let ep_group = Group {
        size: l.ep as u64,
        stride: ep_stride,
    };
    let a2a = Bytes::new(2.0 * t * d * s.moe_active / sp_div);
    let ep_count = 4.0
        + if l.recompute == Recompute::Full {
            2.0
        } else {
            0.0
        };
    let ep_layer = Comm::new(fab.time(Collective::AllToAll, a2a, ep_group), NET)
        .scaled(ep_count * s.moe_fraction);

    // --- one micro-batch on the slowest stage ---
    let ls = s.layers_per_stage;
    let f_logit = t * s.logit_per_token / tp;
    let logit_mm = Terms::one(MM, 3.0 * f_logit / m.peak_bf16.flops_per_second());
    let logit_mem = Terms::one(MEM, 14.0 * t * s.vocab / tp / bw);
    let logits = logit_mm + logit_mem + kern(6.0);
    let layer_compute = fwd_compute + bwd_compute;
    let layer_recompute = re_matmul + re_mem + kern(re_kern);
    let stage_compute = (layer_compute + layer_recompute) * ls;
    let pp_stride = l.tp as u64 * l.cp as u64 * l.dp as u64;
    let pp_bytes = Bytes::new(2.0 * t * d / tp);
    let pp_mb = if l.pp > 1 {
        Comm::new(
            fab.time(
                Collective::PointToPoint,
                pp_bytes,
                Group {
                    size: 2,
                    stride: pp_stride,
                },
            ),
            OVL,
        )
        .scaled(2.0 * l.virtual_stages as f64)
    } else {
        Comm::default()
    };
    let comm_mb = tp_layer.scaled(ls) + cp_layer.scaled(ls) + ep_layer.scaled(ls);
    let t_max = stage_compute + logits + comm_mb.total() + pp_mb.total();
    let t_avg = stage_compute + logits * (1.0 / l.pp as f64) + comm_mb.total() + pp_mb.total();
    let mb = s.microbatches;
    let bubble = t_avg * ((l.pp as f64 - 1.0) / l.virtual_stages as f64);

    // --- data-parallel reduction and optimizer ---
    let params = s.params_per_chip();
    let dp_group = Group {
        size: l.dp as u64 * l.cp as u64,
        stride: l.tp as u64,
    };
    let grad = Bytes::new(params * 2.0);
    // ZeRO shards over `zero_group` ranks (the innermost of the dp x cp ranks); the other
    // data-parallel ranks hold replicas that all-reduce their shard once per step (HSDP, MiCS).
    let zg = l.zero_group_size() as u64;
    let shard_group = Group {
        size: zg,
        stride: l.tp as u64,
    };
    let replica_group = Group {
        size: (l.dp as u64 * l.cp as u64) / zg,
        stride: l.tp as u64 * zg,
    };
    let replica_ar = || {
        Comm::new(
            fab.time(
                Collective::AllReduce,
                Bytes::new(params * 2.0 / zg as f64),
                replica_group,
            ),
            NET,
        )
    };
    let (dp, window) = match l.zero {
        0 => (
            Comm::new(fab.time(Collective::AllReduce, grad, dp_group), NET),
            bwd_compute * ls,
        ),
        1 => (
            // Distributed optimizer: reduce-scatter gradients, all-gather updated weights.
            Comm::new(fab.time(Collective::ReduceScatter, grad, shard_group), NET)
                + Comm::new(fab.time(Collective::AllGather, grad, shard_group), NET)
                + replica_ar(),
            (bwd_compute + fwd_compute) * ls,
        ),
        zero => {
            // FSDP gathers and reduces one layer (and the embedding) at a time, per micro-batch:
            // ZeRO-2 (SHARD_GRAD_OP) all-gathers in forward and reduce-scatters in backward;
            // ZeRO-3 (FULL_SHARD) all-gathers again in backward.
            let gathers = if zero >= 3 { 2.0 } else { 1.0 };
            let unit = |b: Bytes| {
                Comm::new(fab.time(Collective::AllGather, b, shard_group), NET).scaled(gathers)
                    + Comm::new(fab.time(Collective::ReduceScatter, b, shard_group), NET)
            };
            let layer = Bytes::new(s.layer_params_per_chip() * 2.0);
            let emb = Bytes::new(s.embedding_params / tp * 2.0);
            let per = unit(layer).scaled(ls) + unit(emb);
            (per.scaled(mb) + replica_ar(), (stage_compute + logits) * mb)
        }
    };
    // Without overlap every byte of data-parallel traffic is exposed.
    let window = if s.dp_overlap {
        window
    } else {
        Terms::default()
    };
    let shard = if l.zero >= 1 { zg as f64 } else { 1.0 };
    // Adam reads the gradient and the state, writes the state and the BF16 weights.
    let adam_bytes = s.grad_bytes + 2.0 * s.optimizer_bytes + WEIGHT_BYTES;
    let optimizer = Terms::one(MEM, params / shard * adam_bytes / bw) + kern(20.0);

    let matmul = ((bwd_matmul + mm_lin + mm_core) * ls + re_matmul * ls + logit_mm) * mb;
    let memory = ((mem_fwd * 3.0 + re_mem) * ls + logit_mem) * mb;
    let kernels = kern((3.0 * kern_fwd + re_kern) * ls + 6.0) * mb;
    StepTerms {
        matmul,
        memory,
        kernels,
        recompute: (re_matmul + re_mem + kern(re_kern)) * (ls * mb),
        tp: tp_layer.scaled(ls * mb),
        cp: cp_layer.scaled(ls * mb),
        ep: ep_layer.scaled(ls * mb),
        pp: pp_mb.scaled(mb),
        bubble,
        optimizer,
        dp,
        dp_window: window,
    }
    .check(t_max, mb)
}

impl StepTerms {
    fn check(self, t_max: Terms, mb: f64) -> Self {
        debug_assert!({
            let sum = self.matmul
                + self.memory
                + self.kernels
                + self.tp.total()
                + self.cp.total()
                + self.ep.total()
                + self.pp.total();
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
    /// Hardware FLOPs per step (with recompute).
    pub hardware_flops: Flops,
    /// Tokens per step.
    pub tokens_per_step: f64,
    /// Chips.
    pub chips: f64,
    /// Peak per chip in the training format.
    pub peak: FlopsPerSecond,
    /// HBM capacity per chip.
    pub hbm_capacity: Bytes,
}

/// A prediction for one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Time breakdown.
    pub breakdown: StepBreakdown,
    /// Memory per chip.
    pub memory: MemoryBreakdown,
    /// Whether the memory fits the HBM.
    pub fits_memory: bool,
    /// Step time.
    pub step_time: Seconds,
    /// Tokens per second, whole cluster.
    pub tokens_per_second: f64,
    /// Model FLOPs utilisation against the training format's peak.
    pub mfu: f64,
    /// Hardware FLOPs utilisation (recompute counted).
    pub hfu: f64,
    /// Achieved model FLOP/s per chip.
    pub model_flops_per_chip: FlopsPerSecond,
    /// What bounds the step.
    pub bound_by: Bound,
    /// Share of the step taken by `bound_by`.
    pub bound_share: f64,
}

/// Evaluate one configuration without θ.
#[must_use]
pub fn evaluate(shape: &Shape, machine: &Machine) -> Evaluation {
    let terms = step_terms(shape, machine);
    let memory = memory::memory(shape);
    let l = &shape.layout;
    let extra = match (l.recompute, shape.attention) {
        (Recompute::Full, _) => 1.0 / 3.0,
        (Recompute::Selective, AttentionKernel::Unfused) => {
            shape.core_per_token * shape.layers
                / (3.0
                    * (shape.layers * (shape.linear_per_token + shape.core_per_token)
                        + shape.logit_per_token))
        }
        _ => 0.0,
    };
    let model_flops = Flops::new(shape.model_flops_per_step);
    Evaluation {
        terms,
        memory,
        model_flops,
        hardware_flops: model_flops * (1.0 + extra),
        tokens_per_step: shape.tokens_per_step,
        chips: shape.chips,
        peak: machine.peak_linear,
        hbm_capacity: machine.hbm_capacity,
    }
}

impl Evaluation {
    /// Apply efficiency parameters.
    #[must_use]
    pub fn predict(&self, eff: &Efficiency) -> Prediction {
        let theta = eff.to_theta();
        let b = self.terms.breakdown(&theta);
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
        Prediction {
            breakdown: b,
            memory: self.memory,
            fits_memory: self.memory.total() <= self.hbm_capacity,
            step_time: step,
            tokens_per_second: self.tokens_per_step / step.seconds(),
            mfu: self.model_flops.flops() / denom,
            hfu: self.hardware_flops.flops() / denom,
            model_flops_per_chip: self.model_flops / step * (1.0 / self.chips),
            bound_by,
            bound_share: worst / step,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;
    use crate::workload::preset;
    use approx::assert_relative_eq;

    fn setup_for(layout: Layout, chips: u64) -> (Shape, Machine) {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let cluster = c
            .cluster("h100-sxm", chips)
            .unwrap_or_else(|e| panic!("{e}"));
        let model = preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"));
        let setup = crate::request::SetupRequest {
            global_batch: Some(512),
            seq_len: Some(2048),
            tokens: Some(1e12),
            ..Default::default()
        }
        .resolve("", &model)
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(layout.check(&model, &cluster, &setup, false, "").is_empty());
        (
            Shape::new(&model, &setup, &layout),
            Machine::new(&cluster, Precision::Bf16).unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn layout(pp: u32, v: u32) -> Layout {
        Layout {
            tp: 8,
            pp,
            dp: 8,
            cp: 1,
            ep: 1,
            microbatch: 1,
            virtual_stages: v,
            recompute: Recompute::Selective,
            sequence_parallel: true,
            zero: 1,
            zero_group: 0,
        }
    }

    /// Narayanan et al. 2021: interleaving v chunks divides the bubble by v.
    #[test]
    fn interleaving_divides_the_bubble() {
        let theta = Efficiency::PRIOR.to_theta();
        let (s1, m) = setup_for(layout(8, 1), 512);
        let (s2, _) = setup_for(layout(8, 2), 512);
        let b1 = step_terms(&s1, &m).breakdown(&theta).bubble.seconds();
        let b2 = step_terms(&s2, &m).breakdown(&theta).bubble.seconds();
        // The per-stage work is the same up to the extra point-to-point of the second chunk.
        assert_relative_eq!(b2 / b1, 0.5, max_relative = 0.01);
        assert!(b1 > 0.0);
    }

    /// The parts of the breakdown add up to the step.
    #[test]
    fn breakdown_adds_up() {
        let theta = Efficiency::PRIOR.to_theta();
        let (s, m) = setup_for(layout(4, 1), 256);
        let b = step_terms(&s, &m).breakdown(&theta);
        let sum = b.matmul
            + b.memory_bound
            + b.kernel_overhead
            + b.tp_comm
            + b.cp_comm
            + b.ep_comm
            + b.pp_comm
            + b.dp_comm
            + b.bubble
            + b.optimizer;
        assert_relative_eq!(sum.seconds(), b.step.seconds(), max_relative = 1e-9);
        let by_level = b.scale_up_comm + b.scale_out_comm;
        let by_kind = b.tp_comm + b.cp_comm + b.ep_comm + b.pp_comm + b.dp_comm;
        assert_relative_eq!(by_level.seconds(), by_kind.seconds(), max_relative = 1e-9);
    }

    /// Without overlap, all data-parallel traffic is exposed; with it, no more than that.
    #[test]
    fn dp_overlap_only_hides_traffic() {
        let theta = Efficiency::PRIOR.to_theta();
        let (mut s, m) = setup_for(layout(4, 1), 256);
        let hidden = step_terms(&s, &m).breakdown(&theta).dp_comm;
        s.dp_overlap = false;
        let exposed = step_terms(&s, &m).breakdown(&theta).dp_comm;
        assert!(
            exposed.seconds() > 0.0 && hidden < exposed,
            "{hidden} vs {exposed}"
        );
    }
}
