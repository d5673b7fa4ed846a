//! Measured training runs: the file format `xpusim calibrate` reads, and the comparison of
//! predictions with measurements.

use crate::calibration::Calibration;
use crate::error::{parse_toml, positive, positive_u32, read_file, Error, Problem, Result};
use crate::hardware::{Catalog, Cluster, Precision};
use crate::parallelism::{Layout, Recompute};
use crate::perf::{evaluate, Evaluation, Machine, Shape};
use crate::units::{BytesPerSecond, Seconds};
use crate::workload::{
    preset, validate_models, AttentionKernel, MainGrads, Model, ModelFile, TrainingSetup,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsFile {
    schema_version: u32,
    #[serde(default)]
    models: Vec<ModelFile>,
    runs: Vec<RunFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    id: String,
    citation: String,
    locator: String,
    verif: String,
    model: String,
    hardware: String,
    chips: i64,
    scale_out_gbit_per_chip: Option<f64>,
    domain_chips: Option<i64>,
    tp: i64,
    pp: i64,
    dp: i64,
    #[serde(default = "one")]
    cp: i64,
    #[serde(default = "one")]
    ep: i64,
    microbatch: i64,
    #[serde(default = "one")]
    virtual_stages: i64,
    recompute: Recompute,
    #[serde(default)]
    sequence_parallel: bool,
    zero: i64,
    zero_group: Option<i64>,
    global_batch: i64,
    seq_len: i64,
    precision: Precision,
    #[serde(default = "flash")]
    attention: AttentionKernel,
    #[serde(default = "yes")]
    tp_comm_overlap: bool,
    #[serde(default = "yes")]
    dp_comm_overlap: bool,
    #[serde(default = "yes")]
    hierarchical_collectives: bool,
    main_grads: Option<MainGrads>,
    #[serde(default)]
    assumptions: Vec<String>,
    measured: MeasuredFile,
}

fn one() -> i64 {
    1
}
fn flash() -> AttentionKernel {
    AttentionKernel::Flash
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasuredFile {
    step_time_s: Option<f64>,
    tokens_per_s: Option<f64>,
    tflops_per_chip: Option<f64>,
    flops_convention: Option<FlopsConvention>,
}

/// How a published TFLOP/s-per-chip figure counts FLOPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlopsConvention {
    /// Narayanan et al. 2021 eq. 3: `96·B·s·l·h²·(1 + s/6h + V/16lh)` (recompute included).
    #[serde(rename = "megatron-2021")]
    Megatron2021,
    /// Model FLOPs without recompute, attention included.
    Model,
    /// Model FLOPs plus recompute.
    Hardware,
    /// `6 · N · tokens`.
    #[serde(rename = "6nd")]
    SixNd,
}

impl FlopsConvention {
    /// The kebab-case name used in files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Megatron2021 => "megatron-2021",
            Self::Model => "model",
            Self::Hardware => "hardware",
            Self::SixNd => "6nd",
        }
    }
}

/// One measured run, validated and ready to predict.
#[derive(Clone, Debug)]
pub struct Run {
    /// Run id of the compilation.
    pub id: String,
    /// Paper or repository.
    pub citation: String,
    /// Table and row.
    pub locator: String,
    /// Verification code (P or D).
    pub verif: String,
    /// The file it came from.
    pub file: String,
    /// The model.
    pub model: Model,
    /// The cluster.
    pub cluster: Cluster,
    /// The layout.
    pub layout: Layout,
    /// The setup.
    pub setup: TrainingSetup,
    /// Values not in the source.
    pub assumptions: Vec<String>,
    /// The measured step time (converted from the published quantity).
    pub measured_step: Seconds,
    /// The published quantity, as text.
    pub published: String,
    /// Precomputed evaluation (θ-independent).
    pub evaluation: Evaluation,
}

/// Read runs from files (all problems of a file reported together).
///
/// # Errors
/// I/O, parse and validation errors naming the file and key.
pub fn load_runs(paths: &[impl AsRef<Path>], catalog: &Catalog) -> Result<Vec<Run>> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        out.extend(parse_runs(
            &p.display().to_string(),
            &read_file(p)?,
            catalog,
        )?);
    }
    if out.is_empty() {
        return Err(Error::input("runs", "no runs given"));
    }
    Ok(out)
}

/// Parse runs from TOML text.
///
/// # Errors
/// Parse and validation errors naming `file` and the key.
pub fn parse_runs(file: &str, text: &str, catalog: &Catalog) -> Result<Vec<Run>> {
    let f: RunsFile = parse_toml(file, text)?;
    let mut problems = Vec::new();
    if f.schema_version != 1 {
        problems.push(Problem::new("schema_version", "expected 1"));
    }
    let local = validate_models(file, f.models)?;
    let mut runs = Vec::new();
    for r in f.runs {
        let at = format!("runs[{}]", r.id);
        let model = match local.iter().find(|m| m.id == r.model) {
            Some(m) => m.clone(),
            None => match preset(&r.model) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(Problem::new(format!("{at}.model"), e.to_string()));
                    continue;
                }
            },
        };
        let chips = positive(&mut problems, &at, "chips", r.chips);
        let layout = Layout {
            tp: positive_u32(&mut problems, &at, "tp", r.tp),
            pp: positive_u32(&mut problems, &at, "pp", r.pp),
            dp: positive_u32(&mut problems, &at, "dp", r.dp),
            cp: positive_u32(&mut problems, &at, "cp", r.cp),
            ep: positive_u32(&mut problems, &at, "ep", r.ep),
            microbatch: positive_u32(&mut problems, &at, "microbatch", r.microbatch),
            virtual_stages: positive_u32(&mut problems, &at, "virtual_stages", r.virtual_stages),
            recompute: r.recompute,
            sequence_parallel: r.sequence_parallel,
            zero: if (0..=3).contains(&r.zero) {
                r.zero as u8
            } else {
                problems.push(Problem::new(format!("{at}.zero"), "must be 0..3"));
                0
            },
            zero_group: match r.zero_group {
                Some(g) => positive_u32(&mut problems, &at, "zero_group", g),
                None => 0,
            },
        };
        let gbs = positive(&mut problems, &at, "global_batch", r.global_batch);
        let seq = positive(&mut problems, &at, "seq_len", r.seq_len);
        let mut cluster = match catalog.cluster(&r.hardware, chips) {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem::new(format!("{at}.hardware"), e.to_string()));
                continue;
            }
        };
        if let Some(g) = r.scale_out_gbit_per_chip {
            match cluster
                .clone()
                .with_scale_out(BytesPerSecond::from_gbit_per_s(g))
            {
                Ok(c) => cluster = c,
                Err(e) => problems.push(Problem::new(
                    format!("{at}.scale_out_gbit_per_chip"),
                    e.to_string(),
                )),
            }
        }
        if let Some(d) = r.domain_chips {
            let d = positive(&mut problems, &at, "domain_chips", d);
            match cluster.clone().with_domain_chips(d) {
                Ok(c) => cluster = c,
                Err(e) => problems.push(Problem::new(format!("{at}.domain_chips"), e.to_string())),
            }
        }
        let mut setup = match TrainingSetup::new(gbs, seq, 1e12, r.precision) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem::new(&at, e.to_string()));
                continue;
            }
        };
        setup.attention = r.attention;
        setup.tp_comm_overlap = r.tp_comm_overlap;
        setup.dp_comm_overlap = r.dp_comm_overlap;
        setup.hierarchical_collectives = r.hierarchical_collectives;
        if let Some(g) = r.main_grads {
            setup.main_grads = g;
        }
        if let Err(e) = layout.validate(&model, &cluster, &setup, false) {
            problems.push(Problem::new(format!("{at}.layout"), e.to_string()));
            continue;
        }
        let machine = match Machine::new(&cluster, r.precision) {
            Ok(m) => m,
            Err(e) => {
                problems.push(Problem::new(format!("{at}.precision"), e.to_string()));
                continue;
            }
        };
        let shape = Shape::new(&model, &setup, &layout);
        let evaluation = evaluate(&shape, &machine);
        let m = &r.measured;
        let given = [
            m.step_time_s.is_some(),
            m.tokens_per_s.is_some(),
            m.tflops_per_chip.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            problems.push(Problem::new(
                format!("{at}.measured"),
                "give exactly one of step_time_s, tokens_per_s, tflops_per_chip",
            ));
            continue;
        }
        let (step, published) = if let Some(t) = m.step_time_s {
            (t, format!("{t} s/step"))
        } else if let Some(tps) = m.tokens_per_s {
            (setup.tokens_per_step() / tps, format!("{tps} tokens/s"))
        } else {
            let x = m.tflops_per_chip.unwrap_or(f64::NAN);
            let Some(conv) = m.flops_convention else {
                problems.push(Problem::new(
                    format!("{at}.measured.flops_convention"),
                    "needed with tflops_per_chip",
                ));
                continue;
            };
            let flops = match conv {
                FlopsConvention::Megatron2021 => {
                    let (b, s, l, h, v) = (
                        gbs as f64,
                        seq as f64,
                        model.layers as f64,
                        model.d_model as f64,
                        model.vocab as f64,
                    );
                    96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h))
                }
                FlopsConvention::Model => evaluation.model_flops.flops(),
                FlopsConvention::Hardware => evaluation.hardware_flops.flops(),
                FlopsConvention::SixNd => 6.0 * model.active_params() * setup.tokens_per_step(),
            };
            (
                flops / (chips as f64 * x * 1e12),
                format!("{x} TFLOP/s/chip ({})", conv.as_str()),
            )
        };
        if !(step.is_finite() && step > 0.0) {
            problems.push(Problem::new(
                format!("{at}.measured"),
                "measured value must be positive and finite",
            ));
            continue;
        }
        runs.push(Run {
            id: r.id,
            citation: r.citation,
            locator: r.locator,
            verif: r.verif,
            file: file.to_string(),
            model,
            cluster,
            layout,
            setup,
            assumptions: r.assumptions,
            measured_step: Seconds::new(step),
            published,
            evaluation,
        });
    }
    if problems.is_empty() {
        Ok(runs)
    } else {
        Err(Error::Invalid {
            file: file.to_string(),
            problems,
        })
    }
}

/// One line of the validation table.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Run id.
    pub id: String,
    /// Chip id.
    pub chip: String,
    /// Chips.
    pub chips: u64,
    /// Measured step time, seconds.
    pub measured_s: f64,
    /// Predicted step time, seconds.
    pub predicted_s: f64,
    /// (predicted - measured) / measured.
    pub error: f64,
    /// Calibration group used.
    pub group: String,
}

/// Predict every run with `calibration` and compare.
#[must_use]
pub fn compare(runs: &[Run], calibration: &Calibration) -> Vec<Comparison> {
    runs.iter()
        .map(|r| {
            let (group, eff) = calibration.for_chip(&r.cluster.chip);
            let p = r.evaluation.predict(&eff);
            Comparison {
                id: r.id.clone(),
                chip: r.cluster.chip.id.clone(),
                chips: r.cluster.chips,
                measured_s: r.measured_step.seconds(),
                predicted_s: p.step_time.seconds(),
                error: p.step_time / r.measured_step - 1.0,
                group,
            }
        })
        .collect()
}

/// Leave-one-study-out cross-validation: for each source file, fit the calibration on every
/// other file and predict the held-out runs. This is the error to expect on runs the
/// calibration has not seen (a new paper, a new software stack, or a chip family without data,
/// which then falls back to its family's or the global fit).
///
/// # Errors
/// [`Error::Fit`] when a fit fails.
pub fn cross_validate(runs: &[Run]) -> Result<Vec<Comparison>> {
    let mut studies: Vec<&str> = Vec::new();
    for r in runs {
        if !studies.contains(&r.file.as_str()) {
            studies.push(&r.file);
        }
    }
    let mut out = vec![None; runs.len()];
    for study in studies {
        let train: Vec<Run> = runs.iter().filter(|r| r.file != study).cloned().collect();
        let cal = if train.is_empty() {
            Calibration::prior()
        } else {
            crate::calibration::fit(&train, "cross-validation")?
        };
        let (idx, held): (Vec<usize>, Vec<Run>) = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.file == study)
            .map(|(i, r)| (i, r.clone()))
            .unzip();
        for (i, c) in idx.into_iter().zip(compare(&held, &cal)) {
            out[i] = Some(c);
        }
    }
    Ok(out.into_iter().flatten().collect())
}
