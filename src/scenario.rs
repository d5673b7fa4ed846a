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
//! moe_dispatcher = "all-to-all" # MoE only: all-to-all | all-gather | hierarchical (DeepEP-style)
//! expert_tensor_parallel = true # MoE only: experts split over TP ranks (false: whole, ETP 1)
//! ep_comm_overlap = false # MoE only: EP dispatch/combine hidden behind another micro-batch
//! fp8_param_gather = false # FP8/FP4: weights kept and all-gathered in FP8
//! optimizer_states = "fp32" # or "bf16" moments
//! main_grads = "bf16"     # or "fp32" gradient accumulation
//! # moe_load_imbalance = 1.5 # MoE: most loaded expert's tokens over the mean (default 1)
//! pipeline_split = "even" # or "one-fewer-at-ends" (embedding and loss count as a layer each)
//! low_precision_activations = true # FP8/FP4: GEMM inputs kept in that format (Transformer Engine)
//!
//! [[hardware]]            # one or more clusters to compare
//! id = "a100-80gb"        # chip or system id
//! chips = [1024]          # one or more chip counts (a sweep)
//! # chips_range = { from = 8, to = 65536, step = 8 }   # or factor = 2: a sweep built as it runs
//! # max_chips = [1000000] # the best whole-system count up to each; power_mw = [..] by facility
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
//! # recompute = "full"    # with:
//! # recompute_layers = 4  # a block of 4 fully recomputed layers per chunk
//! # recompute_modules = ["layernorm", "moe-act"]  # modules recomputed beyond the policy
//! # search_rest = true    # pin the knobs given and search the others
//! ...
//! ```

use crate::calibration::Calibration;
use crate::economics::Settings;
use crate::error::{parse_toml, Error, Problem, Result};
use crate::hardware::{Catalog, Cluster};
use crate::plan::{run, Answer, Job};
use crate::request::{
    key, positive_up_to, ClusterRequest, ClusterTemplate, EconomicsRequest, LayoutChoice,
    LayoutRequest, SetupRequest, MAX_BUDGET_USD, MAX_CHIPS, MAX_POWER_MW, MAX_YEARS,
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
    chips_range: Option<RangeFile>,
    scale_out_gbit_per_chip: Option<f64>,
    domain_chips: Option<i64>,
    price_usd_per_chip_hour: Option<f64>,
}

/// A sweep of chip counts (`chips_range = { from = 8, to = 1024, step = 8 }`, or `factor = 2`
/// for a geometric one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeFile {
    from: i64,
    to: i64,
    step: Option<i64>,
    factor: Option<i64>,
}

/// The most cases one scenario file may expand to (its chip counts are kept, 16 bytes a case;
/// cases are built as they run).
pub const MAX_CASES: usize = 1 << 24;

impl RangeFile {
    /// The counts, or why not.
    fn counts(&self) -> std::result::Result<Vec<u64>, String> {
        let (Ok(from), Ok(to)) = (u64::try_from(self.from), u64::try_from(self.to)) else {
            return Err(format!(
                "from {} and to {} must be at least 1",
                self.from, self.to
            ));
        };
        if from == 0 || to < from || to > crate::request::MAX_CHIPS {
            return Err(format!(
                "must run from at least 1 up to at most {} chips, got {from} to {to}",
                crate::request::MAX_CHIPS
            ));
        }
        // (added, multiplied): one of the two moves each count to the next.
        let (add, mul) = match (self.step, self.factor) {
            (Some(s), None) if s >= 1 => (s as u64, 1),
            (None, Some(f)) if f >= 2 => (0, f as u64),
            (Some(_), Some(_)) => return Err("give step or factor, not both".into()),
            (None, None) => return Err("give step (arithmetic) or factor (geometric)".into()),
            (Some(s), None) => return Err(format!("step must be at least 1, got {s}")),
            (None, Some(f)) => return Err(format!("factor must be at least 2, got {f}")),
        };
        let mut v = Vec::new();
        let mut n = Some(from);
        while let Some(x) = n.filter(|x| *x <= to) {
            if v.len() == MAX_CASES {
                return Err(format!("expands to more than {MAX_CASES} cases"));
            }
            v.push(x);
            n = x.checked_mul(mul).and_then(|x| x.checked_add(add));
        }
        Ok(v)
    }
}

/// One `[[hardware]]` entry: its hardware resolved once, and its chip counts.
#[derive(Clone, Debug)]
struct Entry {
    id: String,
    key: String,
    template: ClusterTemplate,
    economics: EconomicsRequest,
    counts: Vec<(u64, Sizing)>,
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
    /// The `[[hardware]]` entries; [`Scenario::case`] builds their cases.
    entries: Vec<Entry>,
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
    /// assert_eq!(s.len(), 5);
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
        let mut entries = Vec::new();
        let mut total = 0usize;
        let mut check_problems = Vec::new();
        for (i, h) in f.hardware.iter().enumerate() {
            let at = format!("hardware[{i}]");
            let economics = EconomicsRequest {
                price_usd_per_chip_hour: h.price_usd_per_chip_hour,
                ..facility.clone()
            };
            let settings = economics
                .resolve(&at)
                .map_err(|e| {
                    p.extend(e.into_iter().map(|x| {
                        // The facility's keys live in [facility], the price in the entry.
                        let k = if x.key == format!("{at}.price_usd_per_chip_hour") {
                            x.key
                        } else {
                            x.key.replacen(&format!("{at}."), table, 1)
                        };
                        Problem::new(k, x.reason)
                    }));
                })
                .ok();
            if h.chips.is_empty()
                && h.max_chips.is_empty()
                && h.power_mw.is_empty()
                && h.chips_range.is_none()
            {
                p.push(Problem::new(
                    key(&at, "chips"),
                    "list at least one chip count (or chips_range, max_chips, or power_mw)",
                ));
            }
            let request = ClusterRequest {
                hardware: h.id.clone(),
                chips: None,
                scale_out_gbit_per_chip: h.scale_out_gbit_per_chip,
                domain_chips: h.domain_chips,
            };
            let template = match request.template(&at, catalog) {
                Ok(t) => t,
                Err(e) => {
                    p.extend(
                        e.into_iter()
                            .map(|x| Problem::new(x.key.replace(".hardware", ".id"), x.reason)),
                    );
                    continue;
                }
            };
            let mut counts = Vec::new();
            // Every listed count is checked as a cluster; a range's counts are in range by
            // construction, and its ends are checked.
            let mut check = |field: &str, n: i64| {
                let mut q = Vec::new();
                let checked = crate::request::count(&mut q, &at, field, Some(n), MAX_CHIPS)
                    .and_then(|n| template.with_chips(&at, n).map_err(|e| q.push(e)).ok());
                p.extend(q.into_iter().map(|x| {
                    Problem::new(
                        x.key.replace(&format!("{at}.chips"), &key(&at, field)),
                        x.reason,
                    )
                }));
                checked.map(|c| c.chips)
            };
            for &n in &h.chips {
                counts.extend(check("chips", n).map(|n| (n, Sizing::Exact)));
            }
            for &n in &h.max_chips {
                counts.extend(check("max_chips", n).map(|n| (n, Sizing::UpTo)));
            }
            for &mw in &h.power_mw {
                if let Err(e) = positive_up_to(&key(&at, "power_mw"), mw, MAX_POWER_MW) {
                    check_problems.push(e);
                    continue;
                }
                let Some(settings) = &settings else {
                    continue;
                };
                let fit = crate::capacity::chips_for_power(
                    template.chip(),
                    template.system(),
                    &settings.facility,
                    crate::units::Watts::new(mw * 1e6),
                );
                if fit.chips == 0 {
                    check_problems.push(Problem::new(
                        key(&at, "power_mw"),
                        format!("{mw} MW does not power one {} system", template.system().id),
                    ));
                    continue;
                }
                let n = i64::try_from(fit.chips).unwrap_or(i64::MAX);
                counts.extend(check("power_mw", n).map(|n| (n, Sizing::Power(mw))));
            }
            if let Some(r) = &h.chips_range {
                match r.counts() {
                    Ok(v) => {
                        let ends = [v.first(), v.last()];
                        if ends.iter().flatten().all(|&&n| {
                            check("chips_range", i64::try_from(n).unwrap_or(i64::MAX)).is_some()
                        }) {
                            counts.extend(v.into_iter().map(|n| (n, Sizing::Exact)));
                        }
                    }
                    Err(why) => check_problems.push(Problem::new(key(&at, "chips_range"), why)),
                }
            }
            p.append(&mut check_problems);
            total = total.saturating_add(counts.len());
            entries.push(Entry {
                id: h.id.clone(),
                key: at,
                template,
                economics,
                counts,
            });
        }
        if total > MAX_CASES {
            p.push(Problem::new(
                "hardware",
                format!(
                    "the entries expand to {total} cases, more than the {MAX_CASES} a file may"
                ),
            ));
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
                entries,
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

    /// How many cases the file expands to.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.iter().map(|e| e.counts.len()).sum()
    }

    /// Whether the file has no case (never true of a parsed scenario).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Case `i` (file order: entries in turn, each entry's `chips`, `max_chips`, `power_mw`
    /// and `chips_range` counts in that order), built when asked so that a sweep of millions
    /// of cases holds only their chip counts.
    ///
    /// # Errors
    /// [`Error::Input`] when `i` is out of range, or the count does not make a cluster with
    /// the entry's overrides (only a range's inner counts are not checked when parsing).
    pub fn case(&self, i: usize) -> Result<Case> {
        let Some((e, (n, sizing))) = self.locate(i) else {
            return Err(Error::input(
                "case",
                format!("case {i} is beyond the {} cases of the file", self.len()),
            ));
        };
        let cluster = e
            .template
            .with_chips(&e.key, n)
            .map_err(|p| Error::Input { problems: vec![p] })?;
        Ok(Case {
            id: e.id.clone(),
            hardware: match sizing {
                Sizing::Exact => e.id.clone(),
                Sizing::UpTo => format!("{} (up to {n})", e.id),
                Sizing::Power(mw) => format!("{} ({mw} MW holds {n})", e.id),
            },
            cluster,
            key: e.key.clone(),
            economics: e.economics.clone(),
            sizing,
        })
    }

    /// The hardware id and chip count of case `i`, without building it.
    #[must_use]
    pub fn case_label(&self, i: usize) -> Option<(&str, u64)> {
        self.locate(i).map(|(e, (n, _))| (e.id.as_str(), n))
    }

    /// The entry of case `i` and its count there.
    fn locate(&self, i: usize) -> Option<(&Entry, (u64, Sizing))> {
        let mut j = i;
        for e in &self.entries {
            if let Some(&c) = e.counts.get(j) {
                return Some((e, c));
            }
            j -= e.counts.len();
        }
        None
    }

    /// Evaluate one case, with `over`'s energy and cost settings taking precedence over the
    /// file's. A case that cannot run (invalid layout, no layout fits, a format the chip lacks)
    /// gives its reason instead of an estimate.
    fn evaluate(
        &self,
        case: &mut Case,
        calibration: &Calibration,
        over: &EconomicsRequest,
    ) -> CaseOutcome {
        let job = Job::new(self.model.clone(), self.setup.clone(), case.cluster.clone());
        let economics = case
            .economics
            .overridden_by(over)
            .resolve(&case.key)
            .map_err(|problems| Error::Input { problems })?;
        let answer = match case.sizing {
            Sizing::Exact => run(&job, &self.layout, calibration)?,
            Sizing::UpTo | Sizing::Power(_) => {
                let (LayoutChoice::Fixed(pinned) | LayoutChoice::Search(pinned)) = self.layout;
                let c = &case.cluster;
                let (found, choice) = crate::capacity::best_chip_count(
                    c,
                    c.chips,
                    &self.model,
                    &self.setup,
                    &pinned,
                    calibration,
                    crate::capacity::Goal {
                        objective: crate::economics::Objective::Time,
                        settings: &economics,
                    },
                )?;
                if let Some(fill) = choice.fill() {
                    // The label says when systems are partly filled (`trn3 (up to 1000000;
                    // 128 of 144 per system)`).
                    if let Some(open) = case.hardware.strip_suffix(')') {
                        case.hardware = format!("{open}; {fill})");
                    }
                }
                Answer::from(found)
            }
        };
        Ok((answer, economics))
    }

    /// Evaluate the cases whose index `keep` admits, in parallel, handing each to `sink` in
    /// file order as soon as it and every earlier one are done. Cases run in chunks, so memory
    /// stays flat in the number of cases; results are identical at any thread count. Each case
    /// comes with its outcome, or, when it cannot even be built, as its error. Stops at the
    /// first error `sink` returns.
    ///
    /// # Errors
    /// The first error of `sink`.
    pub fn for_each<E>(
        &self,
        calibration: &Calibration,
        over: &EconomicsRequest,
        keep: impl Fn(usize) -> bool + Sync,
        mut sink: impl FnMut(usize, Result<(Case, CaseOutcome)>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let chunk = 256 * rayon::current_num_threads().max(1);
        let picked: Vec<usize> = (0..self.len()).filter(|&i| keep(i)).collect();
        for part in picked.chunks(chunk) {
            let done: Vec<_> = part
                .par_iter()
                .map(|&i| {
                    let r = self.case(i).map(|mut c| {
                        let r = self.evaluate(&mut c, calibration, over);
                        (c, r)
                    });
                    (i, r)
                })
                .collect();
            for (i, r) in done {
                sink(i, r)?;
            }
        }
        Ok(())
    }

    /// Evaluate every case (in parallel, results in file order) and keep them all: fine for a
    /// comparison, not for a sweep of millions (use [`Scenario::for_each`]).
    #[must_use]
    pub fn run(
        &self,
        calibration: &Calibration,
        over: &EconomicsRequest,
    ) -> Vec<(usize, Result<(Case, CaseOutcome)>)> {
        let mut out = Vec::with_capacity(self.len());
        let done: std::result::Result<(), std::convert::Infallible> = self.for_each(
            calibration,
            over,
            |_| true,
            |i, r| {
                out.push((i, r));
                Ok(())
            },
        );
        let Ok(()) = done;
        out
    }
}
