//! 03 — Which layout should a 70B model use on 512 H100s? Enumerate every valid layout,
//! evaluate them in parallel (rayon), and print the five fastest that fit in memory.
//!
//! Run: `cargo run --release --example 03_layout_search`

use xpusim::calibration::Calibration;
use xpusim::hardware::{Catalog, Precision};
use xpusim::perf::Machine;
use xpusim::sweep::{candidates, evaluate_all, SearchSpace};
use xpusim::workload::{preset, TrainingSetup};

fn main() -> Result<(), xpusim::Error> {
    let catalog = Catalog::builtin()?;
    let cluster = catalog.cluster("h100-sxm", 512)?;
    let model = preset("llama3-70b")?;
    let setup = TrainingSetup::new(512, 8192, 2e12, Precision::Bf16)?;
    let layouts = candidates(&model, &cluster, &setup, &SearchSpace::default());
    let machine = Machine::new(&cluster, setup.precision)?;
    let (group, eff) = Calibration::shipped()?.for_chip(&cluster.chip);
    let preds = evaluate_all(&model, &setup, &machine, &eff, &layouts);
    let mut ranked: Vec<_> = layouts
        .iter()
        .zip(&preds)
        .filter(|(_, p)| p.fits_memory)
        .collect();
    ranked.sort_by(|a, b| a.1.step_time.seconds().total_cmp(&b.1.step_time.seconds()));
    println!(
        "{} valid layouts, {} fit in 80 GB (calibration {group})",
        layouts.len(),
        ranked.len()
    );
    for (l, p) in ranked.iter().take(5) {
        println!(
            "{l:<48} step {:.2} s  MFU {:.1}%  {:.1} GB  bound by {}",
            p.step_time.seconds(),
            100.0 * p.mfu,
            p.memory.total().gb(),
            p.bound_by.as_str()
        );
    }
    Ok(())
}
