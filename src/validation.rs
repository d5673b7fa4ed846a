//! Predictions compared with measured runs: the README's error table and leave-one-study-out
//! cross-validation.

use crate::calibration::{Calibration, Sample};
use crate::error::Result;
use crate::measured::Run;
use serde::{Deserialize, Serialize};

/// One line of the validation table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
/// [`crate::Error::Fit`] when a fit fails.
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
            let samples: Vec<Sample> = train.iter().map(Run::sample).collect();
            crate::calibration::fit(&samples, "cross-validation")?
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
