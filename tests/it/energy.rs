//! Energy, power and failures against published figures (tests/data/energy, with citations).
//!
//! Every record states what its figure counts; the prediction is computed on the same basis:
//! - `chip-tdp-energy`: publications that multiply GPU-hours by TDP are compared with catalog TDP
//!   x chips x the effective (goodput-adjusted) wall time from [`xpusim::assess`];
//! - `system-power`: a system's published maximum power against (TDP + host share) x chips, or
//!   the all-in per-chip figure x chips for an all-in pod (circular: the catalog derives the host
//!   shares from these figures);
//! - `interruptions`: unexpected interruptions over a snapshot's wall time from the default
//!   failure rates (circular: the rates are derived from that count);
//! - `goodput`: the goodput of the same snapshot against a published lower bound.
//!
//! Each record carries its own tolerance and a one-line rationale; the README's section "Energy,
//! power and failures against published figures" shows the table this test prints.

use serde::Deserialize;
use std::path::PathBuf;
use xpusim::economics::PowerInputs;
use xpusim::reliability::Resilience;
use xpusim::units::{Bytes, Seconds};
use xpusim::{
    assess, Calibration, Catalog, ClusterRequest, EconomicsRequest, Job, LayoutRequest,
    SetupRequest,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    schema_version: u32,
    records: Vec<Record>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Basis {
    ChipTdpEnergy,
    SystemPower,
    Interruptions,
    Goodput,
}

impl Basis {
    fn describe(self) -> &'static str {
        match self {
            Basis::ChipTdpEnergy => "GPU-hours x TDP",
            Basis::SystemPower => "(TDP + host) x chips, max",
            Basis::Interruptions => "wall time / MTBI",
            Basis::Goodput => "goodput (lower bound)",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: String,
    citation: String,
    locator: String,
    figure: f64,
    unit: String,
    counts: String,
    basis: Basis,
    tolerance: f64,
    tolerance_rationale: String,
    #[serde(default)]
    lower_bound: bool,
    /// Why the check is circular, when it is.
    circular: Option<String>,
    note: String,
    #[serde(default)]
    assumptions: Vec<String>,
    cluster: Option<ClusterRequest>,
    training: Option<SetupRequest>,
    layout: Option<LayoutRequest>,
    economics: Option<EconomicsRequest>,
    run: Option<RunSpec>,
    system: Option<SystemSpec>,
    snapshot: Option<Snapshot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSpec {
    model: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemSpec {
    hardware: String,
    system: String,
    chips: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    chips: u64,
    days: f64,
    params: f64,
}

fn records() -> Vec<Record> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/energy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let file: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(file.schema_version, 1, "{}", f.display());
        out.extend(file.records);
    }
    out
}

/// The unit's scale to SI (W, Wh, count, fraction).
fn scale(unit: &str) -> f64 {
    match unit {
        "kW" => 1e3,
        "MW" | "MWh" => 1e6,
        "W" | "interruptions" | "fraction" => 1.0,
        u => panic!("unknown unit {u}"),
    }
}

/// What the record's figure is predicted to be (in the record's unit), and a context note.
fn predict(r: &Record, catalog: &Catalog, cal: &Calibration) -> (f64, String) {
    match r.basis {
        Basis::ChipTdpEnergy => {
            let run = r
                .run
                .as_ref()
                .unwrap_or_else(|| panic!("{}: run missing", r.id));
            let model = xpusim::preset(&run.model).unwrap_or_else(|e| panic!("{}: {e}", r.id));
            let cluster = r
                .cluster
                .as_ref()
                .unwrap_or_else(|| panic!("{}: cluster missing", r.id))
                .resolve("cluster", catalog)
                .unwrap_or_else(|p| panic!("{}: {p:?}", r.id));
            let setup = r
                .training
                .as_ref()
                .unwrap_or_else(|| panic!("{}: training missing", r.id))
                .resolve("training", &model)
                .unwrap_or_else(|p| panic!("{}: {p:?}", r.id));
            let choice = r
                .layout
                .clone()
                .unwrap_or_default()
                .resolve("layout")
                .unwrap_or_else(|p| panic!("{}: {p:?}", r.id));
            let settings = r
                .economics
                .clone()
                .unwrap_or_default()
                .resolve("economics")
                .unwrap_or_else(|p| panic!("{}: {p:?}", r.id));
            let job = Job::new(model, setup, cluster.clone());
            let answer =
                xpusim::run(&job, &choice, cal).unwrap_or_else(|e| panic!("{}: {e}", r.id));
            let e = &answer.estimate;
            let a = assess(e, &cluster.chip, &cluster.system, &settings);
            let power = PowerInputs::from_catalog(&cluster.chip, &cluster.system)
                .unwrap_or_else(|| panic!("{}: no TDP", r.id));
            let wh = power.tdp.watts() * e.chips as f64 * a.effective_train_days * 24.0;
            let l = &e.layout;
            let note = format!(
                "{} chips, {:.1} d ({:.1} d failure-free, goodput {:.3}), MFU {:.1}%, layout {l:?}; all-in facility {:.0} MWh at PUE {}",
                e.chips,
                a.effective_train_days,
                e.train_time.days(),
                a.goodput,
                100.0 * e.prediction.mfu,
                a.energy_mwh.unwrap_or(f64::NAN),
                a.pue,
            );
            (wh / scale(&r.unit), note)
        }
        Basis::SystemPower => {
            let s = r
                .system
                .as_ref()
                .unwrap_or_else(|| panic!("{}: system missing", r.id));
            let chip = catalog
                .chip(&s.hardware)
                .unwrap_or_else(|e| panic!("{}: {e}", r.id));
            let system = catalog
                .system(&s.system)
                .unwrap_or_else(|e| panic!("{}: {e}", r.id));
            let p = PowerInputs::from_catalog(chip, system)
                .unwrap_or_else(|| panic!("{}: no TDP", r.id));
            let per_chip = if p.all_in {
                p.facility(1.0, 1.0).watts()
            } else {
                p.accelerator(1.0).watts() + p.host.watts()
            };
            let note = format!(
                "{} x ({:.0} W chip + {:.1} W host{})",
                s.chips,
                p.tdp.watts(),
                if p.all_in { 0.0 } else { p.host.watts() },
                if p.all_in { ", all-in" } else { "" }
            );
            (per_chip * s.chips as f64 / scale(&r.unit), note)
        }
        Basis::Interruptions | Basis::Goodput => {
            let s = r
                .snapshot
                .as_ref()
                .unwrap_or_else(|| panic!("{}: snapshot missing", r.id));
            let wall = Seconds::new(s.days * 86_400.0);
            // The same checkpoint size `assess` uses: BF16 weights + FP32 master and moments.
            let g = Resilience::default().goodput(wall, s.chips, Bytes::new(s.params * 14.0));
            let note = format!(
                "MTBI {:.2} h, checkpoint {:.0} s every {:.2} h",
                g.mtbi.hours(),
                g.checkpoint_write.seconds(),
                g.checkpoint_interval.hours()
            );
            if r.basis == Basis::Interruptions {
                (wall.seconds() / g.mtbi.seconds(), note)
            } else {
                (g.goodput, note)
            }
        }
    }
}

#[test]
fn energy_power_and_failures_match_published_figures() {
    let records = records();
    assert!(
        records.len() >= 10,
        "expected every record, got {}",
        records.len()
    );
    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let mut outside = Vec::new();
    println!("| Figure | Published | Predicted | Error | Tolerance | Basis | Check |");
    println!("|---|---:|---:|---:|---:|---|---|");
    for r in &records {
        for (what, v) in [
            ("citation", &r.citation),
            ("locator", &r.locator),
            ("counts", &r.counts),
            ("tolerance_rationale", &r.tolerance_rationale),
            ("note", &r.note),
        ] {
            assert!(!v.trim().is_empty(), "{}: empty {what}", r.id);
        }
        assert!(r.tolerance > 0.0 && r.tolerance < 1.0, "{}", r.id);
        let (pred, note) = predict(r, &catalog, &cal);
        assert!(pred.is_finite() && pred > 0.0, "{}: {pred}", r.id);
        let err = pred / r.figure - 1.0;
        let ok = if r.lower_bound {
            pred >= r.figure && pred <= 1.0
        } else {
            err.abs() <= r.tolerance
        };
        let published = if r.lower_bound {
            format!("> {} {}", r.figure, r.unit)
        } else {
            format!("{} {}", r.figure, r.unit)
        };
        let tol = if r.lower_bound {
            format!("[{}, 1]", r.figure)
        } else {
            format!("±{:.1}%", 100.0 * r.tolerance)
        };
        println!(
            "| {} | {published} | {pred:.4} {} | {:+.1}% | {tol} | {} | {} |",
            r.id,
            r.unit,
            100.0 * err,
            r.basis.describe(),
            match r.circular.as_deref() {
                None => "real",
                Some(c) if c.starts_with("partly") => "partly circular",
                Some(_) => "circular",
            },
        );
        println!(
            "<!-- {}: {note}; assumptions: {:?} -->",
            r.id, r.assumptions
        );
        if !ok {
            outside.push(format!("{} {:+.1}%", r.id, 100.0 * err));
        }
    }
    assert!(outside.is_empty(), "outside tolerance: {outside:?}");
}
