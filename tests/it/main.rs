//! The integration tests, one binary: the catalog, the command line, the model's invariants,
//! validation against published runs, and bad input of every kind.
#![allow(missing_docs)] // test helpers

mod catalog;
mod cli;
mod energy;
mod memory;
mod model;
mod robustness;
mod validation;

use xpusim::{
    Calibration, Cluster, ClusterRequest, Error, Estimate, Job, LayoutChoice, LayoutRequest, Model,
    Precision, Recompute, SetupRequest, TrainingSetup,
};

/// The chips the seed facts name (every one must be in the catalog and in `hardware list`).
pub const SEED_CHIPS: [&str; 14] = [
    "trn1",
    "trn2",
    "trn3",
    "trn4",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "tpu-7x",
    "a100-80gb",
    "h100-sxm",
    "h200",
    "b200",
    "gb200",
    "gb300",
];

/// Keys every result row carries in JSON (the README's schema).
pub const ROW_KEYS: [&str; 12] = [
    "hardware",
    "chips",
    "layout",
    "fits_memory",
    "memory_per_chip_gb",
    "step_time_s",
    "tokens_per_s",
    "mfu",
    "hfu",
    "train_days",
    "chip_hours",
    "bound_by",
];

/// Run the `xpusim` binary in the repository root.
pub fn xpusim(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xpusim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run xpusim: {e}"))
}

/// Standard output as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A layout written out in full (the tests' shorthand for a fully pinned [`LayoutRequest`]).
#[derive(Clone, Copy, Debug)]
pub struct L {
    pub tp: u32,
    pub pp: u32,
    pub dp: u32,
    pub cp: u32,
    pub ep: u32,
    pub microbatch: u32,
    pub virtual_stages: u32,
    pub recompute: Recompute,
    pub sequence_parallel: bool,
    pub zero: u8,
    pub zero_group: u32,
}

impl std::fmt::Display for L {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl L {
    pub fn request(&self, allow_tp_scale_out: bool) -> LayoutRequest {
        LayoutRequest {
            tp: Some(self.tp.into()),
            pp: Some(self.pp.into()),
            dp: Some(self.dp.into()),
            cp: Some(self.cp.into()),
            ep: Some(self.ep.into()),
            microbatch: Some(self.microbatch.into()),
            virtual_stages: Some(self.virtual_stages.into()),
            recompute: Some(self.recompute),
            recompute_modules: None,
            recompute_layers: None,
            sequence_parallel: Some(self.sequence_parallel),
            zero: Some(self.zero.into()),
            zero_group: (self.zero_group != 0).then_some(self.zero_group.into()),
            allow_tp_scale_out: Some(allow_tp_scale_out),
            search_rest: None,
        }
    }
}

/// Estimate one run through the library's one path (request → resolve → plan).
pub fn estimate_with(
    model: &Model,
    l: &L,
    cluster: &Cluster,
    setup: &TrainingSetup,
    cal: &Calibration,
    allow_tp_scale_out: bool,
) -> xpusim::Result<Estimate> {
    let choice = l
        .request(allow_tp_scale_out)
        .resolve("layout")
        .map_err(|problems| Error::Input { problems })?;
    assert!(matches!(choice, LayoutChoice::Fixed(_)));
    let job = Job::new(model.clone(), setup.clone(), cluster.clone());
    Ok(xpusim::run(&job, &choice, cal)?.estimate)
}

/// [`estimate_with`] inside scale-up domains.
pub fn estimate(
    model: &Model,
    l: &L,
    cluster: &Cluster,
    setup: &TrainingSetup,
    cal: &Calibration,
) -> xpusim::Result<Estimate> {
    estimate_with(model, l, cluster, setup, cal, false)
}

/// A training setup from its four main values.
pub fn setup_new(
    global_batch: u64,
    seq_len: u64,
    tokens: f64,
    precision: Precision,
) -> xpusim::Result<TrainingSetup> {
    let model = xpusim::preset("llama3-8b")?;
    SetupRequest {
        global_batch: i64::try_from(global_batch).ok(),
        seq_len: i64::try_from(seq_len).ok(),
        tokens: Some(tokens),
        precision: Some(precision),
        ..Default::default()
    }
    .resolve("training", &model)
    .map_err(|problems| Error::Input { problems })
}

/// A cluster of the built-in catalog.
pub fn cluster(hardware: &str, chips: u64) -> xpusim::Result<Cluster> {
    ClusterRequest {
        hardware: hardware.into(),
        chips: i64::try_from(chips).ok(),
        ..Default::default()
    }
    .resolve("", &xpusim::Catalog::builtin()?)
    .map_err(|problems| Error::Input { problems })
}
