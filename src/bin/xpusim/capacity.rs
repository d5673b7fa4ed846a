//! `xpusim capacity`: what a power envelope or a budget holds, and what it trains.

use crate::args::CapacityArgs;
use crate::{calibration, emit, flagged};
use anyhow::{bail, Result};
use xpusim::capacity::{best_chip_count, chips_for_power, peak, Goal};
use xpusim::economics::hourly_price;
use xpusim::limits::{positive_up_to, MAX_BUDGET_USD, MAX_POWER_MW, MAX_YEARS};
use xpusim::report::table;
use xpusim::units::{Usd, Watts};
use xpusim::{
    assess, chip_hours_for_budget, preset, Catalog, LayoutChoice, LayoutRequest, Objective,
    Pricing, SetupRequest,
};

/// Largest count searched when a budget gives no chip limit.
const BUDGET_SEARCH_LIMIT: u64 = 1 << 20;

pub fn run(catalog: &Catalog, a: &CapacityArgs) -> Result<()> {
    if a.power_mw.is_none() && a.budget_usd.is_none() {
        bail!("--power-mw or --budget-usd: give a power envelope, a budget, or both");
    }
    let mut problems = Vec::new();
    for (k, v, max) in [
        ("power_mw", a.power_mw, MAX_POWER_MW),
        ("budget_usd", a.budget_usd, MAX_BUDGET_USD),
        ("years", Some(a.years), MAX_YEARS),
    ] {
        if let Some(Err(e)) = v.map(|v| positive_up_to(k, v, max)) {
            problems.push(e);
        }
    }
    let settings = a
        .economics
        .request()
        .resolve("")
        .map_err(|p| problems.extend(p))
        .ok();
    let model = match &a.model {
        Some(m) => Some(preset(m).map_err(|e| anyhow::anyhow!("--model: {e}"))?),
        None => None,
    };
    let setup = model.as_ref().and_then(|m| {
        SetupRequest {
            global_batch: Some(a.global_batch),
            seq_len: a.seq_len,
            tokens: Some(a.tokens),
            precision: Some(a.precision),
            ..Default::default()
        }
        .resolve("", m)
        .map_err(|p| problems.extend(p))
        .ok()
    });
    let Some(settings) = settings else {
        return Err(flagged(problems));
    };
    if !problems.is_empty() {
        return Err(flagged(problems));
    }
    let cal = calibration(None)?;
    let pinned = match LayoutRequest::default().resolve("") {
        Ok(LayoutChoice::Search(c) | LayoutChoice::Fixed(c)) => c,
        Err(p) => return Err(flagged(p)),
    };
    let mut body = Vec::new();
    for hw in &a.hardware {
        let (chip, system) = catalog.resolve(hw)?;
        let fit = a
            .power_mw
            .map(|mw| chips_for_power(&chip, &system, &settings.facility, Watts::new(mw * 1e6)));
        let price = hourly_price(&chip, &system, &settings);
        let budget = a
            .budget_usd
            .zip(price.as_ref())
            .map(|(b, (p, _))| chip_hours_for_budget(Usd::new(b), *p, a.years));
        // The chips a run may use: the power envelope's, else what the budget keeps busy.
        let limit = fit
            .as_ref()
            .map(|f| f.chips)
            .or(budget.map(|(_, chips)| (chips.floor() as u64).min(BUDGET_SEARCH_LIMIT)));
        let run = match (&model, &setup, limit) {
            (Some(m), Some(s), Some(n)) if n > 0 => {
                // Chosen by the time to train with failures: past some size, interruptions cost
                // more than the chips save.
                let base = xpusim::ClusterRequest {
                    hardware: hw.clone(),
                    chips: i64::try_from(n).ok(),
                    ..Default::default()
                }
                .resolve("", catalog)
                .map_err(flagged)?;
                let goal = Goal {
                    objective: Objective::Time,
                    settings: &settings,
                };
                match best_chip_count(&base, n, m, s, &pinned, &cal, goal) {
                    Ok((found, _)) => {
                        let e = found.best;
                        let x = assess(&e, &chip, &system, &settings);
                        Some(Ok((e, x)))
                    }
                    Err(err) => Some(Err(err.to_string())),
                }
            }
            _ => None,
        };
        let f = |v: f64| format!("{v:.4e}");
        let mut row = vec![
            hw.clone(),
            fit.as_ref().map_or("-".into(), |f| f.systems.to_string()),
            fit.as_ref().map_or("-".into(), |f| f.chips.to_string()),
            fit.as_ref()
                .map_or("-".into(), |x| format!("{:.1}", x.facility.watts() / 1e6)),
            fit.as_ref().map_or("-".into(), |x| {
                f(peak(&chip, x.chips, a.precision).flops_per_second())
            }),
            price.as_ref().map_or("n/p".into(), |(p, basis)| {
                format!("{:.3} ({basis})", p.usd_per_chip_hour())
            }),
            budget.map_or("-".into(), |(h, _)| f(h)),
            budget.map_or("-".into(), |(_, c)| format!("{c:.0}")),
        ];
        match run {
            Some(Ok((e, x))) => {
                let runs =
                    budget.map(|(h, _)| h / (x.effective_train_days * 24.0 * e.chips as f64));
                row.extend([
                    e.chips.to_string(),
                    f(e.prediction.model_flops_per_chip.flops_per_second() * e.chips as f64),
                    format!("{:.1} ({:.1})", e.train_time.days(), x.effective_train_days),
                    runs.map_or("-".into(), |r| format!("{r:.2}")),
                ]);
            }
            Some(Err(why)) => row.extend([
                format!("no layout: {why}"),
                "-".into(),
                "-".into(),
                "-".into(),
            ]),
            None => row.extend(["-".into(), "-".into(), "-".into(), "-".into()]),
        }
        let row: [String; 12] = row.try_into().unwrap_or_else(|_| Default::default());
        body.push(row);
    }
    let head = [
        "hardware",
        "systems",
        "chips",
        "facility MW",
        "peak FLOP/s",
        &format!("$/chip-h ({})", settings.pricing.as_str()),
        "chip-hours",
        "avg chips",
        "run chips",
        "sustained FLOP/s",
        "days (failures)",
        "runs bought",
    ]
    .map(String::from);
    let mut text = String::new();
    if let Some(mw) = a.power_mw {
        text.push_str(&format!(
            "{mw} MW facility at PUE {}: whole systems at full load (TDP + host + network shares)\n",
            settings.facility.pue
        ));
    }
    if let Some(b) = a.budget_usd {
        text.push_str(&format!(
            "USD {b:e} over {} years, {} pricing\n",
            a.years,
            settings.pricing.as_str()
        ));
    }
    if let (Some(m), Some(s)) = (&model, &setup) {
        text.push_str(&format!(
            "run: {} on {:.3e} tokens, global batch {} x {}, {} (best chip count up to the envelope or budget)\n",
            m.id,
            s.tokens(),
            s.global_batch(),
            s.seq_len(),
            s.precision()
        ));
    }
    if settings.pricing == Pricing::Owned {
        text.push_str(
            "owned: capital annuity + maintenance + electricity at full load per chip-hour\n",
        );
    }
    text.push('\n');
    text.push_str(&table(&head, &body, false));
    emit(&text, None)
}
