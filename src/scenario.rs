//! Scenario files: what-if questions as TOML, read raw and then validated (two stages).
//!
//! ```toml
//! schema_version = 1
//! name = "GPT-3 175B on 1,024 A100s"
//! description = "..."
//!
//! [model]                 # a preset ...
//! preset = "gpt3-175b"
//! # layers = 48           # ... with named overrides (checked; a typo is refused with a suggestion),
//! # ... or an inline definition with the preset keys (id, layers, d_model, heads, ffn, mlp, vocab, seq_len, ...)
//!
//! [training]
//! global_batch = 1536     # sequences (or global_batch_tokens = 3145728)
//! seq_len = 2048          # optional, defaults to the model's
//! tokens = 300e9
//! precision = "bf16"      # bf16 | fp8 | fp4
//! attention = "flash"     # optional: flash | unfused
//! tp_comm_overlap = true  # optional software-stack switches (defaults: modern frameworks)
//! dp_comm_overlap = true
//! hierarchical_collectives = true
//! optimizer_states = "fp32" # or "bf16" moments
//! main_grads = "bf16"     # or "fp32" gradient accumulation
//!
//! [[hardware]]            # one or more clusters to compare
//! id = "a100-80gb"        # chip or system id
//! chips = [1024]          # one or more chip counts (a sweep)
//! scale_out_gbit_per_chip = 200   # optional override
//! price_usd_per_chip_hour = 2.5   # optional: your price (default: latest on-demand catalog price)
//!
//! [economics]             # optional: cost, energy and failure settings (all optional), e.g.
//! pricing = "owned"       # on-demand (default) | committed | owned
//! lifetime_years = 5      # owned: depreciation; also cost_of_capital, electricity_usd_per_kwh,
//!                         # maintenance_per_year; failure_rate_scale, checkpoint_gb_per_s_per_chip,
//!                         # restart_minutes; pue, grid_kg_co2_per_kwh
//!
//! [facility]              # optional (older files): energy and carbon (default PUE 1.15, 0.39 kg CO2e/kWh)
//! pue = 1.1
//! grid_kg_co2_per_kwh = 0.41
//!
//! [layout]                # optional: without it the fastest layout that fits is searched
//! tp = 8
//! pp = 8
//! # search_rest = true    # pin the knobs given and search the others
//! ...
//! ```

use crate::calibration::Calibration;
use crate::economics::Settings;
use crate::error::{parse_toml, Error, Problem, Result};
use crate::hardware::{Catalog, Cluster};
use crate::plan::{run, Answer, Job};
use crate::request::{
    key, positive_up_to, ClusterRequest, EconomicsRequest, LayoutChoice, LayoutRequest,
    SetupRequest, MAX_BUDGET_USD, MAX_POWER_MW, MAX_YEARS,
};
use crate::units::Usd;
use crate::workload::{model_from_table, Model, TrainingSetup};
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    schema_version: u32,
    name: String,
    #[serde(default)]
    description: String,
    model: toml::Table,
    training: SetupRequest,
    hardware: Vec<HardwareFile>,
    layout: Option<LayoutRequest>,
    facility: Option<FacilityFile>,
    economics: Option<EconomicsRequest>,
    budget: Option<BudgetFile>,
    baseline: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetFile {
    usd: f64,
    years: f64,
}

/// A budget to spend (`[budget]`): what it buys on each case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Dollars.
    pub usd: Usd,
    /// Over how many years.
    pub years: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FacilityFile {
    pue: Option<f64>,
    grid_kg_co2_per_kwh: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareFile {
    id: String,
    #[serde(default)]
    chips: Vec<i64>,
    #[serde(default)]
    max_chips: Vec<i64>,
    #[serde(default)]
    power_mw: Vec<f64>,
    scale_out_gbit_per_chip: Option<f64>,
    domain_chips: Option<i64>,
    price_usd_per_chip_hour: Option<f64>,
}

/// One cluster to evaluate.
#[derive(Clone, Debug)]
pub struct Case {
    /// The cluster.
    pub cluster: Cluster,
    /// The hardware id as the file gives it.
    pub id: String,
    /// The row's label: the id, with how the chip count was chosen when it was searched.
    pub hardware: String,
    /// Where it is in the file (`hardware[2]`).
    pub key: String,
    /// The energy and cost settings the file gives for it (`[facility]` and its price).
    pub economics: EconomicsRequest,
    /// How the chip count is chosen.
    pub sizing: Sizing,
}

/// How a case's chip count is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sizing {
    /// Exactly the cluster's chips.
    Exact,
    /// The best count up to the cluster's chips, in whole domains (`max_chips`).
    UpTo,
    /// As many whole systems as a facility of this many MW powers at full load, then the best
    /// count up to that (`power_mw`).
    Power(f64),
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Title.
    pub name: String,
    /// What question it answers.
    pub description: String,
    /// The model.
    pub model: Model,
    /// Training setup.
    pub setup: TrainingSetup,
    /// Clusters, in file order.
    pub cases: Vec<Case>,
    /// A fixed layout, or the knobs pinned in a search.
    pub layout: LayoutChoice,
    /// A budget whose chip-hours and runs are reported per case (`[budget]`).
    pub budget: Option<Budget>,
    /// The hardware id the others are compared with (`baseline`): ratios of time, cost, energy.
    pub baseline: Option<String>,
}

/// The outcome of one case: its estimate, or why it cannot run.
pub type CaseOutcome = std::result::Result<(Answer, Settings), Error>;

impl Scenario {
    /// Parse and validate a scenario file; every problem is reported with its key.
    ///
    /// ```
    /// let catalog = xpusim::Catalog::builtin()?;
    /// let text = std::fs::read_to_string("scenarios/headline.toml").map_err(|e| xpusim::Error::Io {
    ///     path: "scenarios/headline.toml".into(), source: e })?;
    /// let s = xpusim::Scenario::parse("headline.toml", &text, &catalog)?;
    /// assert_eq!(s.cases.len(), 5);
    /// let bad = text.replace("[training]", "[training]\nglobal_batchh = 3");
    /// let e = xpusim::Scenario::parse("headline.toml", &bad, &catalog).unwrap_err();
    /// assert!(e.to_string().contains("global_batchh"));
    /// # Ok::<(), xpusim::Error>(())
    /// ```
    ///
    /// # Errors
    /// Parse errors, unknown ids, non-positive sizes, zero chips, values out of range.
    pub fn parse(file: &str, text: &str, catalog: &Catalog) -> Result<Self> {
        let f: ScenarioFile = parse_toml(file, text)?;
        let mut p = Vec::new();
        if f.schema_version != 1 {
            p.push(Problem::new(
                "schema_version",
                format!(
                    "unsupported version {}; this xpusim reads version 1",
                    f.schema_version
                ),
            ));
        }
        let model = match model_from_table(file, "model", f.model) {
            Ok(m) => Some(m),
            Err(e) => {
                p.extend(e.problems());
                None
            }
        };
        let setup = model.as_ref().and_then(|m| {
            f.training
                .resolve("training", m)
                .map_err(|e| p.extend(e))
                .ok()
        });
        if f.hardware.is_empty() {
            p.push(Problem::new(
                "hardware",
                "list at least one [[hardware]] entry",
            ));
        }
        let base = f.economics.unwrap_or_default();
        let table = if f.facility.is_some() {
            "facility."
        } else {
            "economics."
        };
        let facility = match f.facility {
            None => base,
            Some(x) => base.overridden_by(&EconomicsRequest {
                pue: x.pue,
                grid_kg_co2_per_kwh: x.grid_kg_co2_per_kwh,
                ..Default::default()
            }),
        };
        let mut cases = Vec::new();
        for (i, h) in f.hardware.iter().enumerate() {
            let at = format!("hardware[{i}]");
            let economics = EconomicsRequest {
                price_usd_per_chip_hour: h.price_usd_per_chip_hour,
                ..facility.clone()
            };
            if let Err(e) = economics.resolve(&at) {
                p.extend(e.into_iter().map(|x| {
                    // The facility's keys live in [facility], the price in the hardware entry.
                    let k = if x.key == format!("{at}.price_usd_per_chip_hour") {
                        x.key
                    } else {
                        x.key.replacen(&format!("{at}."), table, 1)
                    };
                    Problem::new(k, x.reason)
                }));
            }
            if h.chips.is_empty() && h.max_chips.is_empty() && h.power_mw.is_empty() {
                p.push(Problem::new(
                    key(&at, "chips"),
                    "list at least one chip count (or max_chips, or power_mw)",
                ));
            }
            let sized = h
                .chips
                .iter()
                .map(|&n| (Some(n), Sizing::Exact, "chips"))
                .chain(
                    h.max_chips
                        .iter()
                        .map(|&n| (Some(n), Sizing::UpTo, "max_chips")),
                )
                .chain(
                    h.power_mw
                        .iter()
                        .map(|&mw| (None, Sizing::Power(mw), "power_mw")),
                );
            for (n, sizing, field) in sized {
                let n = match (n, sizing) {
                    (Some(n), _) => Some(n),
                    (None, Sizing::Power(mw)) => {
                        if let Err(e) = positive_up_to(&key(&at, "power_mw"), mw, MAX_POWER_MW) {
                            p.push(e);
                            continue;
                        }
                        let Ok(settings) = economics.resolve(&at) else {
                            continue;
                        };
                        let (chip, system) = match catalog.resolve(&h.id) {
                            Ok(x) => x,
                            Err(e) => {
                                p.push(Problem::new(key(&at, "id"), e.to_string()));
                                continue;
                            }
                        };
                        let fit = crate::capacity::chips_for_power(
                            &chip,
                            &system,
                            &settings.facility,
                            crate::units::Watts::new(mw * 1e6),
                        );
                        if fit.chips == 0 {
                            p.push(Problem::new(
                                key(&at, "power_mw"),
                                format!("{mw} MW does not power one {} system", system.id),
                            ));
                            continue;
                        }
                        i64::try_from(fit.chips).ok()
                    }
                    (None, _) => None,
                };
                let request = ClusterRequest {
                    hardware: h.id.clone(),
                    chips: n,
                    scale_out_gbit_per_chip: h.scale_out_gbit_per_chip,
                    domain_chips: h.domain_chips,
                };
                match request.resolve(&at, catalog) {
                    Ok(cluster) => cases.push(Case {
                        id: h.id.clone(),
                        hardware: match sizing {
                            Sizing::Exact => h.id.clone(),
                            Sizing::UpTo => format!("{} (up to {})", h.id, cluster.chips),
                            Sizing::Power(mw) => {
                                format!("{} ({mw} MW holds {})", h.id, cluster.chips)
                            }
                        },
                        cluster,
                        key: at.clone(),
                        economics: economics.clone(),
                        sizing,
                    }),
                    Err(e) => p.extend(e.into_iter().map(|x| {
                        Problem::new(
                            x.key
                                .replace(".hardware", ".id")
                                .replace(".chips", &format!(".{field}")),
                            x.reason,
                        )
                    })),
                }
            }
        }
        let layout = f
            .layout
            .unwrap_or_default()
            .resolve("layout")
            .map_err(|e| p.extend(e))
            .ok();
        let budget = f.budget.map(|b| {
            for (k, v, max) in [
                ("budget.usd", b.usd, MAX_BUDGET_USD),
                ("budget.years", b.years, MAX_YEARS),
            ] {
                if let Err(e) = positive_up_to(k, v, max) {
                    p.push(e);
                }
            }
            Budget {
                usd: Usd::new(b.usd),
                years: b.years,
            }
        });
        if let Some(b) = &f.baseline {
            if !f.hardware.iter().any(|h| &h.id == b) {
                p.push(Problem::new(
                    "baseline",
                    format!(
                        "`{b}` is not one of the [[hardware]] ids ({})",
                        f.hardware
                            .iter()
                            .map(|h| h.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        p.dedup();
        match (model, setup, layout) {
            (Some(model), Some(setup), Some(layout)) if p.is_empty() => Ok(Self {
                name: f.name,
                description: f.description,
                model,
                setup,
                cases,
                layout,
                budget,
                baseline: f.baseline,
            }),
            _ => Err(Error::Invalid {
                file: file.into(),
                problems: p,
            }),
        }
    }

    /// Evaluate every case (in parallel, results in file order), with `over`'s energy and cost
    /// settings taking precedence over the file's. A case that cannot run (invalid layout, no
    /// layout fits, a format the chip lacks) gives its reason instead of an estimate.
    #[must_use]
    pub fn run(
        &self,
        calibration: &Calibration,
        over: &EconomicsRequest,
    ) -> Vec<(Case, CaseOutcome)> {
        self.cases
            .par_iter()
            .map(|case| {
                let job = Job::new(self.model.clone(), self.setup.clone(), case.cluster.clone());
                let economics = case
                    .economics
                    .overridden_by(over)
                    .resolve(&case.key)
                    .map_err(|problems| Error::Input { problems });
                let r = economics.and_then(|e| {
                    let answer = match case.sizing {
                        Sizing::Exact => run(&job, &self.layout, calibration)?,
                        Sizing::UpTo | Sizing::Power(_) => {
                            let (LayoutChoice::Fixed(pinned) | LayoutChoice::Search(pinned)) =
                                self.layout;
                            let c = &case.cluster;
                            let (found, _) = crate::capacity::best_chip_count(
                                c,
                                c.chips,
                                &self.model,
                                &self.setup,
                                &pinned,
                                calibration,
                                crate::capacity::Goal {
                                    objective: crate::economics::Objective::Time,
                                    settings: &e,
                                },
                            )?;
                            Answer::from(found)
                        }
                    };
                    Ok((answer, e))
                });
                (case.clone(), r)
            })
            .collect()
    }
}
