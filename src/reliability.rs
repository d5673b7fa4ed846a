//! Failures, checkpoints and goodput of a synchronous training job.
//!
//! A synchronous job stops when any of its components fails, so its interruption rate is the sum
//! of the component rates times the units in the job: `λ = chips · Σ rate_i` (per hour). With
//! mean time between interruptions `M = 1/λ`, a checkpoint that takes `δ` to write, a restart that
//! takes `R` (reschedule, reload, warm-up) and checkpoints every `τ` of work, the expected time to
//! finish a segment `τ + δ` under exponential failures is `(M + R)(e^{(τ+δ)/M} − 1)`
//! (Daly 2006, eq. 12, with failures not striking during restart), so a run of `T` of work takes
//!
//! `T_eff = (T / τ) · (M + R) · (e^{(τ+δ)/M} − 1)`.
//!
//! `τ` is Daly's first-order optimum `√(2δM) − δ` (Young 1974 without the correction), bounded
//! below by `δ`. Goodput is `T / T_eff`; interruptions are `T_eff / M`. A seeded Monte Carlo of the
//! same process ([`simulate`]) checks the closed form.
//!
//! Default rates come from the Llama 3 405B pre-training report (Meta, arXiv:2407.21783, §3.3.4,
//! Table 5): 419 unexpected interruptions in 54 days on 16,384 H100 GPUs, i.e. 21,233,664
//! GPU-hours, grouped here by component. They are measured on H100 systems and *assumed* for
//! every other chip.

use crate::units::{Bytes, BytesPerSecond, Seconds};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// GPU-hours of the Llama 3 405B snapshot: 16,384 GPUs x 54 days x 24 h.
pub const LLAMA3_GPU_HOURS: f64 = 16_384.0 * 54.0 * 24.0;

/// Interruptions per accelerator-hour, by component (each component's count in the Llama 3
/// report divided by [`LLAMA3_GPU_HOURS`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRates {
    /// The accelerator: faulty GPU incl. NVLink (148), SRAM (19), system processor (17), thermal
    /// interface and sensor (6), silent data corruption (6): 196 events.
    pub accelerator: f64,
    /// Its HBM: 72 events.
    pub hbm: f64,
    /// Host share: maintenance (32), CPU (2), system memory (2), SSD (3), power supply (3),
    /// chassis (2), IO expansion board (2): 46 events.
    pub host: f64,
    /// Network share: switch and cable (35), NIC (7): 42 events.
    pub network: f64,
    /// Software: bugs (54), NCCL watchdog timeouts (7), dependencies (2): 63 events.
    pub software: f64,
}

impl FailureRates {
    /// The Llama 3 405B rates (see the module docs).
    pub const LLAMA3: FailureRates = FailureRates {
        accelerator: 196.0 / LLAMA3_GPU_HOURS,
        hbm: 72.0 / LLAMA3_GPU_HOURS,
        host: 46.0 / LLAMA3_GPU_HOURS,
        network: 42.0 / LLAMA3_GPU_HOURS,
        software: 63.0 / LLAMA3_GPU_HOURS,
    };

    /// Interruptions per accelerator-hour, all components.
    #[must_use]
    pub fn per_chip_hour(&self) -> f64 {
        self.accelerator + self.hbm + self.host + self.network + self.software
    }

    /// Every rate multiplied by `k` (a more or less reliable fleet).
    #[must_use]
    pub fn scaled(&self, k: f64) -> Self {
        Self {
            accelerator: self.accelerator * k,
            hbm: self.hbm * k,
            host: self.host * k,
            network: self.network * k,
            software: self.software * k,
        }
    }
}

/// Checkpoint storage write bandwidth per chip: Meta's Tectonic cluster for Llama 3 sustains
/// 2 TB/s for 16,384 GPUs (Llama 3 report §3.3.1), about 122 MB/s per GPU; assumed to scale with
/// the cluster.
pub const CHECKPOINT_BYTES_PER_S_PER_CHIP: f64 = 2e12 / 16_384.0;

/// Time to restart after an interruption: detect, reschedule, reload the checkpoint, warm up.
/// An assumption (10 minutes); the Llama 3 report describes reducing job start-up time without a
/// figure.
pub const RESTART_S: f64 = 600.0;

/// How failures and checkpoints are handled.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resilience {
    /// Failure rates.
    pub rates: FailureRates,
    /// Checkpoint write bandwidth per chip.
    pub checkpoint_bandwidth_per_chip: BytesPerSecond,
    /// Restart time.
    pub restart: Seconds,
}

impl Default for Resilience {
    fn default() -> Self {
        Self {
            rates: FailureRates::LLAMA3,
            checkpoint_bandwidth_per_chip: BytesPerSecond::new(CHECKPOINT_BYTES_PER_S_PER_CHIP),
            restart: Seconds::new(RESTART_S),
        }
    }
}

/// The expected effect of failures on one run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// Mean time between interruptions of the whole job.
    pub mtbi: Seconds,
    /// Time to write one checkpoint.
    pub checkpoint_write: Seconds,
    /// Work between checkpoints.
    pub checkpoint_interval: Seconds,
    /// Expected interruptions over the run.
    pub interruptions: f64,
    /// Useful time / wall time, in (0, 1].
    pub goodput: f64,
    /// Expected wall time.
    pub effective_time: Seconds,
}

impl Resilience {
    /// Expected goodput of `work` of failure-free time on `chips` chips whose checkpoint is
    /// `state` (weights and optimizer states of the whole model).
    ///
    /// ```
    /// use xpusim::reliability::Resilience;
    /// use xpusim::units::{Bytes, Seconds};
    /// // Llama 3 405B: 16,384 GPUs, 54 days; the report's 419 interruptions and ">90%" effective time.
    /// let g = Resilience::default().goodput(Seconds::new(50.0 * 86_400.0), 16_384, Bytes::new(405e9 * 14.0));
    /// assert!((g.mtbi.hours() - 54.0 * 24.0 / 419.0).abs() < 1e-9);
    /// assert!(g.goodput > 0.9 && g.goodput < 1.0);
    /// ```
    #[must_use]
    pub fn goodput(&self, work: Seconds, chips: u64, state: Bytes) -> Goodput {
        let rate = self.rates.per_chip_hour() * chips as f64 / 3600.0;
        let write = state / (self.checkpoint_bandwidth_per_chip * chips.max(1) as f64);
        let (w, r) = (write.seconds(), self.restart.seconds());
        if rate.is_nan() || rate <= 0.0 || work.seconds() <= 0.0 {
            return Goodput {
                mtbi: Seconds::new(f64::MAX),
                checkpoint_write: write,
                checkpoint_interval: work,
                interruptions: 0.0,
                goodput: 1.0,
                effective_time: work,
            };
        }
        let m = 1.0 / rate;
        let tau = ((2.0 * w * m).sqrt() - w).max(w).max(1e-9);
        let segments = work.seconds() / tau;
        // exp_m1 keeps precision when (τ+δ)/M is small; the ratio is bounded above so the
        // exponential stays finite (a job that fails far more often than it checkpoints makes
        // no progress: goodput tends to 0).
        let x = ((tau + w) / m).min(700.0);
        let effective = segments * (m + r) * x.exp_m1();
        let effective = effective.max(work.seconds());
        Goodput {
            mtbi: Seconds::new(m),
            checkpoint_write: write,
            checkpoint_interval: Seconds::new(tau),
            interruptions: effective / m,
            goodput: work.seconds() / effective,
            effective_time: Seconds::new(effective),
        }
    }
}

/// Monte Carlo of the process the closed form describes: `trials` seeded runs in parallel
/// (rayon; identical at any thread count), each of `work` seconds in checkpointed segments of
/// `interval + write`, failures exponential with mean `mtbi`, each failure losing the segment in
/// progress and costing `restart`. Returns the wall times, in trial order.
#[must_use]
pub fn simulate(
    work: Seconds,
    interval: Seconds,
    write: Seconds,
    mtbi: Seconds,
    restart: Seconds,
    trials: usize,
    seed: u64,
) -> Vec<Seconds> {
    (0..trials)
        .into_par_iter()
        .map(|i| {
            // Each trial starts at a hashed, effectively random point of the SplitMix sequence
            // (starting at `seed + i·γ` would make trial i a shifted copy of trial 0).
            let mut rng = SplitMix(SplitMix::mix(seed ^ SplitMix::mix(i as u64 + 1)));
            let (tau, w, m, r) = (
                interval.seconds(),
                write.seconds(),
                mtbi.seconds(),
                restart.seconds(),
            );
            let mut left = work.seconds();
            let mut wall = 0.0;
            while left > 0.0 {
                let seg = left.min(tau);
                let need = seg + w;
                loop {
                    let t = -m * (1.0 - rng.uniform()).ln();
                    if t >= need {
                        wall += need;
                        break;
                    }
                    wall += t + r;
                }
                left -= seg;
            }
            Seconds::new(wall)
        })
        .collect()
}

/// SplitMix64 (Steele et al. 2014): a small, well-mixed seeded generator.
struct SplitMix(u64);
impl SplitMix {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        (Self::mix(self.0) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// The default rates reproduce the report's count by construction: 419 in 54 days.
    #[test]
    fn llama3_rates_sum_to_419_events() {
        let r = FailureRates::LLAMA3.per_chip_hour() * LLAMA3_GPU_HOURS;
        assert_relative_eq!(r, 419.0, max_relative = 1e-12);
    }

    /// Hand-computed case: M = 10 h, δ = 60 s, R = 600 s.
    #[test]
    fn closed_form_on_a_hand_computed_case() {
        let chips = 100;
        let res = Resilience {
            rates: FailureRates {
                accelerator: 1.0 / (10.0 * chips as f64),
                hbm: 0.0,
                host: 0.0,
                network: 0.0,
                software: 0.0,
            },
            checkpoint_bandwidth_per_chip: BytesPerSecond::new(1e9),
            restart: Seconds::new(600.0),
        };
        // 6e12 bytes over 100 chips x 1 GB/s = 60 s.
        let g = res.goodput(Seconds::new(1000.0 * 3600.0), chips, Bytes::new(6e12));
        assert_relative_eq!(g.mtbi.seconds(), 36_000.0, max_relative = 1e-12);
        assert_relative_eq!(g.checkpoint_write.seconds(), 60.0, max_relative = 1e-12);
        let tau = (2.0_f64 * 60.0 * 36_000.0).sqrt() - 60.0; // 2018.46 s
        assert_relative_eq!(g.checkpoint_interval.seconds(), tau, max_relative = 1e-12);
        let eff = 3.6e6 / tau * (36_000.0 + 600.0) * ((tau + 60.0) / 36_000.0).exp_m1();
        assert_relative_eq!(g.effective_time.seconds(), eff, max_relative = 1e-12);
        assert!(g.goodput > 0.9 && g.goodput < 0.95, "{}", g.goodput);
    }

    /// The Monte Carlo mean lies within its 99.9% confidence interval of the closed form.
    #[test]
    fn monte_carlo_agrees_with_the_closed_form() {
        let res = Resilience::default();
        let work = Seconds::new(20.0 * 86_400.0);
        let g = res.goodput(work, 16_384, Bytes::new(405e9 * 14.0));
        let runs = simulate(
            work,
            g.checkpoint_interval,
            g.checkpoint_write,
            g.mtbi,
            res.restart,
            2000,
            7,
        );
        let n = runs.len() as f64;
        let mean = runs.iter().map(|s| s.seconds()).sum::<f64>() / n;
        let var = runs
            .iter()
            .map(|s| (s.seconds() - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let half = 3.29 * (var / n).sqrt();
        // The closed form counts whole segments (T/τ); the simulation's last segment is partial.
        let last = g.checkpoint_interval.seconds();
        assert!(
            (mean - g.effective_time.seconds()).abs() <= half + last,
            "MC {mean} ± {half} vs closed form {}",
            g.effective_time.seconds()
        );
    }

    /// Results are identical at any thread count.
    #[test]
    fn monte_carlo_is_deterministic() {
        let go = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap_or_else(|e| panic!("{e}"))
                .install(|| {
                    simulate(
                        Seconds::new(1e6),
                        Seconds::new(3000.0),
                        Seconds::new(30.0),
                        Seconds::new(20_000.0),
                        Seconds::new(600.0),
                        64,
                        1,
                    )
                })
        };
        assert_eq!(go(1), go(4));
    }

    proptest::proptest! {
        /// Goodput lies in (0, 1] and never rises with more chips at a fixed per-chip rate.
        #[test]
        fn goodput_is_a_fraction_and_falls_with_chips(a in 1_u64..2_000_000, b in 1_u64..2_000_000,
                                                      days in 0.01_f64..500.0, tb in 0.001_f64..100.0) {
            let res = Resilience::default();
            let (lo, hi) = (a.min(b), a.max(b));
            let work = Seconds::new(days * 86_400.0);
            let state = Bytes::new(tb * 1e12);
            let gl = res.goodput(work, lo, state).goodput;
            let gh = res.goodput(work, hi, state).goodput;
            proptest::prop_assert!(gl > 0.0 && gl <= 1.0 && gh > 0.0 && gh <= 1.0);
            // Aggregate checkpoint bandwidth grows with chips too, so compare at equal state per chip.
            let per_chip = |n: u64| res.goodput(work, n, Bytes::new(1e9 * n as f64)).goodput;
            proptest::prop_assert!(per_chip(hi) <= per_chip(lo) + 1e-12);
        }
    }
}
