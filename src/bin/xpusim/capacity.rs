//! `xpusim capacity`: what a power envelope or a budget holds, and what it trains; with limits
//! (days, dollars, energy), how many tokens, and with a compute-optimal rule, which model size.

use crate::args::CapacityArgs;
use crate::{calibration, emit, flagged};
use anyhow::{bail, Result};
use serde::Serialize;
use xpusim::capacity::{best_chip_count, chips_for_power, peak, Goal};
use xpusim::economics::hourly_price;
use xpusim::inverse::{
    compute_optimal, most_tokens, ComputeOptimal, Limits, Question, Rule, Trainable,
    DEFAULT_REFERENCE,
};
use xpusim::limits::{
    positive_up_to, MAX_BUDGET_USD, MAX_DAYS, MAX_ENERGY_MWH, MAX_POWER_MW, MAX_YEARS,
};
use xpusim::report::{human, records_csv, table, Format};
use xpusim::units::{Joules, Seconds, Usd, Watts};
use xpusim::{
    assess, chip_hours_for_budget, preset, Catalog, LayoutChoice, LayoutRequest, Objective,
    Pricing, Problem, SetupRequest,
};

/// Largest count searched when a budget gives no chip limit.
const BUDGET_SEARCH_LIMIT: u64 = 1 << 20;

/// Days in a (Julian) year, for a budget spent over `--days`.
const DAYS_PER_YEAR: f64 = 365.25;

/// One hardware's answer (a JSON record; the tables show the same figures).
#[derive(Serialize)]
struct Record {
    hardware: String,
    systems: Option<u64>,
    chips: Option<u64>,
    facility_mw: Option<f64>,
    peak_flop_per_s: Option<f64>,
    pricing: &'static str,
    price_usd_per_chip_hour: Option<f64>,
    price_basis: Option<String>,
    budget_chip_hours: Option<f64>,
    budget_avg_chips: Option<f64>,
    run_chips: Option<u64>,
    sustained_flop_per_s: Option<f64>,
    train_days: Option<f64>,
    effective_train_days: Option<f64>,
    runs_bought: Option<f64>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trainable: Option<Trainable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compute_optimal: Option<ComputeOptimal>,
}

pub fn run(catalog: &Catalog, a: &CapacityArgs) -> Result<()> {
    if a.power_mw.is_none() && a.budget_usd.is_none() {
        bail!("--power-mw or --budget-usd: give a power envelope, a budget, or both");
    }
    let mut problems = Vec::new();
    for (k, v, max) in [
        ("power_mw", a.power_mw, MAX_POWER_MW),
        ("budget_usd", a.budget_usd, MAX_BUDGET_USD),
        ("years", a.years, MAX_YEARS),
        ("days", a.days, MAX_DAYS),
        ("energy_mwh", a.energy_mwh, MAX_ENERGY_MWH),
    ] {
        if let Some(Err(e)) = v.map(|v| positive_up_to(k, v, max)) {
            problems.push(e);
        }
    }
    let rule = a.compute_optimal.as_deref().and_then(|s| {
        Rule::parse("compute_optimal", s)
            .map_err(|p| problems.push(p))
            .ok()
    });
    // Limits turn the question around: how many tokens, not how long.
    let inverse = a.days.is_some() || a.energy_mwh.is_some() || a.compute_optimal.is_some();
    let limits = Limits {
        time: a.days.map(Seconds::from_days),
        budget: a.budget_usd.map(Usd::new),
        energy: a.energy_mwh.map(Joules::from_megawatt_hours),
    };
    if inverse && a.days.is_none() && a.budget_usd.is_none() && a.energy_mwh.is_none() {
        problems.push(Problem::new(
            "compute_optimal",
            "needs a limit to spend: --days, --budget-usd or --energy-mwh",
        ));
    }
    // A budget is spent over --years, else over --days, else over a year.
    let years = a.years.or(a.days.map(|d| d / DAYS_PER_YEAR)).unwrap_or(1.0);
    let settings = a
        .economics
        .request()
        .resolve("")
        .map_err(|p| problems.extend(p))
        .ok();
    let model_id = a
        .model
        .clone()
        .or(inverse.then(|| DEFAULT_REFERENCE.to_string()));
    let model = match &model_id {
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
    let mut records = Vec::new();
    for hw in &a.hardware {
        let (chip, system) = catalog.resolve(hw)?;
        let fit = a
            .power_mw
            .map(|mw| chips_for_power(&chip, &system, &settings.facility, Watts::new(mw * 1e6)));
        let price = hourly_price(&chip, &system, &settings);
        let budget = a
            .budget_usd
            .zip(price.as_ref())
            .map(|(b, (p, _))| chip_hours_for_budget(Usd::new(b), *p, years));
        // The chips a run may use: the power envelope's, else what the budget keeps busy.
        let limit = fit
            .as_ref()
            .map(|f| f.chips)
            .or(budget.map(|(_, chips)| (chips.floor() as u64).min(BUDGET_SEARCH_LIMIT)));
        let mut r = Record {
            hardware: hw.clone(),
            systems: fit.as_ref().map(|f| f.systems),
            chips: fit.as_ref().map(|f| f.chips),
            facility_mw: fit.as_ref().map(|f| f.facility.watts() / 1e6),
            peak_flop_per_s: fit
                .as_ref()
                .map(|f| peak(&chip, f.chips, a.precision).flops_per_second()),
            pricing: settings.pricing.as_str(),
            price_usd_per_chip_hour: price.as_ref().map(|(p, _)| p.usd_per_chip_hour()),
            price_basis: price.as_ref().map(|(_, b)| b.clone()),
            budget_chip_hours: budget.map(|(h, _)| h),
            budget_avg_chips: budget.map(|(_, c)| c),
            run_chips: None,
            sustained_flop_per_s: None,
            train_days: None,
            effective_train_days: None,
            runs_bought: None,
            error: None,
            trainable: None,
            compute_optimal: None,
        };
        if let (Some(m), Some(s), Some(n)) = (&model, &setup, limit.filter(|&n| n > 0)) {
            let base = xpusim::ClusterRequest {
                hardware: hw.clone(),
                chips: i64::try_from(n).ok(),
                ..Default::default()
            }
            .resolve("", catalog)
            .map_err(flagged)?;
            // With limits, the count that trains the most tokens in them; else the fastest with
            // failures (past some size, interruptions cost more than the chips save).
            let found = if inverse {
                let q = Question {
                    limits,
                    settings: &settings,
                };
                most_tokens(&base, n, m, s, &pinned, &cal, q).and_then(|(f, t)| {
                    let co = rule.map(|rule| compute_optimal(&t, rule)).transpose()?;
                    Ok((f, Some(t), co))
                })
            } else {
                let goal = Goal {
                    objective: Objective::Time,
                    settings: &settings,
                };
                best_chip_count(&base, n, m, s, &pinned, &cal, goal).map(|(f, _)| (f, None, None))
            };
            match found {
                Ok((found, t, co)) => {
                    let e = found.best;
                    let x = assess(&e, &chip, &system, &settings);
                    r.run_chips = Some(e.chips);
                    r.sustained_flop_per_s =
                        Some(e.prediction.model_flops_per_chip.flops_per_second() * e.chips as f64);
                    r.train_days = Some(e.train_time.days());
                    r.effective_train_days = Some(x.effective_train_days);
                    r.runs_bought =
                        budget.map(|(h, _)| h / (x.effective_train_days * 24.0 * e.chips as f64));
                    r.trainable = t;
                    r.compute_optimal = co;
                }
                Err(err) => r.error = Some(err.to_string().replace('\n', "; ")),
            }
        }
        records.push(r);
    }
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&records)? + "\n",
        Format::Csv => {
            let values = records
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            records_csv(&values)?
        }
        Format::Table | Format::Markdown => {
            let markdown = a.format == Format::Markdown;
            let mut text = String::new();
            if let Some(mw) = a.power_mw {
                text.push_str(&format!(
                    "{mw} MW facility at PUE {}: whole systems at full load (TDP + host + network shares)\n",
                    settings.facility.pue
                ));
            }
            if let Some(b) = a.budget_usd {
                let period = match (a.years, a.days) {
                    (None, Some(d)) => format!("{d} days"),
                    _ => format!("{years} years"),
                };
                text.push_str(&format!(
                    "USD {b:e} over {period}, {} pricing\n",
                    settings.pricing.as_str()
                ));
            }
            if let (Some(m), Some(s)) = (&model, &setup) {
                text.push_str(&format!(
                    "run: {} on {:.3e} tokens, global batch {} x {}, {} ({})\n",
                    m.id,
                    s.tokens(),
                    s.global_batch(),
                    s.seq_len(),
                    s.precision(),
                    if inverse {
                        "chip count up to the envelope or budget that trains the most tokens within the limits"
                    } else {
                        "best chip count up to the envelope or budget"
                    }
                ));
            }
            if settings.pricing == Pricing::Owned {
                text.push_str(
                    "owned: capital annuity + maintenance + electricity at full load per chip-hour\n",
                );
            }
            text.push('\n');
            text.push_str(&table(&head(settings.pricing), &body(&records), markdown));
            if inverse {
                text.push_str(&limits_section(a, &records, rule, markdown));
            }
            text
        }
    };
    emit(&text, None)
}

/// The capacity table's header.
fn head(pricing: Pricing) -> [String; 12] {
    [
        "hardware",
        "systems",
        "chips",
        "facility MW",
        "peak FLOP/s",
        &format!("$/chip-h ({})", pricing.as_str()),
        "chip-hours",
        "avg chips",
        "run chips",
        "sustained FLOP/s",
        "days (failures)",
        "runs bought",
    ]
    .map(String::from)
}

fn dash<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

fn sci(v: f64) -> String {
    format!("{v:.4e}")
}

/// The capacity table's rows.
fn body(records: &[Record]) -> Vec<[String; 12]> {
    records
        .iter()
        .map(|r| {
            [
                r.hardware.clone(),
                dash(r.systems, |v| v.to_string()),
                dash(r.chips, |v| v.to_string()),
                dash(r.facility_mw, |v| format!("{v:.1}")),
                dash(r.peak_flop_per_s, sci),
                r.price_usd_per_chip_hour
                    .zip(r.price_basis.as_ref())
                    .map_or_else(|| "n/p".into(), |(p, b)| format!("{p:.3} ({b})")),
                dash(r.budget_chip_hours, sci),
                dash(r.budget_avg_chips, |c| format!("{c:.0}")),
                match (&r.error, r.run_chips) {
                    (Some(why), _) => format!("no layout: {why}"),
                    (None, c) => dash(c, |c| c.to_string()),
                },
                dash(r.sustained_flop_per_s, sci),
                dash(r.train_days.zip(r.effective_train_days), |(d, e)| {
                    format!("{d:.1} ({e:.1})")
                }),
                dash(r.runs_bought, |v| format!("{v:.2}")),
            ]
        })
        .collect()
}

/// The second table: tokens trainable within the limits and, when asked, the compute-optimal
/// model, with the lines that say how they are reckoned.
fn limits_section(
    a: &CapacityArgs,
    records: &[Record],
    rule: Option<Rule>,
    markdown: bool,
) -> String {
    let mut given = Vec::new();
    if let Some(d) = a.days {
        given.push(format!("{d} days"));
    }
    if let Some(b) = a.budget_usd {
        given.push(format!("USD {b:e}"));
    }
    if let Some(e) = a.energy_mwh {
        given.push(format!("{e} MWh"));
    }
    let mut text = format!(
        "\nwithin {} (whichever runs out first; failures and checkpoints included):\n",
        given.join(", ")
    );
    let tokens = |r: &Record| {
        r.trainable.as_ref().map_or_else(
            || vec!["-".to_string(); 8],
            |t| {
                vec![
                    t.chips.to_string(),
                    human(t.tokens_per_second),
                    format!("{:.1}%", 100.0 * t.goodput),
                    t.binding.as_str().to_string(),
                    format!("{:.1}", t.wall_time.days()),
                    dash(t.cost, |c| format!("${}", human(c.usd()))),
                    dash(t.energy, |j| human(j.megawatt_hours())),
                    human(t.tokens),
                ]
            },
        )
    };
    let mut h = vec![
        "hardware",
        "run chips",
        "tokens/s",
        "goodput",
        "bound by",
        "wall days",
        "cost $",
        "MWh",
        "tokens trainable",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = vec![r.hardware.clone()];
            row.extend(tokens(r));
            if rule.is_some() {
                row.extend(r.compute_optimal.as_ref().map_or_else(
                    || vec!["-".to_string(); 4],
                    |c| {
                        vec![
                            sci(c.compute.flops()),
                            human(c.params),
                            human(c.tokens),
                            c.nearest_preset
                                .as_ref()
                                .zip(c.nearest_preset_params)
                                .map_or_else(
                                    || "-".into(),
                                    |(id, p)| format!("{id} ({})", human(p)),
                                ),
                        ]
                    },
                ));
            }
            if let Some(why) = &r.error {
                row[1] = format!("no run: {why}");
            }
            row
        })
        .collect();
    if let Some(rule) = rule {
        h.extend(["compute FLOP", "N params", "D tokens", "nearest preset"]);
        text.push_str(&fixed::<13>(&h, &rows, markdown));
        let reference = records
            .iter()
            .find_map(|r| r.compute_optimal.as_ref())
            .map_or_else(
                || a.model.clone().unwrap_or_else(|| DEFAULT_REFERENCE.into()),
                |c| c.reference.clone(),
            );
        text.push_str(&format!(
            "compute-optimal: {rule}{}; C = 6·N·D (dense approximation), D = r·N, N = √(C/6r).\n\
C: the sustained model FLOP/s predicted for {reference} (its MFU at the run's chip count, not re-derived\n\
for a model of N parameters) over the useful time. Nearest preset: the dense shipped model nearest to N.\n",
            if rule == Rule::Chinchilla {
                ", Hoffmann et al. 2022 (arXiv:2203.15556)"
            } else {
                ""
            }
        ));
    } else {
        text.push_str(&fixed::<9>(&h, &rows, markdown));
    }
    text
}

/// [`table`] of rows of `N` cells.
fn fixed<const N: usize>(head: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let cells = |v: Vec<String>| -> [String; N] {
        let mut out: [String; N] = std::array::from_fn(|_| String::new());
        for (o, c) in out.iter_mut().zip(v) {
            *o = c;
        }
        out
    };
    let h = cells(head.iter().map(ToString::to_string).collect());
    let body: Vec<[String; N]> = rows.iter().cloned().map(cells).collect();
    table(&h, &body, markdown)
}
