//! Inverse questions: how many tokens a wall-clock limit, a budget or an energy allowance trains
//! on a cluster, and, with a compute-optimal rule, which model size those limits train best.
//!
//! **Tokens within limits.** One run (a layout at a chip count, found by
//! [`crate::plan::search`]) has, without failures, a throughput of `R` tokens/s and `F` model
//! FLOP/s (MFU × peak × chips); with failures and checkpoints a goodput `g`
//! ([`crate::reliability`]); on its pricing basis a price `p` per chip-hour and a mean facility
//! power `P` ([`crate::economics::assess`]). In Daly's closed form the expected wall time is
//! proportional to the work, so `g` does not depend on the run's length, and the run's cost and
//! energy grow in proportion to its wall time. Each limit therefore allows a wall time `W`:
//!
//! - a wall-clock limit `T`: `W = T`;
//! - a budget `B` on `n` chips: `W = B / (n · p)`;
//! - an energy allowance `E`: `W = E / P`;
//!
//! and the smallest binds. In it the run trains `R · g · W` tokens and does `C = F · g · W` model
//! FLOPs, at a cost of `n · p · W` and an energy of `P · W`. [`most_tokens`] picks the chip count
//! (whole scale-up systems up to a limit) whose run trains the most tokens: more chips finish
//! sooner but fail more often and may cost more per token.
//!
//! **Compute-optimal size.** A rule of `r` tokens per parameter, `D = r · N` (Chinchilla:
//! Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", arXiv:2203.15556,
//! about 20 tokens per parameter; or a ratio the user picks), with the dense approximation of
//! training compute `C = 6 · N · D` FLOPs gives, for the compute `C` the limits deliver,
//! `N = √(C / 6r)` and `D = r · N` ([`compute_optimal`]). *Approximation:* `C` uses the sustained
//! model FLOP/s predicted for the reference model that was searched (its MFU at that chip count),
//! not one re-derived for a model of `N` parameters, which would reach a somewhat different MFU;
//! the answer names the reference.
//!
//! ```
//! use xpusim::prelude::*;
//! use xpusim::inverse::{compute_optimal, tokens_at, Limit, Limits, Question, Rule};
//! use xpusim::units::{Seconds, Usd};
//! let catalog = Catalog::builtin()?;
//! let model = xpusim::preset("llama3-8b")?;
//! let cluster = ClusterRequest { hardware: "h100".into(), chips: Some(256), ..Default::default() }
//!     .resolve("", &catalog).map_err(|problems| Error::Input { problems })?;
//! let setup = SetupRequest { global_batch: Some(512), tokens: Some(1e12), ..Default::default() }
//!     .resolve("", &model).map_err(|problems| Error::Input { problems })?;
//! let settings = EconomicsRequest::default().resolve("").map_err(|problems| Error::Input { problems })?;
//! // 30 days or USD 1 million, whichever runs out first.
//! let limits = Limits {
//!     time: Some(Seconds::new(30.0 * 86_400.0)),
//!     budget: Some(Usd::new(1e6)),
//!     ..Default::default()
//! };
//! let job = Job::new(model, setup, cluster);
//! let (_, t) = tokens_at(&job, &LayoutConstraints::default(), &Calibration::shipped()?,
//!     Question { limits, settings: &settings })?;
//! // 256 H100s for 30 days cost about 256 x 720 h x $6.88 = $1.27 M: the budget binds first.
//! assert_eq!(t.binding, Limit::Budget);
//! assert!(t.cost.is_some_and(|c| (c.usd() - 1e6).abs() < 1.0));
//! let best = compute_optimal(&t, Rule::Chinchilla)?;
//! assert!((best.tokens - 20.0 * best.params).abs() < 1e-6 * best.tokens);
//! # Ok::<(), xpusim::Error>(())
//! ```

use crate::calibration::Calibration;
use crate::capacity::{lowest_over_counts, Counts};
use crate::economics::{assess, hourly_price, PowerInputs, Settings};
use crate::error::{Error, Problem, Result};
use crate::hardware::{Chip, Cluster, System};
use crate::parallelism::LayoutConstraints;
use crate::plan::{search, Estimate, Feasibility, Job, Search};
use crate::request::{
    positive_up_to, MAX_BUDGET_USD, MAX_DAYS, MAX_ENERGY_MWH, TOKENS_PER_PARAM_RANGE,
};
use crate::units::{Flops, FlopsPerSecond, Joules, Seconds, Usd, Watts};
use crate::workload::{Model, TrainingSetup};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Tokens per parameter of the Chinchilla rule (Hoffmann et al. 2022, arXiv:2203.15556: the
/// compute-optimal models of their approaches 1 and 2 train on about 20 tokens per parameter).
pub const CHINCHILLA_TOKENS_PER_PARAM: f64 = 20.0;

/// The reference model a compute-optimal question uses when none is given.
pub const DEFAULT_REFERENCE: &str = "llama3-70b";

/// What a run may use: a wall-clock limit, a budget, an energy allowance (any of them; at least
/// one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time, failures and restarts included.
    pub time: Option<Seconds>,
    /// Money on the settings' pricing basis.
    pub budget: Option<Usd>,
    /// Facility energy (IT power × PUE, or the all-in figure).
    pub energy: Option<Joules>,
}

impl Limits {
    /// Every problem with these limits, keyed `days`, `budget_usd` and `energy_mwh` (each must
    /// be positive, finite and at most [`MAX_DAYS`], [`MAX_BUDGET_USD`], [`MAX_ENERGY_MWH`]), or
    /// `limits` when none is given.
    ///
    /// ```
    /// use xpusim::inverse::Limits;
    /// use xpusim::units::Seconds;
    /// assert!(Limits::default().check().is_err());
    /// assert!(Limits { time: Some(Seconds::new(-1.0)), ..Default::default() }.check().is_err());
    /// assert!(Limits { time: Some(Seconds::new(86_400.0)), ..Default::default() }.check().is_ok());
    /// ```
    ///
    /// # Errors
    /// [`Error::Input`] with every problem.
    pub fn check(&self) -> Result<()> {
        if self.time.is_none() && self.budget.is_none() && self.energy.is_none() {
            return Err(Error::input(
                "limits",
                "give a wall-clock limit (days), a budget or an energy allowance",
            ));
        }
        let problems: Vec<Problem> = [
            ("days", self.time.map(|t| t.days()), MAX_DAYS),
            ("budget_usd", self.budget.map(Usd::usd), MAX_BUDGET_USD),
            (
                "energy_mwh",
                self.energy.map(Joules::megawatt_hours),
                MAX_ENERGY_MWH,
            ),
        ]
        .into_iter()
        .filter_map(|(k, v, max)| v.and_then(|v| positive_up_to(k, v, max).err()))
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Input { problems })
        }
    }
}

/// One of the [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The wall-clock limit.
    Time,
    /// The budget.
    Budget,
    /// The energy allowance.
    Energy,
}

impl Limit {
    /// The name shown in tables: `days`, `budget`, `energy`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Time => "days",
            Self::Budget => "budget",
            Self::Energy => "energy",
        }
    }
}

/// What one limit alone would allow.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allowed {
    /// The limit.
    pub limit: Limit,
    /// Wall time it allows, failures included.
    #[serde(rename = "wall_time_s")]
    pub wall_time: Seconds,
    /// Tokens trained in that time.
    pub tokens: f64,
}

/// How many tokens a run trains within its limits, and what it takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trainable {
    /// The model whose run was estimated.
    pub model: String,
    /// Chips of the run.
    pub chips: u64,
    /// The limit that runs out first.
    pub binding: Limit,
    /// Tokens trained before it does.
    pub tokens: f64,
    /// Wall time, failures and restarts included.
    #[serde(rename = "wall_time_s")]
    pub wall_time: Seconds,
    /// Time spent on work that is kept (wall time × goodput).
    #[serde(rename = "useful_time_s")]
    pub useful_time: Seconds,
    /// Useful / wall time under failures.
    pub goodput: f64,
    /// Failure-free throughput, whole cluster.
    pub tokens_per_second: f64,
    /// Model FLOPs utilisation of the run.
    pub mfu: f64,
    /// Sustained model FLOP/s of the run without failures (MFU × peak × chips).
    #[serde(rename = "model_flop_per_s")]
    pub model_flops_per_second: FlopsPerSecond,
    /// Model FLOPs done in the useful time.
    #[serde(rename = "compute_flop")]
    pub compute: Flops,
    /// Cost on the pricing basis (none without a price).
    #[serde(rename = "cost_usd")]
    pub cost: Option<Usd>,
    /// Facility energy (none without a power figure).
    #[serde(rename = "energy_j")]
    pub energy: Option<Joules>,
    /// What each limit given would allow on its own.
    pub allowed: Vec<Allowed>,
}

/// A question about one cluster: its limits and the settings its runs are assessed with.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    /// What the run may use.
    pub limits: Limits,
    /// Pricing, power and failure settings.
    pub settings: &'a Settings,
}

/// Tokens estimate `e` (of a run on `chip` in `system`) trains within `limits`, the binding limit
/// named (see the module docs for the calculation).
///
/// ```
/// use xpusim::prelude::*;
/// use xpusim::inverse::{trainable, Limit, Limits};
/// use xpusim::units::Seconds;
/// let catalog = Catalog::builtin()?;
/// let model = xpusim::preset("llama3-8b")?;
/// let cluster = ClusterRequest { hardware: "h100".into(), chips: Some(64), ..Default::default() }
///     .resolve("", &catalog).map_err(|problems| Error::Input { problems })?;
/// let setup = SetupRequest { global_batch: Some(512), tokens: Some(1e12), ..Default::default() }
///     .resolve("", &model).map_err(|problems| Error::Input { problems })?;
/// let job = Job::new(model, setup, cluster.clone());
/// let found = search(&job, &LayoutConstraints::default(), &Calibration::shipped()?)?;
/// let settings = EconomicsRequest::default().resolve("").map_err(|problems| Error::Input { problems })?;
/// let days = Limits { time: Some(Seconds::new(30.0 * 86_400.0)), ..Default::default() };
/// let t = trainable(&found.best, &cluster.chip, &cluster.system, &settings, &days)?;
/// assert_eq!(t.binding, Limit::Time);
/// // 30 days at the failure-free rate, less what failures and checkpoints take.
/// let ideal = found.best.prediction.tokens_per_second * 30.0 * 86_400.0;
/// assert!(t.tokens < ideal && t.tokens > 0.9 * ideal);
/// # Ok::<(), xpusim::Error>(())
/// ```
///
/// # Errors
/// [`Error::Input`]: limits as [`Limits::check`]; a layout that does not fit or has no
/// throughput; a budget without a price (`budget_usd`) or energy without a power figure
/// (`energy_mwh`) for the chip; limits that put no bound on tokens (a budget at a price of 0).
pub fn trainable(
    e: &Estimate,
    chip: &Chip,
    system: &System,
    settings: &Settings,
    limits: &Limits,
) -> Result<Trainable> {
    limits.check()?;
    if let Feasibility::Infeasible(why) = &e.feasibility {
        return Err(Error::input("layout", format!("does not fit: {why}")));
    }
    let rate = e.prediction.tokens_per_second;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(Error::input("layout", "the run has no throughput"));
    }
    let a = assess(e, chip, system, settings);
    let goodput = a.goodput.clamp(0.0, 1.0);
    let chips = e.chips as f64;
    // Dollars and watts per second of wall time: constant over the run (module docs).
    let usd_per_s = a
        .price_usd_per_chip_hour
        .map(|p| Usd::new(p * chips / 3600.0));
    let power = a.avg_power_mw.map(|mw| Watts::new(mw * 1e6));
    let seconds_for = |have: f64, per_s: f64| {
        Seconds::new(if per_s > 0.0 {
            have / per_s
        } else {
            f64::INFINITY
        })
    };
    let mut walls: Vec<(Limit, Seconds)> = Vec::new();
    if let Some(t) = limits.time {
        walls.push((Limit::Time, t));
    }
    if let Some(b) = limits.budget {
        let per_s = usd_per_s.ok_or_else(|| {
            Error::input(
                "budget_usd",
                format!(
                    "{} has no {} price to spend a budget at (give a price)",
                    chip.id,
                    settings.pricing.as_str()
                ),
            )
        })?;
        walls.push((Limit::Budget, seconds_for(b.usd(), per_s.usd())));
    }
    if let Some(j) = limits.energy {
        let p = power.ok_or_else(|| {
            Error::input(
                "energy_mwh",
                format!("{} has no power figure (TDP) to spend energy at", chip.id),
            )
        })?;
        walls.push((Limit::Energy, seconds_for(j.joules(), p.watts())));
    }
    let tokens_in = |w: Seconds| rate * goodput * w.seconds();
    let allowed: Vec<Allowed> = walls
        .iter()
        .map(|&(limit, wall_time)| Allowed {
            limit,
            wall_time,
            tokens: tokens_in(wall_time),
        })
        .collect();
    // The first of the smallest: ties go to time, then budget, then energy.
    let (binding, wall) = walls
        .iter()
        .copied()
        .reduce(|a, b| if b.1 < a.1 { b } else { a })
        .ok_or_else(|| Error::input("limits", "no limit given"))?;
    if !wall.is_finite() {
        let key = match binding {
            Limit::Time => "days",
            Limit::Budget => "budget_usd",
            Limit::Energy => "energy_mwh",
        };
        return Err(Error::input(
            key,
            "puts no bound on the tokens at a price or power of 0; give another limit",
        ));
    }
    let useful = wall * goodput;
    let flops = e.prediction.model_flops_per_chip * chips;
    Ok(Trainable {
        model: e.model.clone(),
        chips: e.chips,
        binding,
        tokens: tokens_in(wall),
        wall_time: wall,
        useful_time: useful,
        goodput,
        tokens_per_second: rate,
        mfu: e.prediction.mfu,
        model_flops_per_second: flops,
        compute: flops * useful,
        cost: usd_per_s.map(|u| u * wall.seconds()),
        energy: power.map(|p| p * wall),
        allowed,
    })
}

/// What can be told before any search: the limits are valid, a budget has a price to spend at
/// and an energy allowance a power figure, and a budget alone is not spent at a price of 0.
fn precheck(chip: &Chip, system: &System, settings: &Settings, limits: &Limits) -> Result<()> {
    limits.check()?;
    if limits.budget.is_some() {
        match hourly_price(chip, system, settings) {
            None => {
                return Err(Error::input(
                    "budget_usd",
                    format!(
                        "{} has no {} price to spend a budget at (give a price)",
                        chip.id,
                        settings.pricing.as_str()
                    ),
                ))
            }
            Some((p, _))
                if p.usd_per_chip_hour() <= 0.0
                    && limits.time.is_none()
                    && limits.energy.is_none() =>
            {
                return Err(Error::input(
                    "budget_usd",
                    "puts no bound on the tokens at a price of 0; give another limit",
                ))
            }
            Some(_) => {}
        }
    }
    if limits.energy.is_some() && PowerInputs::from_catalog(chip, system).is_none() {
        return Err(Error::input(
            "energy_mwh",
            format!("{} has no power figure (TDP) to spend energy at", chip.id),
        ));
    }
    Ok(())
}

/// The layout search of `job` (at its chip count, `pinned` options kept) and what its best
/// layout trains within the question's limits.
///
/// # Errors
/// As [`crate::plan::search`] and [`trainable`].
pub fn tokens_at(
    job: &Job,
    pinned: &LayoutConstraints,
    calibration: &Calibration,
    question: Question<'_>,
) -> Result<(Search, Trainable)> {
    let c = job.cluster();
    precheck(&c.chip, &c.system, question.settings, &question.limits)?;
    let found = search(job, pinned, calibration)?;
    let t = trainable(
        &found.best,
        &c.chip,
        &c.system,
        question.settings,
        &question.limits,
    )?;
    Ok((found, t))
}

/// The chip count up to `max_chips` (whole scale-up domains of `base`, the counts of
/// [`crate::capacity::chip_counts`]) whose best layout trains the most tokens within the
/// question's limits; ties keep the larger count. With only a wall-clock limit this is the
/// fastest count with failures; with a budget that binds, the count with the most tokens per
/// dollar that still finishes in time.
///
/// ```
/// use xpusim::prelude::*;
/// use xpusim::inverse::{most_tokens, Limits, Question};
/// use xpusim::units::Seconds;
/// let catalog = Catalog::builtin()?;
/// let model = xpusim::preset("llama3-8b")?;
/// let base = ClusterRequest { hardware: "h100".into(), chips: Some(512), ..Default::default() }
///     .resolve("", &catalog).map_err(|problems| Error::Input { problems })?;
/// let setup = SetupRequest { global_batch: Some(512), tokens: Some(1e12), ..Default::default() }
///     .resolve("", &model).map_err(|problems| Error::Input { problems })?;
/// let settings = EconomicsRequest::default().resolve("").map_err(|problems| Error::Input { problems })?;
/// let limits = Limits { time: Some(Seconds::new(7.0 * 86_400.0)), ..Default::default() };
/// let (found, t) = most_tokens(&base, 512, &model, &setup, &LayoutConstraints::default(),
///     &Calibration::shipped()?, Question { limits, settings: &settings })?;
/// assert!(t.chips <= 512 && t.chips == found.best.chips && t.tokens > 0.0);
/// # Ok::<(), xpusim::Error>(())
/// ```
///
/// # Errors
/// Limits as [`Limits::check`]; [`Error::Input`] when no count has a layout that fits, or
/// [`trainable`]'s error at the best count.
pub fn most_tokens(
    base: &Cluster,
    max_chips: u64,
    model: &Model,
    setup: &TrainingSetup,
    pinned: &LayoutConstraints,
    calibration: &Calibration,
    question: Question<'_>,
) -> Result<(Search, Trainable)> {
    precheck(
        &base.chip,
        &base.system,
        question.settings,
        &question.limits,
    )?;
    let within = |e: &Estimate| {
        trainable(
            e,
            &base.chip,
            &base.system,
            question.settings,
            &question.limits,
        )
    };
    let score = |e: &Estimate| within(e).map_or(f64::INFINITY, |t| -t.tokens);
    // Whole systems only: a partly filled system's idle chips would escape the budget.
    let counts = Counts {
        max_chips,
        fills: false,
    };
    let (found, _, _) = lowest_over_counts(base, counts, model, setup, pinned, calibration, score)?;
    let t = within(&found.best)?;
    Ok((found, t))
}

/// How many tokens per parameter a compute-optimal model trains on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Hoffmann et al. 2022 ([`CHINCHILLA_TOKENS_PER_PARAM`]).
    Chinchilla,
    /// A ratio the user picks.
    TokensPerParam(f64),
}

impl Rule {
    /// Tokens per parameter.
    #[must_use]
    pub fn tokens_per_param(self) -> f64 {
        match self {
            Self::Chinchilla => CHINCHILLA_TOKENS_PER_PARAM,
            Self::TokensPerParam(r) => r,
        }
    }

    /// `chinchilla` or a number of tokens per parameter in [`TOKENS_PER_PARAM_RANGE`].
    ///
    /// ```
    /// use xpusim::inverse::Rule;
    /// assert_eq!(Rule::parse("compute_optimal", "chinchilla"), Ok(Rule::Chinchilla));
    /// assert_eq!(Rule::parse("compute_optimal", "40"), Ok(Rule::TokensPerParam(40.0)));
    /// assert!(Rule::parse("compute_optimal", "-3").is_err());
    /// assert!(Rule::parse("compute_optimal", "nan").is_err());
    /// ```
    ///
    /// # Errors
    /// The problem, keyed `key`.
    pub fn parse(key: &str, text: &str) -> std::result::Result<Self, Problem> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("chinchilla") {
            return Ok(Self::Chinchilla);
        }
        let (lo, hi) = TOKENS_PER_PARAM_RANGE;
        match t.parse::<f64>() {
            Ok(r) if r.is_finite() && (lo..=hi).contains(&r) => Ok(Self::TokensPerParam(r)),
            _ => Err(Problem::new(
                key,
                format!(
                    "must be `chinchilla` or a number of tokens per parameter from {lo} to {hi:e}, got `{text}`"
                ),
            )),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chinchilla => write!(
                f,
                "Chinchilla ({CHINCHILLA_TOKENS_PER_PARAM} tokens/parameter)"
            ),
            Self::TokensPerParam(r) => write!(f, "{r} tokens/parameter"),
        }
    }
}

/// The compute-optimal model for the compute of a [`Trainable`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputeOptimal {
    /// The rule.
    pub rule: Rule,
    /// Its tokens per parameter, `r`.
    pub tokens_per_param: f64,
    /// Training compute the limits deliver, `C`.
    #[serde(rename = "compute_flop")]
    pub compute: Flops,
    /// Parameters, `N = √(C / 6r)`.
    pub params: f64,
    /// Tokens, `D = r · N`.
    pub tokens: f64,
    /// The model whose predicted MFU gave the compute.
    pub reference: String,
    /// That model's MFU at the run's chip count.
    pub reference_mfu: f64,
    /// The dense shipped preset nearest to `N` in parameters (by ratio).
    pub nearest_preset: Option<String>,
    /// Its parameters.
    pub nearest_preset_params: Option<f64>,
}

/// `N` and `D = r · N` with `6 · N · D = compute`.
fn split(compute: Flops, r: f64) -> (f64, f64) {
    let n = (compute.flops() / (6.0 * r)).sqrt();
    (n, r * n)
}

/// The compute-optimal parameters and tokens for the compute `t` delivers, under `rule`
/// (module docs: `C = 6ND`, `D = rN`; the compute comes from the reference model's MFU), with
/// the nearest dense shipped preset.
///
/// ```
/// use xpusim::inverse::{compute_optimal, Limit, Rule, Trainable};
/// use xpusim::units::{Flops, FlopsPerSecond, Seconds};
/// // 3.8e25 FLOPs (Llama 3 405B's training compute): ~5.6e11 parameters on ~1.1e13 tokens.
/// let t = Trainable {
///     model: "llama3-405b".into(), chips: 16_384, binding: Limit::Time, tokens: 15.6e12,
///     wall_time: Seconds::new(7e6), useful_time: Seconds::new(6.3e6), goodput: 0.9,
///     tokens_per_second: 2.5e6, mfu: 0.4, model_flops_per_second: FlopsPerSecond::new(6e18),
///     compute: Flops::new(3.8e25), cost: None, energy: None, allowed: vec![],
/// };
/// let c = compute_optimal(&t, Rule::Chinchilla)?;
/// assert!((6.0 * c.params * c.tokens / 3.8e25 - 1.0).abs() < 1e-12);
/// assert!((c.tokens / c.params - 20.0).abs() < 1e-9);
/// assert!(c.params > 5.5e11 && c.params < 5.7e11);
/// # Ok::<(), xpusim::Error>(())
/// ```
///
/// # Errors
/// [`Error::Input`] keyed `compute_optimal` for a ratio outside [`TOKENS_PER_PARAM_RANGE`] or a
/// compute that is not positive and finite; the presets' error if they cannot be read.
pub fn compute_optimal(t: &Trainable, rule: Rule) -> Result<ComputeOptimal> {
    let r = rule.tokens_per_param();
    let (lo, hi) = TOKENS_PER_PARAM_RANGE;
    if !(r.is_finite() && (lo..=hi).contains(&r)) {
        return Err(Error::input(
            "compute_optimal",
            format!("tokens per parameter must be from {lo} to {hi:e}, got {r}"),
        ));
    }
    let c = t.compute.flops();
    if !(c.is_finite() && c > 0.0) {
        return Err(Error::input(
            "compute_optimal",
            format!("the limits deliver no compute ({c:e} FLOPs)"),
        ));
    }
    let (params, tokens) = split(t.compute, r);
    let nearest = crate::workload::presets()?
        .into_iter()
        .filter(|m| m.moe.is_none())
        .map(|m| {
            let p = m.params();
            ((p / params).ln().abs(), m.id, p)
        })
        .filter(|(d, _, _)| d.is_finite())
        .min_by(|a, b| a.0.total_cmp(&b.0));
    Ok(ComputeOptimal {
        rule,
        tokens_per_param: r,
        compute: t.compute,
        params,
        tokens,
        reference: t.model.clone(),
        reference_mfu: t.mfu,
        nearest_preset: nearest.as_ref().map(|n| n.1.clone()),
        nearest_preset_params: nearest.map(|n| n.2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;
    use crate::request::{ClusterRequest, EconomicsRequest, SetupRequest};
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    fn cluster(hw: &str, chips: i64) -> Cluster {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        ClusterRequest {
            hardware: hw.into(),
            chips: Some(chips),
            ..Default::default()
        }
        .resolve("", &catalog)
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn setup(model: &Model, tokens: f64) -> TrainingSetup {
        SetupRequest {
            global_batch: Some(256),
            tokens: Some(tokens),
            ..Default::default()
        }
        .resolve("", model)
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn model() -> Model {
        crate::workload::preset("llama3-8b").unwrap_or_else(|e| panic!("{e}"))
    }

    fn cal() -> Calibration {
        Calibration::shipped().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The best layout of llama3-8b on `chips` chips of `hw` training `tokens`.
    fn estimate(hw: &str, chips: i64, tokens: f64) -> (Estimate, Cluster) {
        let c = cluster(hw, chips);
        let m = model();
        let s = setup(&m, tokens);
        let job = Job::new(m, s, c.clone());
        let found =
            search(&job, &LayoutConstraints::default(), &cal()).unwrap_or_else(|e| panic!("{e}"));
        (found.best, c)
    }

    fn settings(r: EconomicsRequest) -> Settings {
        r.resolve("").unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn within(e: &Estimate, c: &Cluster, s: &Settings, l: Limits) -> Trainable {
        trainable(e, &c.chip, &c.system, s, &l).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tokens_scale_linearly_with_days_when_nothing_else_binds() {
        let (e, c) = estimate("h100", 128, 1e11);
        let s = settings(EconomicsRequest::default());
        let at = |d: f64| {
            within(
                &e,
                &c,
                &s,
                Limits {
                    time: Some(Seconds::from_days(d)),
                    ..Default::default()
                },
            )
        };
        let (one, ten) = (at(3.0), at(30.0));
        assert_eq!(one.binding, Limit::Time);
        assert_relative_eq!(ten.tokens, 10.0 * one.tokens, max_relative = 1e-12);
        assert_relative_eq!(ten.wall_time.days(), 30.0, max_relative = 1e-12);
        // Failures take their share: tokens are the failure-free rate times the goodput.
        assert!(one.goodput > 0.0 && one.goodput < 1.0);
        assert_relative_eq!(
            one.tokens,
            e.prediction.tokens_per_second * one.goodput * 3.0 * 86_400.0,
            max_relative = 1e-12
        );
        assert!(one.cost.is_some_and(|c| c.usd() > 0.0));
        assert!(one.energy.is_some_and(|j| j.joules() > 0.0));
    }

    /// The answer is the forward model run backwards: training the tokens found takes the
    /// limit's wall time (with failures) and spends the budget.
    #[test]
    fn the_tokens_found_take_the_limit_when_estimated_forward() {
        let (e, c) = estimate("h100", 128, 1e11);
        for pricing in [crate::Pricing::OnDemand, crate::Pricing::Owned] {
            let s = settings(EconomicsRequest {
                pricing: Some(pricing),
                ..Default::default()
            });
            let t = within(
                &e,
                &c,
                &s,
                Limits {
                    budget: Some(Usd::new(2e6)),
                    ..Default::default()
                },
            );
            assert_eq!(t.binding, Limit::Budget);
            let (again, _) = estimate("h100", 128, t.tokens);
            assert_eq!(again.layout, e.layout);
            let a = assess(&again, &c.chip, &c.system, &s);
            assert_relative_eq!(
                a.effective_train_days,
                t.wall_time.days(),
                max_relative = 1e-9
            );
            assert_relative_eq!(a.cost_usd.unwrap_or(0.0), 2e6, max_relative = 1e-9);
            let mwh = t.energy.map_or(0.0, |j| j.megawatt_hours());
            assert_relative_eq!(a.energy_mwh.unwrap_or(0.0), mwh, max_relative = 1e-9);
        }
    }

    #[test]
    fn the_smaller_limit_binds() {
        let (e, c) = estimate("h100", 128, 1e11);
        let s = settings(EconomicsRequest::default());
        let time = Limits {
            time: Some(Seconds::from_days(30.0)),
            ..Default::default()
        };
        let t = within(&e, &c, &s, time);
        let cost = t.cost.map_or(0.0, Usd::usd);
        let mwh = t.energy.map_or(0.0, Joules::megawatt_hours);
        assert!(cost > 0.0 && mwh > 0.0);
        // Half the 30-day cost binds before the 30 days; twice it does not.
        for (budget, binding) in [(0.5 * cost, Limit::Budget), (2.0 * cost, Limit::Time)] {
            let both = within(
                &e,
                &c,
                &s,
                Limits {
                    budget: Some(Usd::new(budget)),
                    ..time
                },
            );
            assert_eq!(both.binding, binding);
            let least = both
                .allowed
                .iter()
                .map(|a| a.tokens)
                .fold(f64::INFINITY, f64::min);
            assert_relative_eq!(both.tokens, least, max_relative = 1e-12);
            assert!(both.tokens <= t.tokens * (1.0 + 1e-12));
        }
        let energy = within(
            &e,
            &c,
            &s,
            Limits {
                energy: Some(Joules::from_megawatt_hours(0.25 * mwh)),
                ..time
            },
        );
        assert_eq!(energy.binding, Limit::Energy);
        assert_relative_eq!(energy.tokens, 0.25 * t.tokens, max_relative = 1e-9);
    }

    #[test]
    fn bad_limits_are_refused_by_name() {
        let (e, c) = estimate("h100", 64, 1e11);
        let s = settings(EconomicsRequest::default());
        let refused = |l: Limits, key: &str| match trainable(&e, &c.chip, &c.system, &s, &l) {
            Err(Error::Input { problems }) => {
                assert!(problems.iter().any(|p| p.key == key), "{problems:?}");
            }
            other => panic!("{other:?}"),
        };
        refused(Limits::default(), "limits");
        for d in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            refused(
                Limits {
                    time: Some(Seconds::from_days(d)),
                    ..Default::default()
                },
                "days",
            );
        }
        refused(
            Limits {
                budget: Some(Usd::new(-5.0)),
                ..Default::default()
            },
            "budget_usd",
        );
        refused(
            Limits {
                energy: Some(Joules::new(f64::NAN)),
                ..Default::default()
            },
            "energy_mwh",
        );
        // A price of 0 puts no bound on a budget alone.
        let free = settings(EconomicsRequest {
            price_usd_per_chip_hour: Some(0.0),
            ..Default::default()
        });
        match trainable(
            &e,
            &c.chip,
            &c.system,
            &free,
            &Limits {
                budget: Some(Usd::new(1e6)),
                ..Default::default()
            },
        ) {
            Err(Error::Input { problems }) => assert_eq!(problems[0].key, "budget_usd"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chinchilla_trains_twenty_tokens_per_parameter_on_the_compute_delivered() {
        let (e, c) = estimate("h100", 128, 1e11);
        let s = settings(EconomicsRequest::default());
        let t = within(
            &e,
            &c,
            &s,
            Limits {
                time: Some(Seconds::from_days(30.0)),
                ..Default::default()
            },
        );
        // The compute is the reference run's sustained model FLOP/s over the useful time.
        assert_relative_eq!(
            t.compute.flops(),
            e.prediction.mfu
                * c.chip
                    .peak_flops(crate::hardware::Precision::Bf16)
                    .map_or(0.0, FlopsPerSecond::flops_per_second)
                * 128.0
                * t.useful_time.seconds(),
            max_relative = 1e-9
        );
        let o = compute_optimal(&t, Rule::Chinchilla).unwrap_or_else(|e| panic!("{e}"));
        assert_relative_eq!(o.tokens, 20.0 * o.params, max_relative = 1e-12);
        assert_relative_eq!(
            6.0 * o.params * o.tokens,
            t.compute.flops(),
            max_relative = 1e-12
        );
        assert_eq!(o.reference, "llama3-8b");
        let nearest = o.nearest_preset_params.unwrap_or(0.0);
        assert!(nearest > 0.0 && o.nearest_preset.is_some());
        // No dense preset is nearer in ratio.
        for m in crate::workload::presets().unwrap_or_else(|e| panic!("{e}")) {
            if m.moe.is_none() {
                assert!((m.params() / o.params).ln().abs() >= (nearest / o.params).ln().abs());
            }
        }
        let forty =
            compute_optimal(&t, Rule::TokensPerParam(40.0)).unwrap_or_else(|e| panic!("{e}"));
        // Twice the tokens per parameter: √2 fewer parameters on √2 more tokens.
        assert_relative_eq!(o.params / forty.params, 2f64.sqrt(), max_relative = 1e-12);
        assert!(compute_optimal(&t, Rule::TokensPerParam(0.0)).is_err());
        assert!(compute_optimal(&t, Rule::TokensPerParam(f64::NAN)).is_err());
    }

    #[test]
    fn most_tokens_is_at_least_any_count_it_tried() {
        let base = cluster("h100", 256);
        let m = model();
        let s = setup(&m, 1e11);
        let e = settings(EconomicsRequest::default());
        let limits = Limits {
            time: Some(Seconds::from_days(10.0)),
            budget: Some(Usd::new(1e5)),
            ..Default::default()
        };
        let q = Question {
            limits,
            settings: &e,
        };
        let (found, best) =
            most_tokens(&base, 256, &m, &s, &LayoutConstraints::default(), &cal(), q)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.best.chips, best.chips);
        for n in [8, 64, 256] {
            let job = Job::new(m.clone(), s.clone(), cluster("h100", n));
            let (_, t) = tokens_at(&job, &LayoutConstraints::default(), &cal(), q)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                t.tokens <= best.tokens * (1.0 + 1e-12),
                "{n}: {t:?} vs {best:?}"
            );
        }
    }

    proptest! {
        /// `N` and `D` spend exactly the compute at the ratio, for any compute and ratio.
        #[test]
        fn the_split_spends_the_compute(log_c in 15.0f64..30.0, r in 0.01f64..1e5) {
            let c = Flops::new(10f64.powf(log_c));
            let (n, d) = split(c, r);
            prop_assert!(n > 0.0 && d > 0.0);
            prop_assert!((6.0 * n * d / c.flops() - 1.0).abs() < 1e-12);
            prop_assert!((d / n / r - 1.0).abs() < 1e-12);
        }

        /// Tokens never fall when a limit grows, and never exceed what any limit alone allows.
        #[test]
        fn more_of_a_limit_never_trains_less(d in 0.1f64..1000.0, b in 1e3f64..1e9, k in 1.0f64..10.0) {
            let (e, c) = fixture();
            let s = settings(EconomicsRequest::default());
            let l = Limits { time: Some(Seconds::from_days(d)), budget: Some(Usd::new(b)), ..Default::default() };
            let t = within(e, c, &s, l);
            let more_days = within(e, c, &s, Limits { time: Some(Seconds::from_days(d * k)), ..l });
            let more_money = within(e, c, &s, Limits { budget: Some(Usd::new(b * k)), ..l });
            prop_assert!(t.tokens > 0.0 && t.cost.is_some_and(|c| c.usd() >= 0.0));
            prop_assert!(more_days.tokens >= t.tokens && more_money.tokens >= t.tokens);
            prop_assert!(t.allowed.iter().all(|a| a.tokens >= t.tokens));
            prop_assert!(t.cost.is_some_and(|c| c.usd() <= b * (1.0 + 1e-9)));
            prop_assert!(t.wall_time.days() <= d * (1.0 + 1e-9));
        }
    }

    /// One searched estimate shared by the property test's cases.
    fn fixture() -> &'static (Estimate, Cluster) {
        static F: std::sync::OnceLock<(Estimate, Cluster)> = std::sync::OnceLock::new();
        F.get_or_init(|| estimate("h100", 64, 1e11))
    }
}
