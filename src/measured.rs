//! Measured training runs: the file format `xpusim calibrate` and `xpusim validate` read,
//! resolved through the same requests as every other front end.

use crate::calibration::{Extent, Sample};
use crate::error::{parse_toml, read_file, Error, Problem, Result};
use crate::hardware::{Catalog, Cluster, Precision};
use crate::parallelism::{Layout, Recompute, RecomputeModule};
use crate::perf::{evaluate, Evaluation, Machine, Shape};
use crate::request::{key, ClusterRequest, LayoutChoice, LayoutRequest, SetupRequest};
use crate::units::Seconds;
use crate::workload::{
    preset, validate_models, AttentionKernel, MainGrads, Model, ModelFile, MoeDispatcher,
    OptimizerStates, PipelineSplit, SoftwareEra, TrainingSetup,
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
    recompute_modules: Option<Vec<RecomputeModule>>,
    recompute_layers: Option<i64>,
    #[serde(default)]
    sequence_parallel: bool,
    zero: i64,
    zero_group: Option<i64>,
    global_batch: i64,
    seq_len: i64,
    precision: Precision,
    software: Option<SoftwareEra>,
    attention: Option<AttentionKernel>,
    tp_comm_overlap: Option<bool>,
    dp_comm_overlap: Option<bool>,
    hierarchical_collectives: Option<bool>,
    /// The MoE token dispatcher (default all-to-all, the NeMo recipes').
    moe_dispatcher: Option<MoeDispatcher>,
    /// EP dispatch and combine overlapped with compute (default false).
    ep_comm_overlap: Option<bool>,
    /// FP8 weights, gathered in FP8 (default false).
    fp8_param_gather: Option<bool>,
    /// Experts split across tensor-parallel ranks (default true, Megatron-Core's ETP = TP).
    expert_tensor_parallel: Option<bool>,
    main_grads: Option<MainGrads>,
    /// Precision of the Adam moments (default FP32).
    optimizer_states: Option<OptimizerStates>,
    offload_activations: Option<f64>,
    pipeline_split: Option<PipelineSplit>,
    #[serde(default)]
    assumptions: Vec<String>,
    measured: MeasuredFile,
}

impl Run {
    /// The run as a calibration sample.
    #[must_use]
    pub fn sample(&self) -> Sample {
        Sample {
            study: self.file.clone(),
            group: self.cluster.chip.calibration_group.clone(),
            family: self.cluster.chip.family.clone(),
            chip: self.cluster.chip.id.clone(),
            terms: self.evaluation.terms,
            measured: self.measured_step,
            extent: Extent {
                tp: self.layout.tp.into(),
                pp: self.layout.pp.into(),
                cp: self.layout.cp.into(),
                ep: self.layout.ep.into(),
                chips: self.cluster.chips,
                seq_len: self.setup.seq_len,
                mfu_bp: crate::calibration::basis_points(
                    self.evaluation.model_flops.flops()
                        / (self.measured_step.seconds()
                            * self.evaluation.chips
                            * self.evaluation.peak.flops_per_second()),
                ),
            },
        }
    }
}

fn one() -> i64 {
    1
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
    /// Model FLOPs without recompute, attention included over the full `s × s` score square.
    Model,
    /// Model FLOPs without recompute with the attention scores counted over the causal half of
    /// the square: the counter of Megatron-LM's `num_floating_point_operations` since 2025
    /// (`/ 2  # causal mask`; present at NVIDIA/Megatron-LM@250b794, cited in
    /// AI-Hypercomputer/maxtext issue #1972, July 2025) and of MaxText since its PR #1988
    /// (July 2025).
    ModelCausal,
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
            Self::ModelCausal => "model-causal",
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
        let cluster = ClusterRequest {
            hardware: r.hardware.clone(),
            chips: Some(r.chips),
            scale_out_gbit_per_chip: r.scale_out_gbit_per_chip,
            domain_chips: r.domain_chips,
        }
        .resolve(&at, catalog);
        let setup = SetupRequest {
            global_batch: Some(r.global_batch),
            seq_len: Some(r.seq_len),
            // Runs are compared step by step; the token count only scales time to train.
            tokens: Some(1e12),
            precision: Some(r.precision),
            software: r.software,
            attention: r.attention,
            tp_comm_overlap: r.tp_comm_overlap,
            dp_comm_overlap: r.dp_comm_overlap,
            hierarchical_collectives: r.hierarchical_collectives,
            moe_dispatcher: r.moe_dispatcher,
            ep_comm_overlap: r.ep_comm_overlap,
            fp8_param_gather: r.fp8_param_gather,
            expert_tensor_parallel: r.expert_tensor_parallel,
            main_grads: r.main_grads,
            optimizer_states: r.optimizer_states,
            offload_activations: r.offload_activations,
            pipeline_split: r.pipeline_split,
            ..Default::default()
        }
        .resolve(&at, &model);
        let layout = LayoutRequest {
            tp: Some(r.tp),
            pp: Some(r.pp),
            dp: Some(r.dp),
            cp: Some(r.cp),
            ep: Some(r.ep),
            microbatch: Some(r.microbatch),
            virtual_stages: Some(r.virtual_stages),
            recompute: Some(r.recompute),
            recompute_modules: r.recompute_modules.clone(),
            recompute_layers: r.recompute_layers,
            sequence_parallel: Some(r.sequence_parallel),
            zero: Some(r.zero),
            zero_group: r.zero_group,
            ..Default::default()
        }
        .resolve(&at);
        let (cluster, setup, choice) = match (cluster, setup, layout) {
            (Ok(c), Ok(s), Ok(l)) => (c, s, l),
            (c, s, l) => {
                for e in [c.err(), s.err(), l.err()].into_iter().flatten() {
                    problems.extend(e);
                }
                continue;
            }
        };
        let (LayoutChoice::Fixed(c) | LayoutChoice::Search(c)) = choice;
        let layout = match LayoutChoice::fixed(&c, &at, &model, &cluster, &setup) {
            Ok(l) => l,
            Err(e) => {
                problems.extend(e.problems());
                continue;
            }
        };
        let (chips, gbs, seq) = (cluster.chips, setup.global_batch, setup.seq_len);
        let machine = match Machine::new(&cluster, setup.precision) {
            Ok(m) => m,
            Err(e) => {
                problems.push(Problem::new(key(&at, "precision"), e.to_string()));
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
                FlopsConvention::ModelCausal => evaluation.causal_model_flops.flops(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// One Llama 3 8B run on 8 H100 at `seq_len`, published as 500 TFLOP/s per chip in the
    /// given convention.
    fn run_at(seq_len: i64, convention: &str) -> Run {
        let text = format!(
            r#"
schema_version = 1
[[runs]]
id = "T"
citation = "test"
locator = "test"
verif = "P"
model = "llama3-8b"
hardware = "h100-sxm"
chips = 8
tp = 1
pp = 1
dp = 8
microbatch = 1
recompute = "none"
zero = 1
global_batch = 8
seq_len = {seq_len}
precision = "bf16"
[runs.measured]
tflops_per_chip = 500.0
flops_convention = "{convention}"
"#
        );
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let mut runs = parse_runs("t.toml", &text, &catalog).unwrap_or_else(|e| panic!("{e}"));
        runs.pop().unwrap_or_else(|| panic!("no run"))
    }

    /// The causal counter credits fewer FLOPs for the same published rate, so the step it
    /// implies is shorter, by exactly the ratio of the two FLOP counts; the gap grows with the
    /// sequence length (the score square grows as s², the rest as s).
    #[test]
    fn model_causal_convention_counts_half_the_scores() {
        let mut gaps = Vec::new();
        for seq in [4096, 65536] {
            let (full, causal) = (run_at(seq, "model"), run_at(seq, "model-causal"));
            let e = &full.evaluation;
            assert_relative_eq!(
                causal.measured_step.seconds() / full.measured_step.seconds(),
                e.causal_model_flops.flops() / e.model_flops.flops(),
                max_relative = 1e-12
            );
            assert!(causal.measured_step.seconds() < full.measured_step.seconds());
            // By hand: the two counts differ by half the score FLOPs, forward and backward
            // (3 passes), of Llama 3 8B's 32 layers: QKᵀ and AV over 32 query heads of 128,
            // 2·s·(4,096 + 4,096) per token, for the step's 8 sequences of `seq` tokens.
            let tokens = 8.0 * seq as f64;
            let score_flops = 2.0 * seq as f64 * (4096.0 + 4096.0);
            assert_relative_eq!(
                (e.model_flops - e.causal_model_flops).flops(),
                3.0 * 32.0 * 0.5 * score_flops * tokens,
                max_relative = 1e-9
            );
            gaps.push(1.0 - causal.measured_step.seconds() / full.measured_step.seconds());
        }
        assert!(gaps[1] > gaps[0], "{gaps:?}");
        assert_eq!(FlopsConvention::ModelCausal.as_str(), "model-causal");
    }
}
