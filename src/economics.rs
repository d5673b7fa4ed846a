//! Money, power and failures of one run: the price basis (rented on demand or committed, or
//! owned), all-in power, energy and carbon, and goodput under failures.
//!
//! **Power.** Each accelerator draws its idle power plus the span to TDP in proportion to its
//! utilisation, taken as the busy share of the step (matmul, memory-bound and kernel time and the
//! optimizer; the accelerator waits at idle through exposed communication and the pipeline
//! bubble): `P_acc = P_idle + (TDP − P_idle) · u`. Every chip also carries its share of host
//! (CPU, memory, NICs, fans) and network switch power; facility power is that IT load times PUE.
//! A system whose published power is already all-in (a TPU pod's 10 MW) takes it as the IT load
//! and adds nothing for hosts or switches.
//!
//! **Owned cost.** Capital (the chip with its server share, plus the scale-out network share per
//! chip) is paid as an annuity over the lifetime at the cost of capital,
//! `capex · r / (1 − (1 + r)^−n)` a year, plus maintenance as a share of capital a year, plus
//! electricity for the facility energy. The run is charged for the chip-hours it holds.
//!
//! **Time.** Cost and energy count the effective (goodput-adjusted) wall time: chips are held and
//! powered through failures and restarts.

use crate::cost::catalog_price;
use crate::energy::Facility;
use crate::hardware::{Chip, System};
use crate::plan::Estimate;
use crate::reliability::{Goodput, Resilience};
use crate::units::{Bytes, Seconds, Usd, UsdPerChipHour, Watts, HOURS_PER_YEAR};
use serde::{Deserialize, Serialize};

/// Idle power as a share of TDP when the catalog has no idle figure. An assumption: H100 SXM
/// boards idle at roughly 70-100 W of 700 W in `nvidia-smi` reports.
pub const DEFAULT_IDLE_FRACTION: f64 = 0.15;

/// Host power per accelerator when the system has no figure: NVIDIA DGX H100's maximum system
/// power, 10.2 kW, less its eight 700 W GPUs, per GPU (datasheet; derived).
pub const DEFAULT_HOST_W_PER_CHIP: f64 = (10_200.0 - 8.0 * 700.0) / 8.0;

/// Switch power per accelerator when the system has no figure. An assumption: a 64-port 400G
/// switch draws about 1.5-2 kW; a three-tier fat tree needs about 5 switch ports per endpoint
/// port, i.e. ~0.1 switch per accelerator with one NIC each: ~150 W.
pub const DEFAULT_NETWORK_W_PER_CHIP: f64 = 150.0;

/// How the run is paid for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Pricing {
    /// Cloud on-demand price per chip-hour.
    #[default]
    OnDemand,
    /// Committed cloud capacity: the cheapest of 3-year and 1-year reservations and capacity
    /// blocks in the catalog.
    Committed,
    /// Owned: capital over the lifetime, cost of capital, maintenance and electricity.
    Owned,
}

impl Pricing {
    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnDemand => "on-demand",
            Self::Committed => "committed",
            Self::Owned => "owned",
        }
    }
}

/// What a choice among runs (e.g. chip counts) minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Objective {
    /// Days to train, failures included.
    #[default]
    Time,
    /// Cost of the run on the pricing basis (the most tokens per dollar).
    Cost,
    /// Facility energy of the run.
    Energy,
}

impl Objective {
    /// The value to minimise (infinite when the assessment lacks the figure).
    #[must_use]
    pub fn score(self, a: &Assessment) -> f64 {
        match self {
            Self::Time => a.effective_train_days,
            Self::Cost => a.cost_usd.unwrap_or(f64::INFINITY),
            Self::Energy => a.energy_mwh.unwrap_or(f64::INFINITY),
        }
    }
}

/// Owned-cost settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ownership {
    /// Years the hardware is depreciated over. Default 5: AWS's useful life of servers from
    /// 2025 (Amazon 10-K for 2024, shortened from 6).
    pub lifetime_years: f64,
    /// Annual cost of capital. Default 8%: an assumption near large technology firms'
    /// weighted average cost of capital.
    pub cost_of_capital: f64,
    /// Electricity, USD per kWh. Default 0.08: US industrial average 2023, 8.0 cents/kWh (EIA
    /// Electric Power Monthly, table 5.3).
    pub electricity_usd_per_kwh: f64,
    /// Maintenance and support a year, as a share of capital. Default 3%: an assumption.
    pub maintenance_per_year: f64,
}

impl Default for Ownership {
    fn default() -> Self {
        Self {
            lifetime_years: 5.0,
            cost_of_capital: 0.08,
            electricity_usd_per_kwh: 0.08,
            maintenance_per_year: 0.03,
        }
    }
}

impl Ownership {
    /// The capital recovery factor `r / (1 − (1 + r)^−n)` (the share of capital paid each year).
    ///
    /// ```
    /// let o = xpusim::economics::Ownership { cost_of_capital: 0.0, ..Default::default() };
    /// assert!((o.capital_recovery() - 0.2).abs() < 1e-12); // 5 years, no interest
    /// ```
    #[must_use]
    pub fn capital_recovery(&self) -> f64 {
        let (r, n) = (self.cost_of_capital, self.lifetime_years);
        if r.abs() < 1e-12 {
            1.0 / n
        } else {
            r / (1.0 - (1.0 + r).powf(-n))
        }
    }
}

/// All the settings of an assessment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Facility PUE and grid intensity.
    pub facility: Facility,
    /// Price basis.
    pub pricing: Pricing,
    /// A price per chip-hour given by the user (rented bases only).
    pub price: Option<UsdPerChipHour>,
    /// Owned-cost settings.
    pub ownership: Ownership,
    /// Failures and checkpoints.
    pub resilience: Resilience,
}

/// Cost, power, energy and goodput of one run (the row's economics columns).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Price basis: `on-demand`, `committed`, `owned` or `user`.
    pub pricing: String,
    /// Price per chip-hour used (owned: capital, maintenance and electricity per chip-hour).
    pub price_usd_per_chip_hour: Option<f64>,
    /// Kind, date, status and source of the price; `assumed` prices are marked.
    pub price_basis: Option<String>,
    /// Whether the price is an estimate (status `assumed` or `press`).
    pub price_assumed: bool,
    /// Total cost.
    pub cost_usd: Option<f64>,
    /// Cost per million tokens trained.
    pub cost_per_mtok_usd: Option<f64>,
    /// Owned cost: capital share (annuity) of the run.
    pub capital_usd: Option<f64>,
    /// Owned cost: maintenance share.
    pub maintenance_usd: Option<f64>,
    /// Owned cost: electricity.
    pub electricity_usd: Option<f64>,
    /// Accelerator utilisation used for power (busy share of the step).
    pub utilisation: f64,
    /// Mean accelerator power.
    pub chip_power_w: Option<f64>,
    /// Mean IT power per chip (accelerator, host share, network share).
    pub it_power_per_chip_w: Option<f64>,
    /// Mean facility power (IT x PUE), MW.
    pub avg_power_mw: Option<f64>,
    /// Facility energy of the run, MWh.
    pub energy_mwh: Option<f64>,
    /// Location-based emissions, tonnes CO2e.
    pub co2_t: Option<f64>,
    /// Tokens per facility kWh.
    pub tokens_per_kwh: Option<f64>,
    /// Achieved model FLOP per joule of accelerator energy.
    pub flop_per_joule_chip: Option<f64>,
    /// Achieved model FLOP per joule of facility energy.
    pub flop_per_joule_system: Option<f64>,
    /// PUE used.
    pub pue: f64,
    /// Useful / wall time under failures.
    pub goodput: f64,
    /// Expected interruptions over the run.
    pub interruptions: f64,
    /// Work between checkpoints, hours.
    pub checkpoint_interval_h: f64,
    /// Wall time to train including failures, days.
    pub effective_train_days: f64,
}

/// The power figures of one chip in its system.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerInputs {
    /// Accelerator TDP.
    pub tdp: Watts,
    /// Accelerator idle power.
    pub idle: Watts,
    /// Host share per chip.
    pub host: Watts,
    /// Network switch share per chip.
    pub network: Watts,
    /// Whether `tdp` is already the all-in per-chip figure (hosts and network included).
    pub all_in: bool,
}

impl PowerInputs {
    /// From the catalog: the chip's TDP and idle power, the system's host and network shares
    /// (defaults documented above where the catalog has none). `None` without a TDP.
    #[must_use]
    pub fn from_catalog(chip: &Chip, system: &System) -> Option<Self> {
        let tdp = chip.tdp.as_ref()?.value;
        let fig = |f: &Option<crate::hardware::Figure<Watts>>, d: f64| {
            f.as_ref().map_or(Watts::new(d), |f| f.value)
        };
        Some(Self {
            tdp,
            idle: chip
                .idle_power
                .as_ref()
                .map_or(tdp * DEFAULT_IDLE_FRACTION, |f| f.value.min(tdp)),
            host: fig(&system.host_power_per_chip, DEFAULT_HOST_W_PER_CHIP),
            network: fig(&system.network_power_per_chip, DEFAULT_NETWORK_W_PER_CHIP),
            all_in: system.power_all_in,
        })
    }

    /// Facility power per chip at utilisation `u`: IT power times PUE, or the all-in figure as
    /// it is (a pod's published power already includes its facility overhead).
    #[must_use]
    pub fn facility(&self, u: f64, pue: f64) -> Watts {
        if self.all_in {
            self.tdp
        } else {
            self.it(u) * pue
        }
    }

    /// Mean accelerator power at utilisation `u` (clamped to 0..1).
    #[must_use]
    pub fn accelerator(&self, u: f64) -> Watts {
        let u = u.clamp(0.0, 1.0);
        if self.all_in {
            self.tdp
        } else {
            self.idle + (self.tdp - self.idle) * u
        }
    }

    /// Mean IT power per chip at utilisation `u`: accelerator plus host and network shares.
    #[must_use]
    pub fn it(&self, u: f64) -> Watts {
        if self.all_in {
            self.tdp
        } else {
            self.accelerator(u) + self.host + self.network
        }
    }
}

/// The price per chip-hour of a rented basis from the catalog: (price, basis text, assumed).
fn rented(chip: &Chip, pricing: Pricing) -> Option<(UsdPerChipHour, String, bool)> {
    let kinds: &[&str] = match pricing {
        Pricing::OnDemand => &["on-demand"],
        Pricing::Committed => &["reserved-3y", "reserved-1y", "capacity-block"],
        Pricing::Owned => &[],
    };
    kinds
        .iter()
        .filter_map(|k| catalog_price(chip, k))
        .min_by(|a, b| {
            a.per_chip_hour
                .usd_per_chip_hour()
                .total_cmp(&b.per_chip_hour.usd_per_chip_hour())
        })
        .map(|p| {
            let assumed = p.is_estimate();
            let basis = format!(
                "{} {} {}{} {}",
                p.kind,
                p.date,
                p.status.as_str(),
                if assumed { " (ESTIMATE)" } else { "" },
                p.source
            );
            (p.per_chip_hour, basis, assumed)
        })
}

/// Assess one estimate: cost on the chosen basis, power, energy, carbon and goodput.
#[must_use]
pub fn assess(e: &Estimate, chip: &Chip, system: &System, s: &Settings) -> Assessment {
    let b = &e.prediction.breakdown;
    let step = b.step.seconds();
    let busy = b.matmul + b.memory_bound + b.kernel_overhead + b.optimizer;
    let utilisation = if step > 0.0 {
        (busy.seconds() / step).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let chips = e.chips as f64;
    // Checkpoint: BF16 weights and FP32 master weights and moments of every parameter.
    let params = e.six_n_flops_per_token.flops() / 6.0;
    let state = Bytes::new(params * (2.0 + 12.0));
    let good: Goodput = s.resilience.goodput(e.train_time, e.chips, state);
    let wall = good.effective_time;
    let chip_hours = wall.hours() * chips;
    let power = PowerInputs::from_catalog(chip, system);
    let it = power.map(|p| p.it(utilisation));
    let facility_w = power.map(|p| p.facility(utilisation, s.facility.pue) * chips);
    let energy = facility_w.map(|w| w * wall);
    let kwh = energy.map(|j| j.megawatt_hours() * 1000.0);
    let tokens = e.steps * e.prediction.tokens_per_second * step;
    let model_flops = e.flops_per_token.flops() * tokens;
    let mut a = Assessment {
        pricing: s.pricing.as_str().into(),
        utilisation,
        chip_power_w: power.map(|p| p.accelerator(utilisation).watts()),
        it_power_per_chip_w: it.map(Watts::watts),
        avg_power_mw: facility_w.map(|w| w.watts() / 1e6),
        energy_mwh: energy.map(|j| j.megawatt_hours()),
        co2_t: energy.map(|j| s.facility.tonnes_co2(j)),
        tokens_per_kwh: kwh.map(|k| tokens / k),
        flop_per_joule_chip: power.map(|p| {
            model_flops / (p.accelerator(utilisation).watts() * chips * e.train_time.seconds())
        }),
        flop_per_joule_system: energy.map(|j| model_flops / j.joules()),
        pue: s.facility.pue,
        goodput: good.goodput,
        interruptions: good.interruptions,
        checkpoint_interval_h: good.checkpoint_interval.hours(),
        effective_train_days: wall.days(),
        ..Assessment::default()
    };
    let per_hour = match (s.price, s.pricing) {
        (Some(p), Pricing::OnDemand | Pricing::Committed) => {
            a.pricing = "user".into();
            a.price_basis = Some("user price (--price)".into());
            Some(p)
        }
        (_, Pricing::OnDemand | Pricing::Committed) => {
            rented(chip, s.pricing).map(|(p, basis, assumed)| {
                a.price_basis = Some(basis);
                a.price_assumed = assumed;
                p
            })
        }
        (_, Pricing::Owned) => owned(
            chip,
            system,
            s,
            &mut a,
            wall,
            chip_hours,
            energy.map(|j| j.megawatt_hours()),
        ),
    };
    if let Some(p) = per_hour {
        let cost = Usd::new(chip_hours * p.usd_per_chip_hour());
        a.price_usd_per_chip_hour = Some(p.usd_per_chip_hour());
        a.cost_usd = Some(cost.usd());
        a.cost_per_mtok_usd = (tokens > 0.0).then(|| cost.usd() / (tokens / 1e6));
    }
    a
}

/// The price of one chip-hour on the settings' basis at full load, with its basis text (for
/// budgets: what a dollar buys before any run is planned). Owned: capital, maintenance and the
/// electricity of the chip's all-in facility power at TDP.
#[must_use]
pub fn hourly_price(
    chip: &Chip,
    system: &System,
    s: &Settings,
) -> Option<(UsdPerChipHour, String)> {
    match (s.price, s.pricing) {
        (Some(p), Pricing::OnDemand | Pricing::Committed) => Some((p, "user price".into())),
        (_, Pricing::OnDemand | Pricing::Committed) => {
            rented(chip, s.pricing).map(|(p, basis, _)| (p, basis))
        }
        (_, Pricing::Owned) => {
            let capex = capex_per_chip(chip, system)?;
            let o = &s.ownership;
            let power_kw = PowerInputs::from_catalog(chip, system)
                .map_or(0.0, |p| p.facility(1.0, s.facility.pue).watts() / 1e3);
            let hourly = capex * (o.capital_recovery() + o.maintenance_per_year) / HOURS_PER_YEAR
                + power_kw * o.electricity_usd_per_kwh;
            Some((
                UsdPerChipHour::new(hourly),
                format!(
                    "owned: ${capex:.0}/chip, {} y, {:.0}%",
                    o.lifetime_years,
                    100.0 * o.cost_of_capital
                ),
            ))
        }
    }
}

/// Capital per chip: the chip with its server share plus the scale-out network share.
fn capex_per_chip(chip: &Chip, system: &System) -> Option<f64> {
    let purchase = chip.purchase.as_ref()?.value.usd();
    let network = system
        .network_capex_per_chip
        .as_ref()
        .map_or(0.0, |f| f.value.usd());
    Some(purchase + network)
}

/// Owned cost: fills the itemised columns and returns the all-in price per chip-hour.
fn owned(
    chip: &Chip,
    system: &System,
    s: &Settings,
    a: &mut Assessment,
    wall: Seconds,
    chip_hours: f64,
    energy_mwh: Option<f64>,
) -> Option<UsdPerChipHour> {
    let _ = wall;
    let capex = capex_per_chip(chip, system)?;
    let o = &s.ownership;
    let capital = capex * o.capital_recovery() / HOURS_PER_YEAR * chip_hours;
    let maintenance = capex * o.maintenance_per_year / HOURS_PER_YEAR * chip_hours;
    let electricity = energy_mwh.map_or(0.0, |m| m * 1000.0 * o.electricity_usd_per_kwh);
    a.capital_usd = Some(capital);
    a.maintenance_usd = Some(maintenance);
    a.electricity_usd = Some(electricity);
    a.price_basis = Some(format!(
        "owned: ${capex:.0}/chip over {} y at {:.0}% + {:.0}%/y maintenance + ${}/kWh",
        o.lifetime_years,
        100.0 * o.cost_of_capital,
        100.0 * o.maintenance_per_year,
        o.electricity_usd_per_kwh
    ));
    (chip_hours > 0.0)
        .then(|| UsdPerChipHour::new((capital + maintenance + electricity) / chip_hours))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;
    use crate::request::{ClusterRequest, EconomicsRequest, SetupRequest};
    use approx::assert_relative_eq;

    fn estimate(hw: &str, chips: i64) -> (Estimate, Chip, System) {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = crate::workload::preset("llama3-8b").unwrap_or_else(|e| panic!("{e}"));
        let cluster = ClusterRequest {
            hardware: hw.into(),
            chips: Some(chips),
            ..Default::default()
        }
        .resolve("", &catalog)
        .unwrap_or_else(|e| panic!("{e:?}"));
        let setup = SetupRequest {
            global_batch: Some(256),
            tokens: Some(1e11),
            ..Default::default()
        }
        .resolve("", &model)
        .unwrap_or_else(|e| panic!("{e:?}"));
        let (chip, system) = (cluster.chip.clone(), cluster.system.clone());
        let job = crate::plan::Job::new(model, setup, cluster);
        let cal = crate::calibration::Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
        let s =
            crate::plan::search(&job, &Default::default(), &cal).unwrap_or_else(|e| panic!("{e}"));
        (s.best, chip, system)
    }

    fn settings(r: EconomicsRequest) -> Settings {
        r.resolve("").unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// Hand-computed power: idle + (TDP − idle)·u, plus host and network shares.
    #[test]
    fn power_is_linear_in_utilisation() {
        let p = PowerInputs {
            tdp: Watts::new(700.0),
            idle: Watts::new(100.0),
            host: Watts::new(500.0),
            network: Watts::new(150.0),
            all_in: false,
        };
        assert_relative_eq!(p.accelerator(0.5).watts(), 400.0);
        assert_relative_eq!(p.it(0.5).watts(), 1050.0);
        assert_relative_eq!(p.it(2.0).watts(), 1350.0); // clamped to u = 1
        let pod = PowerInputs { all_in: true, ..p };
        assert_relative_eq!(pod.it(0.1).watts(), 700.0); // an all-in figure gets nothing added
    }

    /// All-in energy is at least the chips' own energy; cost is linear in price.
    #[test]
    fn all_in_energy_exceeds_chip_energy_and_cost_is_linear_in_price() {
        let (e, chip, system) = estimate("h100", 64);
        let a = assess(&e, &chip, &system, &settings(EconomicsRequest::default()));
        let chip_only_mwh =
            a.chip_power_w.unwrap_or(0.0) * e.chips as f64 * e.train_time.hours() / 1e6;
        assert!(a.energy_mwh.unwrap_or(0.0) >= chip_only_mwh && chip_only_mwh > 0.0);
        let at = |p: f64| {
            assess(
                &e,
                &chip,
                &system,
                &settings(EconomicsRequest {
                    price_usd_per_chip_hour: Some(p),
                    ..Default::default()
                }),
            )
            .cost_usd
            .unwrap_or(f64::NAN)
        };
        assert_relative_eq!(at(4.0), 2.0 * at(2.0), max_relative = 1e-12);
        assert_relative_eq!(
            at(2.0),
            2.0 * e.chips as f64 * a.effective_train_days * 24.0,
            max_relative = 1e-12
        );
    }

    /// Failure-free what-if: goodput 1 and the effective time is the train time.
    #[test]
    fn no_failures_means_full_goodput() {
        let (e, chip, system) = estimate("h100", 64);
        let a = assess(
            &e,
            &chip,
            &system,
            &settings(EconomicsRequest {
                failure_rate_scale: Some(0.0),
                ..Default::default()
            }),
        );
        assert_relative_eq!(a.goodput, 1.0);
        assert_relative_eq!(
            a.effective_train_days,
            e.train_time.days(),
            max_relative = 1e-12
        );
    }
}
