//! Every published run actually ran, so the memory model must not say it cannot fit.
//!
//! Tolerance: predicted memory per chip within `MARGIN` of the HBM capacity. Frameworks trim
//! memory in ways the model does not itemise (allocator reuse, freeing inputs early, offloading),
//! so a run that fits may be predicted a little over; a large excess would be a modelling error.
//! Runs whose recompute policy xpusim cannot express are skipped: MaxText's "minimal" policy
//! (saves some matmul outputs, recomputes the MLP input projections) and "qkv_proj_offloaded"
//! (host offload); their file records the mapping as an assumption.

use std::path::PathBuf;
use xpusim::calibration::Calibration;
use xpusim::hardware::Catalog;
use xpusim::validation::load_runs;

/// A published run may be predicted at most this far above its HBM capacity.
const MARGIN: f64 = 0.15;

#[test]
fn every_published_run_fits_in_memory() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/validation");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let runs = load_runs(&files, &catalog).unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let mut over = Vec::new();
    let mut checked = 0;
    for r in &runs {
        let unexpressible = r
            .assumptions
            .iter()
            .any(|a| a.contains("remat policy \"minimal\"") || a.contains("offloaded"));
        if unexpressible {
            continue;
        }
        checked += 1;
        let (_, eff) = cal.for_chip(&r.cluster.chip);
        let p = r.evaluation.predict(&eff);
        let (need, cap) = (p.memory.total().gb(), r.evaluation.hbm_capacity.gb());
        println!("{:45} {need:6.1} GB of {cap:6.1}", r.id);
        if need > cap * (1.0 + MARGIN) {
            over.push(format!("{} {need:.1}/{cap:.1} GB", r.id));
        }
    }
    assert!(checked >= 150, "only {checked} runs checked");
    assert!(
        over.is_empty(),
        "published runs predicted not to fit: {over:?}"
    );
}
