//! Capacity questions: how many chips a power envelope or a budget holds, the best chip count up
//! to a limit (in whole scale-up systems), and what those chips train.
//!
//! ```
//! use xpusim::prelude::*;
//! use xpusim::capacity::chips_for_power;
//! use xpusim::units::Watts;
//! let catalog = Catalog::builtin()?;
//! let (chip, system) = catalog.resolve("trn2")?;
//! let fit = chips_for_power(&chip, &system, &Default::default(), Watts::new(2.2e9));
//! assert!(fit.chips > 100_000 && fit.chips % system.domain_chips.value == 0);
//! # Ok::<(), xpusim::Error>(())
//! ```

use crate::calibration::Calibration;
use crate::economics::{assess, Objective, PowerInputs, Settings};
use crate::energy::Facility;
use crate::error::{Error, Result};
#[cfg(test)]
use crate::hardware::Catalog;
use crate::hardware::{Chip, Cluster, Precision, System};
use crate::parallelism::LayoutConstraints;
use crate::plan::{search, Job, Search};
use crate::units::{FlopsPerSecond, Watts};
use crate::workload::{Model, TrainingSetup};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What a power envelope holds of one kind of system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerFit {
    /// Whole scale-up systems.
    pub systems: u64,
    /// Chips in them.
    pub chips: u64,
    /// Facility power per chip at full load (IT x PUE).
    pub facility_per_chip: Watts,
    /// Facility power of those systems.
    pub facility: Watts,
}

/// Whole systems of `system` that fit in `envelope` of facility power, each chip at TDP with its
/// host and network share, times PUE (the peak draw a facility must provision for).
#[must_use]
pub fn chips_for_power(
    chip: &Chip,
    system: &System,
    facility: &Facility,
    envelope: Watts,
) -> PowerFit {
    let per_chip = PowerInputs::from_catalog(chip, system)
        .map_or(Watts::ZERO, |p| p.facility(1.0, facility.pue));
    let domain = system.domain_chips.value.max(1);
    let per_system = per_chip * domain as f64;
    let systems = if per_system.watts() > 0.0 {
        let n = envelope / per_system;
        if n.is_finite() && n > 0.0 {
            n.floor().min(1e12) as u64
        } else {
            0
        }
    } else {
        0
    };
    let chips = systems * domain;
    PowerFit {
        systems,
        chips,
        facility_per_chip: per_chip,
        facility: per_chip * chips as f64,
    }
}

/// Peak dense FLOP/s of `chips` chips in `precision` (0 when the chip lacks the format).
#[must_use]
pub fn peak(chip: &Chip, chips: u64, precision: Precision) -> FlopsPerSecond {
    chip.peak_flops(precision)
        .map_or(FlopsPerSecond::ZERO, |p| p * chips as f64)
}

/// Odd parts of the chip-count multipliers: 5-smooth, so that counts divide batches like 16,000
/// or 2,000 and layouts exist.
const ODD_MULTIPLIERS: [u64; 9] = [1, 3, 5, 9, 15, 25, 45, 75, 125];

/// The chip counts tried up to `max_chips`, all whole systems with many small factors (so that
/// layouts divide): for each `2^k`, the largest multiple of `domain · 2^k` not above the limit,
/// and `domain · 2^k · m` for `m` in 1, 3, 5, 9, 15, 25, 45, 75, 125 (smaller counts, which win
/// once failures dominate); largest first, without repeats.
#[must_use]
pub fn chip_counts(max_chips: u64, domain: u64) -> Vec<u64> {
    let domain = domain.max(1);
    let mut out: Vec<u64> = (0..40)
        .filter_map(|k| {
            let unit = domain.checked_mul(1u64 << k)?;
            (unit <= max_chips).then(|| max_chips / unit * unit)
        })
        .chain((0..40).flat_map(|k| {
            ODD_MULTIPLIERS
                .into_iter()
                .filter_map(move |m| domain.checked_mul(m << k))
        }))
        .filter(|&c| c <= max_chips)
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    out
}

/// `base` with `chips` chips: same chip, system, domain size (capped at the chips) and networks.
///
/// # Errors
/// As [`Cluster::new`].
pub fn resized(base: &Cluster, chips: u64) -> Result<Cluster> {
    let mut c = Cluster::new(base.chip.clone(), base.system.clone(), chips)?;
    c.domain_chips = base.domain_chips.max(1).min(chips);
    c.scale_out_per_chip = base.scale_out_per_chip;
    c.scale_up_per_chip = base.scale_up_per_chip;
    Ok(c)
}

/// How [`best_chip_count`] chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountChoice {
    /// In words: how many counts were tried, and the one chosen.
    pub why: String,
    /// Chips of each scale-up system the job uses.
    pub used_per_system: u64,
    /// Chips each system has.
    pub per_system: u64,
}

impl CountChoice {
    /// `128 of 144 per system` when systems are partly filled, else nothing.
    #[must_use]
    pub fn fill(&self) -> Option<String> {
        (self.used_per_system < self.per_system)
            .then(|| format!("{} of {} per system", self.used_per_system, self.per_system))
    }
}

/// What a chip-count choice minimises, and the settings its runs are assessed with.
#[derive(Clone, Copy, Debug)]
pub struct Goal<'a> {
    /// Days with failures, cost or energy.
    pub objective: Objective,
    /// Pricing, power and failure settings.
    pub settings: &'a Settings,
}

/// The best chip count up to `max_chips` (in whole scale-up domains of `base`): each count of
/// [`chip_counts`] is searched, its best estimate assessed ([`crate::economics::assess`]), and
/// the lowest score of `goal.objective` wins; ties keep the larger count. Returns the count's
/// search and how it was chosen.
///
/// # Errors
/// [`Error::Input`] when no count has a layout that fits.
pub fn best_chip_count(
    base: &Cluster,
    max_chips: u64,
    model: &Model,
    setup: &TrainingSetup,
    pinned: &LayoutConstraints,
    calibration: &Calibration,
    goal: Goal<'_>,
) -> Result<(Search, CountChoice)> {
    let score = |e: &crate::plan::Estimate| {
        goal.objective
            .score(&assess(e, &base.chip, &base.system, goal.settings))
    };
    // Filling each system with a power of two of its chips is a layout choice for time, with the
    // rest of each system left out of the job; cost and energy would not count those chips, so
    // they compare whole systems only.
    let fills = goal.objective == Objective::Time;
    let (best, tried, domain) = lowest_over_counts(
        base,
        Counts { max_chips, fills },
        model,
        setup,
        pinned,
        calibration,
        score,
    )?;
    let full = base.system.domain_chips.value.min(base.domain_chips.max(1));
    let n = best.best.chips;
    let why = if domain < full {
        format!(
            "fastest of {tried} counts up to {max_chips}: {n} chips, {} {} systems using {domain} of their {full} chips each (the other {} per system are outside this job: hot spares or another job, not costed here)",
            n / domain,
            base.system.id,
            full - domain
        )
    } else {
        format!("fastest of {tried} whole-domain counts up to {max_chips} ({domain} chips per domain): {n} chips")
    };
    Ok((
        best,
        CountChoice {
            why,
            used_per_system: domain,
            per_system: full,
        },
    ))
}

/// Which chip counts [`lowest_over_counts`] tries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counts {
    /// The most chips.
    pub max_chips: u64,
    /// Also systems filled with the largest power of two of their chips.
    pub fills: bool,
}

/// The search at the count of [`chip_counts`] up to `max_chips` whose best estimate has the
/// lowest finite `score` (ties keep the larger count), with the number of counts tried and the
/// chips per domain used. With `fills`, systems whose size is not a power of two (144-chip
/// UltraServers, 72-GPU racks) are also tried filled with the largest power of two of their
/// chips (128, 64), at most `max_chips / domain` systems: such counts split into power-of-two
/// layouts where whole systems force a pipeline over their odd factor.
///
/// # Errors
/// [`Error::Input`] when no count has a layout that fits and a finite score.
pub(crate) fn lowest_over_counts<F>(
    base: &Cluster,
    Counts { max_chips, fills }: Counts,
    model: &Model,
    setup: &TrainingSetup,
    pinned: &LayoutConstraints,
    calibration: &Calibration,
    score: F,
) -> Result<(Search, usize, u64)>
where
    F: Fn(&crate::plan::Estimate) -> f64 + Sync,
{
    let domain = base.system.domain_chips.value.min(base.domain_chips.max(1));
    let pow2 = 1u64 << domain.ilog2();
    let mut counts: Vec<(u64, u64)> = chip_counts(max_chips, domain)
        .into_iter()
        .map(|c| (c, domain))
        .collect();
    if fills && pow2 < domain && pow2 > 1 {
        let limit = max_chips / domain * pow2;
        counts.extend(chip_counts(limit, pow2).into_iter().map(|c| (c, pow2)));
    }
    let tried = counts.len();
    let found: Vec<Option<(f64, Search, u64)>> = counts
        .par_iter()
        .map(|&(c, used)| {
            let mut cluster = resized(base, c).ok()?;
            cluster.domain_chips = used.min(c);
            let s = search(
                &Job::new(model.clone(), setup.clone(), cluster),
                pinned,
                calibration,
            )
            .ok()?;
            let v = score(&s.best);
            v.is_finite().then_some((v, s, used))
        })
        .collect();
    // Sequential reduction in the counts' order (whole systems first, each largest first):
    // deterministic at any thread count; ties keep the earlier.
    let best = found
        .into_iter()
        .flatten()
        .fold(None, |best: Option<(f64, Search, u64)>, x| match best {
            Some(b) if b.0 <= x.0 => Some(b),
            _ => Some(x),
        });
    let (_, best, used) = best.ok_or_else(|| {
        Error::input(
            "max_chips",
            format!(
                "no chip count up to {max_chips} of {} has a layout that fits",
                base.system.id
            ),
        )
    })?;
    Ok((best, tried, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_counts_are_whole_systems_below_the_limit() {
        let c = chip_counts(1_000_000, 144);
        assert!(c.iter().all(|&n| n <= 1_000_000 && n % 144 == 0));
        assert_eq!(c[0], 1_000_000 / 144 * 144);
        assert!(c.contains(&(1_000_000 / (144 * 64) * 144 * 64)));
    }

    #[test]
    fn a_bigger_envelope_never_holds_fewer_chips() {
        let cat = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let (chip, system) = cat.resolve("gb300").unwrap_or_else(|e| panic!("{e}"));
        let f = Facility::default();
        let a = chips_for_power(&chip, &system, &f, Watts::new(1.2e9));
        let b = chips_for_power(&chip, &system, &f, Watts::new(2.2e9));
        assert!(b.chips >= a.chips && a.chips > 0);
        assert!(b.facility.watts() <= 2.2e9 * (1.0 + 1e-12));
    }
}
