//! Rendering of calibrations and of predictions compared with measured runs.

use super::table;
use crate::calibration::Calibration;
use crate::measured::Run;
use crate::validation::Comparison;
use std::path::Path;

/// The fitted parameters, one row per fit, with one-sigma uncertainties of the efficiencies.
pub fn calibration_table(cal: &Calibration, markdown: bool) -> String {
    let mut body = Vec::new();
    for (name, g) in &cal.groups {
        let e = &g.efficiency;
        let sigma = |key: &str, eff: f64| {
            // σ of 1/η, propagated to η: σ_η = η² σ_θ.
            let s = g.theta_sigma.get(key).copied().unwrap_or(0.0) * eff * eff;
            format!("{eff:.3} ±{s:.3}")
        };
        body.push([
            name.clone(),
            g.runs.to_string(),
            sigma("matmul", e.matmul),
            sigma("matmul_low", e.matmul_low),
            sigma("attention", e.attention),
            sigma("memory", e.memory),
            format!("{:.1}", e.kernel_overhead_us),
            sigma("network", e.network),
            format!("{:.2}", e.overlap_exposure),
            format!("{:.2}", e.latency_scale),
            format!("{:.0}", e.moe_fixed_us),
            format!("{:.1}%", 100.0 * g.rms_relative_error),
            format!("{:.1}%", 100.0 * g.max_relative_error),
        ]);
    }
    let head = [
        "fit",
        "runs",
        "BF16 matmul",
        "FP8/FP4 matmul",
        "attention",
        "HBM",
        "kernel µs",
        "network",
        "overlap exposed",
        "latency x",
        "MoE µs",
        "rms error",
        "max error",
    ]
    .map(String::from);
    table(&head, &body, markdown)
}

/// Mean and largest absolute error per study file, per family (the chip's calibration group, dense or
/// mixture-of-experts) and over all runs (a Markdown table).
pub fn summarise(runs: &[Run], cmp: &[Comparison]) -> String {
    let mut sets: Vec<(String, Vec<f64>)> = Vec::new();
    let add = |sets: &mut Vec<(String, Vec<f64>)>, key: String, e: f64| match sets
        .iter_mut()
        .find(|(k, _)| *k == key)
    {
        Some((_, v)) => v.push(e),
        None => sets.push((key, vec![e])),
    };
    for (r, c) in runs.iter().zip(cmp) {
        let key = Path::new(&r.file)
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        add(&mut sets, key, c.error.abs());
    }
    let mut families: Vec<(String, Vec<f64>)> = Vec::new();
    for (r, c) in runs.iter().zip(cmp) {
        let kind = if r.model.moe.is_some() {
            "MoE"
        } else {
            "dense"
        };
        let family = &r.cluster.chip.calibration_group;
        add(
            &mut families,
            format!("family: {family} {kind}"),
            c.error.abs(),
        );
    }
    families.sort_by(|a, b| a.0.cmp(&b.0));
    sets.extend(families);
    sets.push(("all".into(), cmp.iter().map(|c| c.error.abs()).collect()));
    let body: Vec<[String; 4]> = sets
        .iter()
        .map(|(k, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let max = v.iter().fold(0.0_f64, |m, x| m.max(*x));
            [
                k.clone(),
                v.len().to_string(),
                format!("{:.1}%", 100.0 * mean),
                format!("{:.1}%", 100.0 * max),
            ]
        })
        .collect();
    table(
        &["set", "runs", "mean abs error", "max abs error"].map(String::from),
        &body,
        true,
    )
}

/// One row per run: id, chip, chips, the published figure, measured and predicted step and error.
#[must_use]
pub fn comparison_table(runs: &[Run], cmp: &[Comparison], markdown: bool) -> String {
    let body: Vec<[String; 7]> = runs
        .iter()
        .zip(cmp)
        .map(|(r, c)| {
            [
                r.id.clone(),
                c.chip.clone(),
                c.chips.to_string(),
                r.published.clone(),
                format!("{:.3}", c.measured_s),
                format!("{:.3}", c.predicted_s),
                format!("{:+.1}%", 100.0 * c.error),
            ]
        })
        .collect();
    let head = [
        "run",
        "chip",
        "chips",
        "published",
        "measured s/step",
        "predicted s/step",
        "error",
    ]
    .map(String::from);
    table(&head, &body, markdown)
}

/// Residuals of every run under the fit of its own group (what `calibrate` prints).
#[must_use]
pub fn residual_table(runs: &[Run], cmp: &[Comparison]) -> String {
    let body: Vec<[String; 5]> = runs
        .iter()
        .zip(cmp)
        .map(|(r, c)| {
            [
                r.id.clone(),
                c.group.clone(),
                format!("{:.3}", c.measured_s),
                format!("{:.3}", c.predicted_s),
                format!("{:+.1}%", 100.0 * c.error),
            ]
        })
        .collect();
    table(
        &["run", "fit", "measured s", "fitted s", "residual"].map(String::from),
        &body,
        false,
    )
}
