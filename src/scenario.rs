//! Scenario files: what-if questions as TOML, read raw and then validated (two stages).
//!
//! ```toml
//! schema_version = 1
//! name = "GPT-3 175B on 1,024 A100s"
//! description = "..."
//!
//! [model]                 # a preset ...
//! preset = "gpt3-175b"
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
//! ...
//! ```

use crate::calibration::Calibration;
use crate::energy::Facility;
use crate::error::{parse_toml, Error, Problem, Result};
use crate::hardware::{Catalog, Cluster, Precision};
use crate::parallelism::{Layout, Recompute};
use crate::perf::{estimate_with, Estimate};
use crate::sweep::{best_layout, SearchSpace};
use crate::units::BytesPerSecond;
use crate::units::UsdPerChipHour;
use crate::workload::{
    preset, validate_models, AttentionKernel, MainGrads, Model, ModelFile, OptimizerStates,
    TrainingSetup,
};
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    schema_version: u32,
    name: String,
    #[serde(default)]
    description: String,
    model: ModelSpec,
    training: TrainingFile,
    hardware: Vec<HardwareFile>,
    layout: Option<LayoutFile>,
    facility: Option<FacilityFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FacilityFile {
    pue: f64,
    grid_kg_co2_per_kwh: f64,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ModelSpec {
    Preset { preset: String },
    Inline(Box<ModelFile>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingFile {
    global_batch: Option<i64>,
    global_batch_tokens: Option<i64>,
    seq_len: Option<i64>,
    tokens: f64,
    precision: Precision,
    attention: Option<AttentionKernel>,
    tp_comm_overlap: Option<bool>,
    dp_comm_overlap: Option<bool>,
    hierarchical_collectives: Option<bool>,
    optimizer_states: Option<OptimizerStates>,
    main_grads: Option<MainGrads>,
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

/// A layout as written in a scenario (sizes as signed integers so negatives get a clear message).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutFile {
    tp: Option<i64>,
    pp: Option<i64>,
    dp: Option<i64>,
    cp: Option<i64>,
    ep: Option<i64>,
    microbatch: Option<i64>,
    virtual_stages: Option<i64>,
    recompute: Option<Recompute>,
    sequence_parallel: Option<bool>,
    zero: Option<i64>,
    zero_group: Option<i64>,
    allow_tp_scale_out: Option<bool>,
}

/// One cluster to evaluate.
#[derive(Clone, Debug)]
pub struct Case {
    /// The cluster.
    pub cluster: Cluster,
    /// The requested hardware id.
    pub hardware: String,
    /// A price given in the scenario (else the catalog's latest on-demand price is used).
    pub price: Option<UsdPerChipHour>,
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
    /// A fixed layout, or `None` to search.
    pub layout: Option<LayoutRequest>,
    /// The facility for energy and carbon (`[facility]`, else [`Facility::default`]).
    pub facility: Facility,
}

/// A layout given by the user: sizes not given are derived (dp from the chip count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutRequest {
    /// Tensor parallel.
    pub tp: u32,
    /// Pipeline parallel.
    pub pp: u32,
    /// Data parallel; `None` = chips / (tp · pp · cp).
    pub dp: Option<u32>,
    /// Context parallel.
    pub cp: u32,
    /// Expert parallel.
    pub ep: u32,
    /// Micro-batch.
    pub microbatch: u32,
    /// Interleaved stages.
    pub virtual_stages: u32,
    /// Recompute.
    pub recompute: Recompute,
    /// Sequence parallelism; `None` = on when tp > 1.
    pub sequence_parallel: Option<bool>,
    /// ZeRO stage.
    pub zero: u8,
    /// Ranks sharding the ZeRO state (0: all data-parallel ranks).
    pub zero_group: u32,
    /// Let TP span scale-up domains.
    pub allow_tp_scale_out: bool,
}

impl Default for LayoutRequest {
    fn default() -> Self {
        Self {
            tp: 1,
            pp: 1,
            dp: None,
            cp: 1,
            ep: 1,
            microbatch: 1,
            virtual_stages: 1,
            recompute: Recompute::Selective,
            sequence_parallel: None,
            zero: 1,
            zero_group: 0,
            allow_tp_scale_out: false,
        }
    }
}

impl LayoutRequest {
    /// The concrete layout for `chips` chips.
    ///
    /// # Errors
    /// [`Error::Input`] when tp · pp · cp does not divide the chips.
    pub fn resolve(&self, chips: u64) -> Result<Layout> {
        for (name, v) in [
            ("tp", self.tp),
            ("pp", self.pp),
            ("cp", self.cp),
            ("ep", self.ep),
            ("microbatch", self.microbatch),
            ("virtual_stages", self.virtual_stages),
        ] {
            if v == 0 {
                return Err(Error::input(format!("layout.{name}"), "must be at least 1"));
            }
        }
        let inner = self.tp as u64 * self.pp as u64 * self.cp as u64;
        let dp = match self.dp {
            Some(d) => d,
            None => {
                if inner == 0 || chips % inner != 0 {
                    return Err(Error::input(
                        "layout",
                        format!("tp x pp x cp = {inner} does not divide {chips} chips"),
                    ));
                }
                u32::try_from(chips / inner).map_err(|_| Error::input("layout.dp", "too large"))?
            }
        };
        Ok(Layout {
            tp: self.tp,
            pp: self.pp,
            dp,
            cp: self.cp,
            ep: self.ep,
            microbatch: self.microbatch,
            virtual_stages: self.virtual_stages,
            recompute: self.recompute,
            sequence_parallel: self.sequence_parallel.unwrap_or(self.tp > 1),
            zero: self.zero,
            zero_group: self.zero_group,
        })
    }
}

fn size(p: &mut Vec<Problem>, key: &str, v: Option<i64>, default: u32) -> u32 {
    match v {
        None => default,
        Some(x) if x >= 1 && x <= u32::MAX as i64 => x as u32,
        Some(x) => {
            p.push(Problem::new(
                key,
                format!("must be a whole number >= 1, got {x}"),
            ));
            default
        }
    }
}

impl LayoutFile {
    fn resolve(self, p: &mut Vec<Problem>) -> LayoutRequest {
        let d = LayoutRequest::default();
        let zero = match self.zero {
            None => d.zero,
            Some(z @ 0..=3) => z as u8,
            Some(z) => {
                p.push(Problem::new(
                    "layout.zero",
                    format!("must be 0, 1, 2 or 3, got {z}"),
                ));
                d.zero
            }
        };
        LayoutRequest {
            tp: size(p, "layout.tp", self.tp, 1),
            pp: size(p, "layout.pp", self.pp, 1),
            dp: self.dp.map(|x| size(p, "layout.dp", Some(x), 1)),
            cp: size(p, "layout.cp", self.cp, 1),
            ep: size(p, "layout.ep", self.ep, 1),
            microbatch: size(p, "layout.microbatch", self.microbatch, 1),
            virtual_stages: size(p, "layout.virtual_stages", self.virtual_stages, 1),
            recompute: self.recompute.unwrap_or(d.recompute),
            sequence_parallel: self.sequence_parallel,
            zero,
            zero_group: self
                .zero_group
                .map_or(0, |g| size(p, "layout.zero_group", Some(g), 1)),
            allow_tp_scale_out: self.allow_tp_scale_out.unwrap_or(false),
        }
    }
}

impl Scenario {
    /// Parse and validate a scenario file; every problem is reported with its key.
    ///
    /// # Errors
    /// Parse errors, unknown ids, non-positive sizes, zero chips.
    pub fn parse(file: &str, text: &str, catalog: &Catalog) -> Result<Self> {
        let f: ScenarioFile = parse_toml(file, text)?;
        let mut p = Vec::new();
        if f.schema_version != 1 {
            p.push(Problem::new(
                "schema_version",
                format!("unsupported version {}, expected 1", f.schema_version),
            ));
        }
        let model =
            match f.model {
                ModelSpec::Preset { preset: id } => match preset(&id) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        p.push(Problem::new("model.preset", e.to_string()));
                        None
                    }
                },
                ModelSpec::Inline(m) => match validate_models(file, vec![*m]) {
                    Ok(mut v) => v.pop(),
                    Err(Error::Invalid { problems, .. }) => {
                        p.extend(problems.into_iter().map(|x| {
                            Problem::new(x.key.replacen("models[", "model[", 1), x.reason)
                        }));
                        None
                    }
                    Err(e) => return Err(e),
                },
            };
        let t = &f.training;
        match (t.global_batch, t.global_batch_tokens) {
            (Some(g), None) if g < 1 => p.push(Problem::new(
                "training.global_batch",
                format!("must be at least 1 sequence, got {g}"),
            )),
            (None, Some(g)) if g < 1 => p.push(Problem::new(
                "training.global_batch_tokens",
                format!("must be at least 1 token, got {g}"),
            )),
            (Some(_), None) | (None, Some(_)) => {}
            _ => p.push(Problem::new(
                "training",
                "give exactly one of global_batch (sequences) or global_batch_tokens",
            )),
        }
        if let Some(s) = t.seq_len {
            if s < 1 {
                p.push(Problem::new(
                    "training.seq_len",
                    format!("must be at least 1 token, got {s}"),
                ));
            }
        }
        if !(t.tokens.is_finite() && t.tokens > 0.0) {
            p.push(Problem::new(
                "training.tokens",
                format!("must be a positive number of tokens, got {}", t.tokens),
            ));
        }
        if f.hardware.is_empty() {
            p.push(Problem::new(
                "hardware",
                "list at least one [[hardware]] entry",
            ));
        }
        let mut cases = Vec::new();
        for (i, h) in f.hardware.iter().enumerate() {
            let at = format!("hardware[{i}]");
            if h.chips.is_empty() {
                p.push(Problem::new(
                    format!("{at}.chips"),
                    "list at least one chip count",
                ));
            }
            for &n in &h.chips {
                if n < 1 {
                    p.push(Problem::new(
                        format!("{at}.chips"),
                        format!("a cluster needs at least 1 chip, got {n}"),
                    ));
                    continue;
                }
                let mut c = match catalog.cluster(&h.id, n as u64) {
                    Ok(c) => c,
                    Err(e) => {
                        p.push(Problem::new(format!("{at}.id"), e.to_string()));
                        break;
                    }
                };
                if let Some(g) = h.scale_out_gbit_per_chip {
                    match c.clone().with_scale_out(BytesPerSecond::from_gbit_per_s(g)) {
                        Ok(x) => c = x,
                        Err(e) => p.push(Problem::new(
                            format!("{at}.scale_out_gbit_per_chip"),
                            e.to_string(),
                        )),
                    }
                }
                if let Some(dc) = h.domain_chips {
                    if dc < 1 {
                        p.push(Problem::new(
                            format!("{at}.domain_chips"),
                            "must be at least 1",
                        ));
                    } else {
                        match c.clone().with_domain_chips(dc as u64) {
                            Ok(x) => c = x,
                            Err(e) => {
                                p.push(Problem::new(format!("{at}.domain_chips"), e.to_string()))
                            }
                        }
                    }
                }
                cases.push(Case {
                    cluster: c,
                    hardware: h.id.clone(),
                    price: h.price_usd_per_chip_hour.map(UsdPerChipHour::new),
                });
            }
        }
        for (i, h) in f.hardware.iter().enumerate() {
            if let Some(x) = h.price_usd_per_chip_hour {
                if !(x.is_finite() && x >= 0.0) {
                    p.push(Problem::new(
                        format!("hardware[{i}].price_usd_per_chip_hour"),
                        format!("must be a non-negative number, got {x}"),
                    ));
                }
            }
        }
        let facility = match &f.facility {
            None => Facility::default(),
            Some(x) => Facility::new(x.pue, x.grid_kg_co2_per_kwh).unwrap_or_else(|e| {
                p.push(Problem::new("facility", e.to_string()));
                Facility::default()
            }),
        };
        let layout = f.layout.map(|l| l.resolve(&mut p));
        let Some(model) = model else {
            return Err(Error::Invalid {
                file: file.into(),
                problems: p,
            });
        };
        if !p.is_empty() {
            return Err(Error::Invalid {
                file: file.into(),
                problems: p,
            });
        }
        let seq = t.seq_len.map_or(model.seq_len, |s| s as u64);
        let invalid = |e: Error| Error::Invalid {
            file: file.into(),
            problems: vec![Problem::new("training", e.to_string())],
        };
        let batch = match (t.global_batch, t.global_batch_tokens) {
            (Some(g), _) => g as u64,
            (None, Some(tok)) => {
                TrainingSetup::sequences_for_tokens(tok as u64, seq).map_err(invalid)?
            }
            (None, None) => 0,
        };
        let mut setup = TrainingSetup::new(batch, seq, t.tokens, t.precision).map_err(invalid)?;
        if let Some(o) = t.optimizer_states {
            setup.optimizer_states = o;
        }
        if let Some(g) = t.main_grads {
            setup.main_grads = g;
        }
        if let Some(a) = t.attention {
            setup.attention = a;
        }
        if let Some(x) = t.tp_comm_overlap {
            setup.tp_comm_overlap = x;
        }
        if let Some(x) = t.dp_comm_overlap {
            setup.dp_comm_overlap = x;
        }
        if let Some(x) = t.hierarchical_collectives {
            setup.hierarchical_collectives = x;
        }
        Ok(Self {
            name: f.name,
            description: f.description,
            model,
            setup,
            cases,
            layout,
            facility,
        })
    }

    /// Evaluate every case (in parallel, results in file order). A case that cannot run (invalid
    /// layout, no layout fits, a format the chip lacks) gives its reason instead of an estimate.
    #[must_use]
    pub fn run(
        &self,
        calibration: &Calibration,
    ) -> Vec<(Case, std::result::Result<Estimate, String>)> {
        self.cases
            .par_iter()
            .map(|case| {
                let r = evaluate_case(
                    &self.model,
                    &self.setup,
                    &case.cluster,
                    self.layout.as_ref(),
                    calibration,
                );
                (case.clone(), r.map_err(|e| e.to_string()))
            })
            .collect()
    }
}

/// Estimate one cluster with a fixed layout request or, without one, the best layout found.
///
/// # Errors
/// Invalid layouts, formats the chip lacks, or no layout fitting memory.
pub fn evaluate_case(
    model: &Model,
    setup: &TrainingSetup,
    cluster: &Cluster,
    layout: Option<&LayoutRequest>,
    calibration: &Calibration,
) -> Result<Estimate> {
    match layout {
        Some(req) => {
            let l = req.resolve(cluster.chips)?;
            estimate_with(
                model,
                &l,
                cluster,
                setup,
                calibration,
                req.allow_tp_scale_out,
            )
        }
        None => {
            let (l, _, _) =
                best_layout(model, cluster, setup, calibration, &SearchSpace::default())?;
            estimate_with(model, &l, cluster, setup, calibration, false)
        }
    }
}
