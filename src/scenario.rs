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
//! [facility]              # optional: energy and carbon (default PUE 1.15, 0.39 kg CO2e/kWh)
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
use crate::error::{parse_toml, Error, Problem, Result};
use crate::hardware::{Catalog, Cluster};
use crate::plan::{run, Answer, Job};
use crate::request::{
    key, ClusterRequest, Economics, EconomicsRequest, LayoutChoice, LayoutRequest, SetupRequest,
};
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
    chips: Vec<i64>,
    scale_out_gbit_per_chip: Option<f64>,
    domain_chips: Option<i64>,
    price_usd_per_chip_hour: Option<f64>,
}

/// One cluster to evaluate.
#[derive(Clone, Debug)]
pub struct Case {
    /// The cluster.
    pub cluster: Cluster,
    /// The requested hardware id.
    pub hardware: String,
    /// Where it is in the file (`hardware[2]`).
    pub key: String,
    /// The energy and cost settings the file gives for it (`[facility]` and its price).
    pub economics: EconomicsRequest,
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
}

/// The outcome of one case: its estimate, or why it cannot run.
pub type CaseOutcome = std::result::Result<(Answer, Economics), Error>;

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
        let facility = f
            .facility
            .map_or_else(EconomicsRequest::default, |x| EconomicsRequest {
                pue: x.pue,
                grid_kg_co2_per_kwh: x.grid_kg_co2_per_kwh,
                price_usd_per_chip_hour: None,
            });
        let mut cases = Vec::new();
        for (i, h) in f.hardware.iter().enumerate() {
            let at = format!("hardware[{i}]");
            if h.chips.is_empty() {
                p.push(Problem::new(
                    key(&at, "chips"),
                    "list at least one chip count",
                ));
            }
            let economics = EconomicsRequest {
                price_usd_per_chip_hour: h.price_usd_per_chip_hour,
                ..facility.clone()
            };
            if let Err(e) = economics.resolve(&at) {
                p.extend(e.into_iter().map(|x| {
                    // The facility's keys live in [facility], the price in the hardware entry.
                    let k = x.key.replace(&format!("{at}.pue"), "facility.pue").replace(
                        &format!("{at}.grid_kg_co2_per_kwh"),
                        "facility.grid_kg_co2_per_kwh",
                    );
                    Problem::new(k, x.reason)
                }));
            }
            for &n in &h.chips {
                let request = ClusterRequest {
                    hardware: h.id.clone(),
                    chips: Some(n),
                    scale_out_gbit_per_chip: h.scale_out_gbit_per_chip,
                    domain_chips: h.domain_chips,
                };
                match request.resolve(&at, catalog) {
                    Ok(cluster) => cases.push(Case {
                        cluster,
                        hardware: h.id.clone(),
                        key: at.clone(),
                        economics: economics.clone(),
                    }),
                    Err(e) => p.extend(
                        e.into_iter()
                            .map(|x| Problem::new(x.key.replace(".hardware", ".id"), x.reason)),
                    ),
                }
            }
        }
        let layout = f
            .layout
            .unwrap_or_default()
            .resolve("layout")
            .map_err(|e| p.extend(e))
            .ok();
        p.dedup();
        match (model, setup, layout) {
            (Some(model), Some(setup), Some(layout)) if p.is_empty() => Ok(Self {
                name: f.name,
                description: f.description,
                model,
                setup,
                cases,
                layout,
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
                let r = economics.and_then(|e| Ok((run(&job, &self.layout, calibration)?, e)));
                (case.clone(), r)
            })
            .collect()
    }
}
