//! The nine efficiency parameters and their linear coordinates θ.

use serde::{Deserialize, Serialize};

/// Number of efficiency parameters.
pub const PARAMS: usize = 9;
/// Names of the efficiency parameters, in [`Efficiency::to_theta`] order.
pub const PARAM_NAMES: [&str; PARAMS] = [
    "matmul",
    "matmul_low",
    "memory",
    "kernel_overhead_us",
    "network",
    "overlap_exposure",
    "latency_scale",
    "moe_fixed_us",
    "attention",
];

/// Index of each parameter in θ (and in a [`super::Terms`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Param {
    /// `1 / matmul`: seconds of BF16 matmul at peak.
    Matmul = 0,
    /// `1 / matmul_low`: seconds of FP8/FP4 matmul at peak.
    MatmulLow = 1,
    /// `1 / memory`: seconds of HBM traffic at peak bandwidth.
    Memory = 2,
    /// `kernel_overhead_us`: microseconds per kernel, coefficient in kernels × 1e-6.
    Kernel = 3,
    /// `1 / network`: seconds of exposed link traffic at link rate.
    Network = 4,
    /// `overlap_exposure`: seconds of overlappable link traffic at link rate.
    Overlap = 5,
    /// `latency_scale`: seconds of catalog collective latency.
    Latency = 6,
    /// `moe_fixed_us`: microseconds per (MoE layer, micro-batch), coefficient in counts × 1e-6.
    MoeFixed = 7,
    /// `1 / attention`: seconds of the fused attention kernel (scores and their product with
    /// the values at BF16 peak, and the softmax's exponentials where priced).
    Attention = 8,
}

impl Param {
    /// Position in θ.
    pub(super) const fn index(self) -> usize {
        self as usize
    }
}

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
    /// Fixed cost of one MoE layer for one micro-batch (forward and backward), microseconds: the
    /// dispatcher's device-to-host synchronisation for the tokens-per-expert counts, its setup
    /// and the small routing kernels around it. Only runs with MoE layers inform it; files
    /// written before it existed load with the prior.
    #[serde(default = "prior_moe_fixed_us")]
    pub moe_fixed_us: f64,
    /// Achieved fraction, in the fused attention kernel, of the time its matmuls (QKᵀ and the
    /// product with V, forward and backward) take at BF16 peak plus, on chips that publish
    /// their exponential rate, its softmax's exponentials at that rate. Masking and the online
    /// rescaling sit between the matmuls; a kernel that hides part of the exponentials beats
    /// the GEMM fraction. Unfused attention's batched GEMMs use the BF16 GEMM fraction instead.
    /// Files written before it existed load with the prior.
    #[serde(default = "prior_attention")]
    pub attention: f64,
}

/// The serde default of [`Efficiency::attention`]: its prior.
fn prior_attention() -> f64 {
    Efficiency::PRIOR.attention
}

/// The serde default of [`Efficiency::moe_fixed_us`]: its prior.
fn prior_moe_fixed_us() -> f64 {
    Efficiency::PRIOR.moe_fixed_us
}

/// Prior of [`Efficiency::moe_fixed_us`], an assumption from first principles. Megatron-Core's
/// all-to-all token dispatcher needs the tokens-per-expert counts on the host to size its
/// all-to-all and grouped GEMMs (a device-to-host copy and stream synchronisation in forward;
/// Megatron-Core `MoEAlltoAllTokenDispatcher`, its `cuda_sync_point` option, docs.nvidia.com
/// megatron-core developer guide, `core.transformer.moe.token_dispatcher`). One such
/// synchronisation drains the GPU queue: a small D2H copy and the host's wake-up (~10–20 µs),
/// then the kernels behind it are exposed to their launch latency (~4 kernels × ~5 µs), and
/// backward pays the corresponding waits once more: about 60 µs per (MoE layer, micro-batch).
pub const MOE_FIXED_PRIOR_US: f64 = 60.0;

/// Prior of [`Efficiency::attention`]: FlashAttention-2 reaches 50–73% of A100 BF16 peak in
/// forward and backward (Dao 2023, arXiv:2307.08691), FlashAttention-3 up to ~75% of H100's
/// (Shah et al. 2024, arXiv:2407.08608): 65%.
pub const ATTENTION_PRIOR: f64 = 0.65;

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
        moe_fixed_us: MOE_FIXED_PRIOR_US,
        attention: ATTENTION_PRIOR,
    };

    /// Prior standard deviations in θ space (see [`Efficiency::to_theta`]); the MoE fixed cost's
    /// is its prior (a factor of about two either way is plausible).
    pub const PRIOR_SIGMA: [f64; PARAMS] =
        [0.35, 0.5, 0.6, 4.0, 0.6, 0.3, 1.0, MOE_FIXED_PRIOR_US, 0.5];

    /// The linear parameters θ: inverse efficiencies, kernel cost in µs, exposure, latency scale,
    /// MoE fixed cost in µs.
    #[must_use]
    pub fn to_theta(&self) -> [f64; PARAMS] {
        let mut t = [0.0; PARAMS];
        t[Param::Matmul.index()] = 1.0 / self.matmul;
        t[Param::MatmulLow.index()] = 1.0 / self.matmul_low;
        t[Param::Memory.index()] = 1.0 / self.memory;
        t[Param::Kernel.index()] = self.kernel_overhead_us;
        t[Param::Network.index()] = 1.0 / self.network;
        t[Param::Overlap.index()] = self.overlap_exposure;
        t[Param::Latency.index()] = self.latency_scale;
        t[Param::MoeFixed.index()] = self.moe_fixed_us;
        t[Param::Attention.index()] = 1.0 / self.attention;
        t
    }

    /// Inverse of [`Efficiency::to_theta`].
    #[must_use]
    pub fn from_theta(t: &[f64; PARAMS]) -> Self {
        Self {
            matmul: 1.0 / t[Param::Matmul.index()],
            matmul_low: 1.0 / t[Param::MatmulLow.index()],
            memory: 1.0 / t[Param::Memory.index()],
            kernel_overhead_us: t[Param::Kernel.index()],
            network: 1.0 / t[Param::Network.index()],
            overlap_exposure: t[Param::Overlap.index()],
            latency_scale: t[Param::Latency.index()],
            moe_fixed_us: t[Param::MoeFixed.index()],
            attention: 1.0 / t[Param::Attention.index()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// θ and the efficiencies are the same point in two coordinates.
    #[test]
    fn theta_round_trips() {
        let e = Efficiency {
            matmul: 0.55,
            matmul_low: 0.42,
            memory: 0.63,
            kernel_overhead_us: 7.5,
            network: 0.81,
            overlap_exposure: 0.12,
            latency_scale: 2.5,
            moe_fixed_us: 35.0,
            attention: 0.47,
        };
        for e in [Efficiency::PRIOR, e] {
            let back = Efficiency::from_theta(&e.to_theta());
            assert_relative_eq!(back.matmul, e.matmul, max_relative = 1e-15);
            assert_relative_eq!(back.matmul_low, e.matmul_low, max_relative = 1e-15);
            assert_relative_eq!(back.memory, e.memory, max_relative = 1e-15);
            assert_relative_eq!(back.kernel_overhead_us, e.kernel_overhead_us);
            assert_relative_eq!(back.network, e.network, max_relative = 1e-15);
            assert_relative_eq!(back.overlap_exposure, e.overlap_exposure);
            assert_relative_eq!(back.latency_scale, e.latency_scale);
            assert_relative_eq!(back.moe_fixed_us, e.moe_fixed_us);
            assert_relative_eq!(back.attention, e.attention, max_relative = 1e-15);
        }
    }

    /// The enum indices follow [`PARAM_NAMES`].
    #[test]
    fn param_indices_follow_the_names() {
        let theta = Efficiency::PRIOR.to_theta();
        assert_relative_eq!(theta[Param::Matmul.index()], 1.0 / 0.80);
        assert_relative_eq!(theta[Param::Kernel.index()], 4.0);
        assert_eq!(PARAM_NAMES[Param::MatmulLow.index()], "matmul_low");
        assert_eq!(PARAM_NAMES[Param::Memory.index()], "memory");
        assert_eq!(PARAM_NAMES[Param::Network.index()], "network");
        assert_eq!(PARAM_NAMES[Param::Overlap.index()], "overlap_exposure");
        assert_eq!(PARAM_NAMES[Param::Latency.index()], "latency_scale");
        assert_eq!(PARAM_NAMES[Param::MoeFixed.index()], "moe_fixed_us");
        assert_eq!(PARAM_NAMES[Param::Attention.index()], "attention");
        assert_eq!(Param::Attention.index(), PARAMS - 1);
    }

    /// A calibration entry written before the MoE fixed cost existed loads with its prior.
    #[test]
    fn an_old_entry_loads_with_the_moe_prior() {
        let old = "matmul = 0.7\nmatmul_low = 0.6\nmemory = 0.7\nkernel_overhead_us = 5.0\n\
                   network = 0.7\noverlap_exposure = 0.3\nlatency_scale = 1.0\n";
        let e: Efficiency = toml::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert_relative_eq!(e.moe_fixed_us, MOE_FIXED_PRIOR_US);
        assert_relative_eq!(e.matmul, 0.7);
    }
}
