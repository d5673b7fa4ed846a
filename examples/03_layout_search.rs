//! 03 — Which layout should a 70B model use on 512 H100s? Enumerate every valid layout,
//! evaluate them in parallel (rayon), and print the five fastest that fit in memory.
//!
//! Run: `cargo run --release --example 03_layout_search`

use xpusim::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Catalog::builtin()?;
    let model = xpusim::preset("llama3-70b")?;
    let cluster = ClusterRequest {
        hardware: "h100-sxm".into(),
        chips: Some(512),
        ..Default::default()
    }
    .resolve("", &catalog)
    .map_err(|problems| Error::Input { problems })?;
    let setup = SetupRequest {
        global_batch: Some(512),
        seq_len: Some(8192),
        tokens: Some(2e12),
        ..Default::default()
    }
    .resolve("", &model)
    .map_err(|problems| Error::Input { problems })?;
    let job = Job::new(model, setup, cluster);
    // No knob pinned: every valid layout is evaluated in parallel.
    let found = search(
        &job,
        &LayoutConstraints::default(),
        &Calibration::shipped()?,
    )?;
    println!(
        "{} valid layouts, {} fit in 80 GB (calibration {})",
        found.considered, found.fitting, found.best.calibration_group
    );
    for e in std::iter::once(&found.best)
        .chain(&found.runner_ups)
        .take(5)
    {
        let p = &e.prediction;
        println!(
            "{:<48} step {:.2} s  MFU {:.1}%  {:.1} GB  bound by {}",
            e.layout.to_string(),
            p.step_time.seconds(),
            100.0 * p.mfu,
            p.memory.total().gb(),
            p.bound_by.as_str()
        );
    }
    Ok(())
}
