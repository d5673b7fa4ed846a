//! A whole training run: one configuration evaluated and turned into time to train.

use super::{evaluate, Efficiency, Machine, MemoryBreakdown, Prediction, Shape, StepBreakdown};
use crate::calibration::Calibration;
use crate::error::Result;
use crate::hardware::Cluster;
use crate::parallelism::Layout;
use crate::units::{Flops, Seconds};
use crate::workload::{Model, TrainingSetup};
use serde::Serialize;

/// Whether a configuration can run: infeasibility is a result, not an error.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Feasibility {
    /// Fits in memory.
    Feasible,
    /// Does not fit; the reason says by how much.
    Infeasible(String),
}

/// The estimate of one training run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Chip id.
    pub chip: String,
    /// System id.
    pub system: String,
    /// Chips.
    pub chips: u64,
    /// Model id.
    pub model: String,
    /// Layout.
    pub layout: Layout,
    /// Calibration fit used.
    pub calibration_group: String,
    /// Whether that fit is not the chip's own group (a family, global or prior stand-in).
    pub calibration_fallback: bool,
    /// Relative step-time error to expect (rms over the fit's studies, each predicted without
    /// itself), when the calibration knows it.
    pub expected_error: Option<f64>,
    /// Efficiency parameters applied.
    pub efficiency: Efficiency,
    /// Memory feasibility.
    pub feasibility: Feasibility,
    /// Step prediction.
    pub prediction: Prediction,
    /// Optimizer steps to train the tokens.
    pub steps: f64,
    /// Wall-clock time to train (no failures; see the reliability model for goodput).
    pub train_time: Seconds,
    /// Chip-hours.
    pub chip_hours: f64,
    /// Model FLOPs per token (exact count).
    pub flops_per_token: Flops,
    /// The 6·N approximation per token, for comparison.
    pub six_n_flops_per_token: Flops,
}

impl Estimate {
    /// Step-time breakdown.
    #[must_use]
    pub fn breakdown(&self) -> &StepBreakdown {
        &self.prediction.breakdown
    }
    /// Memory per chip.
    #[must_use]
    pub fn memory(&self) -> &MemoryBreakdown {
        &self.prediction.memory
    }
}

/// Estimate one training run: validate the layout, evaluate the step, derive time to train.
///
/// ```
/// use xpusim::{calibration::Calibration, hardware::{Catalog, Precision}, parallelism::{Layout, Recompute},
///              perf::estimate, workload::{preset, TrainingSetup}};
/// let catalog = Catalog::builtin()?;
/// let cluster = catalog.cluster("a100-80gb", 1024)?;
/// let model = preset("gpt3-175b")?;
/// let setup = TrainingSetup::new(1536, 2048, 300e9, Precision::Bf16)?;
/// let layout = Layout { tp: 8, pp: 8, dp: 16, cp: 1, ep: 1, microbatch: 1, virtual_stages: 1,
///                       recompute: Recompute::Selective, sequence_parallel: true, zero: 1, zero_group: 0 };
/// let e = estimate(&model, &layout, &cluster, &setup, &Calibration::shipped()?)?;
/// assert!(e.train_time.days() > 10.0 && e.train_time.days() < 60.0);
/// # Ok::<(), xpusim::Error>(())
/// ```
///
/// # Errors
/// An invalid layout for this cluster and model, or a number format the chip lacks.
pub fn estimate(
    model: &Model,
    layout: &Layout,
    cluster: &Cluster,
    setup: &TrainingSetup,
    calibration: &Calibration,
) -> Result<Estimate> {
    estimate_with(model, layout, cluster, setup, calibration, false)
}

/// [`estimate`] with the option of letting tensor parallelism span scale-up domains.
///
/// # Errors
/// As [`estimate`].
pub fn estimate_with(
    model: &Model,
    layout: &Layout,
    cluster: &Cluster,
    setup: &TrainingSetup,
    calibration: &Calibration,
    allow_tp_scale_out: bool,
) -> Result<Estimate> {
    layout.validate(model, cluster, setup, allow_tp_scale_out)?;
    let machine = Machine::new(cluster, setup.precision)?;
    let (group, eff) = calibration.for_chip(&cluster.chip);
    let shape = Shape::new(model, setup, layout);
    let prediction = evaluate(&shape, &machine).predict(&eff);
    let feasibility = if prediction.fits_memory {
        Feasibility::Feasible
    } else {
        Feasibility::Infeasible(format!(
            "needs {:.1} GB per chip (weights {:.1}, gradients {:.1}, optimizer {:.1}, activations {:.1}, buffers {:.1}) but {} has {:.1} GB of HBM",
            prediction.memory.total().gb(),
            prediction.memory.weights.gb(),
            prediction.memory.gradients.gb(),
            prediction.memory.optimizer.gb(),
            prediction.memory.activations.gb(),
            prediction.memory.buffers.gb(),
            cluster.chip.id,
            machine.hbm_capacity.gb()
        ))
    };
    let steps = setup.tokens / setup.tokens_per_step();
    let train_time = prediction.step_time * steps;
    Ok(Estimate {
        chip: cluster.chip.id.clone(),
        system: cluster.system.id.clone(),
        chips: cluster.chips,
        model: model.id.clone(),
        layout: *layout,
        calibration_fallback: group != cluster.chip.calibration_group,
        expected_error: calibration.expected_error(&group),
        calibration_group: group,
        efficiency: eff,
        feasibility,
        prediction,
        steps,
        train_time,
        chip_hours: train_time.hours() * cluster.chips as f64,
        flops_per_token: model.training_flops_per_token(setup.seq_len),
        six_n_flops_per_token: model.six_n_flops_per_token(),
    })
}
