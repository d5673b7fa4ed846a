//! The `xpusim` command-line tool: thin glue over the library.

use anyhow::{bail, Context, Result};
use std::io::Write;

/// `print!` that returns an error (a closed pipe, say) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        write!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// `println!` that returns an error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use xpusim::calibration::{self, Calibration};
use xpusim::energy::Facility;
use xpusim::hardware::{Catalog, Chip, Figure, Precision};
use xpusim::parallelism::Recompute;
use xpusim::report::{self, Format, Outcome, Row};
use xpusim::scenario::{evaluate_case, LayoutRequest, Scenario};
use xpusim::units::BytesPerSecond;
use xpusim::units::UsdPerChipHour;
use xpusim::validation::{compare, load_runs};
use xpusim::workload::{
    parse_models, preset, presets, AttentionKernel, MainGrads, OptimizerStates, TrainingSetup,
};

#[derive(Parser)]
#[command(
    name = "xpusim",
    version,
    about = "Simulate the time, cost and energy of training large models on accelerator clusters"
)]
struct Cli {
    /// Extra catalog files (chips and systems) to add to the built-in catalog.
    #[arg(long, global = true)]
    catalog: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The hardware catalog.
    Hardware {
        #[command(subcommand)]
        command: HardwareCommand,
    },
    /// Built-in model presets.
    Models {
        /// Output format: table or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Estimate one training run.
    Estimate(Box<EstimateArgs>),
    /// Run a scenario file.
    Run {
        /// The scenario TOML file.
        scenario: PathBuf,
        /// Output format: table, json, csv or markdown.
        #[arg(long, default_value = "table")]
        format: String,
        /// Write the output to this file (whole or not at all) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Calibration file (default: the shipped one).
        #[arg(long)]
        calibration: Option<PathBuf>,
        #[command(flatten)]
        economics: EconomicsArgs,
    },
    /// Fit the efficiency parameters to measured runs and write a calibration file.
    Calibrate {
        /// Run files (the format of tests/data/validation/*.toml).
        runs: Vec<PathBuf>,
        /// Where to write the calibration.
        #[arg(long, short, default_value = "calibration.toml")]
        output: PathBuf,
    },
    /// Compare predictions with measured runs (the README's error table).
    Validate {
        /// Run files or folders (default: tests/data/validation).
        runs: Vec<PathBuf>,
        /// Calibration file (default: the shipped one).
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Output format: table, markdown or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// Leave-one-study-out: predict each file with a calibration fitted on the other files.
        #[arg(long)]
        holdout: bool,
        /// Write the Markdown tables into this file between its `<!-- validation:begin/end -->`
        /// (or, with --holdout, `<!-- holdout:begin/end -->`) markers.
        #[arg(long)]
        update_readme: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum HardwareCommand {
    /// List chips and systems.
    List {
        /// Output format: table or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Every figure of a chip or system, with source and status.
    Show {
        /// Chip id, alias or system id.
        id: String,
        /// Output format: table or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Args)]
struct EstimateArgs {
    /// Model preset id or a model TOML file.
    #[arg(long)]
    model: String,
    /// Chip or system id.
    #[arg(long)]
    hardware: String,
    /// Number of chips.
    #[arg(long)]
    chips: u64,
    /// Tensor parallel (omit all layout options to search for the best layout).
    #[arg(long)]
    tp: Option<u32>,
    /// Pipeline parallel.
    #[arg(long)]
    pp: Option<u32>,
    /// Data parallel (default: chips / (tp x pp x cp)).
    #[arg(long)]
    dp: Option<u32>,
    /// Context parallel.
    #[arg(long)]
    cp: Option<u32>,
    /// Expert parallel.
    #[arg(long)]
    ep: Option<u32>,
    /// Micro-batch size in sequences.
    #[arg(long)]
    microbatch: Option<u32>,
    /// Interleaved pipeline stages per rank.
    #[arg(long)]
    virtual_stages: Option<u32>,
    /// none, selective or full.
    #[arg(long)]
    recompute: Option<String>,
    /// ZeRO stage 0..3.
    #[arg(long)]
    zero: Option<u8>,
    /// Ranks that shard the ZeRO state (hybrid sharding); default all data-parallel ranks.
    #[arg(long)]
    zero_group: Option<u32>,
    /// Let tensor parallelism span scale-up domains.
    #[arg(long)]
    allow_tp_scale_out: bool,
    /// Global batch in sequences.
    #[arg(long, default_value_t = 1024, conflicts_with = "global_batch_tokens")]
    global_batch: u64,
    /// Global batch in tokens (instead of --global-batch): a whole number of sequences.
    #[arg(long)]
    global_batch_tokens: Option<u64>,
    /// Precision of the Adam moments: fp32 (12 bytes/param with the master weights) or bf16 (8).
    #[arg(long, default_value = "fp32")]
    optimizer_states: String,
    /// Precision of the accumulated gradients: bf16 (modern default) or fp32.
    #[arg(long, default_value = "bf16")]
    main_grads: String,
    /// Sequence length (default: the model's).
    #[arg(long)]
    seq_len: Option<u64>,
    /// bf16, fp8 or fp4.
    #[arg(long, default_value = "bf16")]
    precision: String,
    /// Tokens to train.
    #[arg(long, default_value_t = 1e12)]
    tokens: f64,
    /// flash or unfused.
    #[arg(long, default_value = "flash")]
    attention: String,
    /// Tensor-parallel communication is not overlapped with compute (older frameworks).
    #[arg(long)]
    no_tp_overlap: bool,
    /// Data-parallel communication is not overlapped with the backward pass.
    #[arg(long)]
    no_dp_overlap: bool,
    /// Collectives spanning scale-up domains do not aggregate inside a domain first.
    #[arg(long)]
    flat_collectives: bool,
    /// Scale-out bandwidth per chip, Gbit/s per direction (default: the system's).
    #[arg(long)]
    scale_out_gbps: Option<f64>,
    /// Chips per scale-up domain actually used (default: the system's).
    #[arg(long)]
    domain_chips: Option<u64>,
    /// Calibration file (default: the shipped one).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Output format: table, json, csv or markdown.
    #[arg(long, default_value = "table")]
    format: String,
    #[command(flatten)]
    economics: EconomicsArgs,
}

/// Energy and cost settings.
#[derive(Args, Clone)]
struct EconomicsArgs {
    /// Power usage effectiveness of the facility (default 1.15, AWS 2024).
    #[arg(long)]
    pue: Option<f64>,
    /// Grid carbon intensity, kg CO2e per kWh (default 0.39, US average 2022).
    #[arg(long)]
    grid_kg_per_kwh: Option<f64>,
    /// Price in USD per chip-hour (default: the chip's latest on-demand catalog price).
    #[arg(long)]
    price: Option<f64>,
}

impl EconomicsArgs {
    fn facility(&self) -> Result<Facility> {
        let d = Facility::default();
        Ok(Facility::new(
            self.pue.unwrap_or(d.pue),
            self.grid_kg_per_kwh.unwrap_or(d.grid_kg_co2_per_kwh),
        )?)
    }
    fn pue_given(&self) -> bool {
        self.pue.is_some() || self.grid_kg_per_kwh.is_some()
    }
    fn price(&self) -> Result<Option<UsdPerChipHour>> {
        match self.price {
            Some(p) if !(p.is_finite() && p >= 0.0) => {
                bail!("--price: must be a non-negative number of USD per chip-hour, got {p}")
            }
            Some(p) => Ok(Some(UsdPerChipHour::new(p))),
            None => Ok(None),
        }
    }
}

fn main() {
    if let Err(e) = run() {
        // A reader that stops early (`xpusim ... | head`) is not an error.
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return;
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let catalog = Catalog::with_user_files(&cli.catalog)?;
    match cli.command {
        Command::Hardware { command } => match command {
            HardwareCommand::List { format } => hardware_list(&catalog, &format),
            HardwareCommand::Show { id, format } => hardware_show(&catalog, &id, &format),
        },
        Command::Models { format } => models(&format),
        Command::Estimate(a) => estimate(&catalog, *a),
        Command::Run {
            scenario,
            format,
            output,
            calibration,
            economics,
        } => {
            let text = std::fs::read_to_string(&scenario)
                .with_context(|| format!("reading {}", scenario.display()))?;
            let s = Scenario::parse(&scenario.display().to_string(), &text, &catalog)?;
            let cal = load_calibration(calibration.as_deref())?;
            let format = Format::parse(&format)?;
            // Flags given on the command line win over the scenario's [facility] and prices.
            let facility = if economics.pue_given() {
                economics.facility()?
            } else {
                s.facility
            };
            let price = economics.price()?;
            let rows: Vec<Outcome> = s
                .run(&cal)
                .into_iter()
                .map(|(case, r)| match r {
                    Ok(e) => Ok(Row::new(&case.hardware, &e).with_economics(
                        &e,
                        &case.cluster.chip,
                        &facility,
                        price.or(case.price),
                    )),
                    Err(reason) => Err((case.hardware.clone(), case.cluster.chips, reason)),
                })
                .collect();
            let mut out = String::new();
            if format == Format::Table {
                out.push_str(&format!(
                    "{}\n{}\nmodel {} ({:.1}B parameters), global batch {} x {} tokens, {:.3e} tokens, {}\n\n",
                    s.name,
                    s.description,
                    s.model.id,
                    s.model.params() / 1e9,
                    s.setup.global_batch,
                    s.setup.seq_len,
                    s.setup.tokens,
                    s.setup.precision
                ));
            }
            out.push_str(&report::render(&rows, format)?);
            emit(&out, output.as_deref())
        }
        Command::Calibrate { runs, output } => {
            let files = expand(&runs)?;
            let runs = load_runs(&files, &catalog)?;
            let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            let cal = calibration::fit(&runs, &format!("xpusim calibrate {}", names.join(" ")))?;
            xpusim::io::OutputPath::check(&output, &[])?.write(cal.to_toml()?.as_bytes())?;
            out!("{}", calibration_table(&cal, false));
            // Residuals of every run under its own group's fit.
            let cmp = compare(&runs, &cal);
            let body: Vec<[String; 5]> = runs
                .iter()
                .zip(&cmp)
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
            outln!();
            out!(
                "{}",
                report::table(
                    &["run", "fit", "measured s", "fitted s", "residual"].map(String::from),
                    &body,
                    false
                )
            );
            outln!("wrote {}", output.display());
            Ok(())
        }
        Command::Validate {
            runs,
            calibration,
            format,
            holdout,
            update_readme,
        } => {
            let runs = if runs.is_empty() {
                vec![PathBuf::from("tests/data/validation")]
            } else {
                runs
            };
            let runs = load_runs(&expand(&runs)?, &catalog)?;
            let cmp = if holdout {
                xpusim::validation::cross_validate(&runs)?
            } else {
                compare(&runs, &load_calibration(calibration.as_deref())?)
            };
            if format == "json" {
                outln!("{}", serde_json::to_string_pretty(&cmp)?);
                return Ok(());
            }
            let markdown = update_readme.is_some()
                || match format.as_str() {
                    "markdown" | "md" => true,
                    "table" => false,
                    other => bail!("unknown format `{other}`; expected table, markdown or json"),
                };
            let body: Vec<[String; 7]> = runs
                .iter()
                .zip(&cmp)
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
            let table = report::table(&head, &body, markdown);
            let summary = summarise(&runs, &cmp);
            if let Some(path) = update_readme {
                if !holdout {
                    let cal = load_calibration(calibration.as_deref())?;
                    update_section(&path, "calibration", &calibration_table(&cal, true))?;
                }
                let (marker, text) = if holdout {
                    ("holdout", summary)
                } else {
                    ("validation", format!("{summary}\n<details><summary>All {} runs</summary>\n\n{table}\n</details>\n", runs.len()))
                };
                update_section(&path, marker, &text)?;
                eprintln!("updated {} ({marker})", path.display());
                return Ok(());
            }
            out!("{table}");
            outln!();
            out!("{summary}");
            Ok(())
        }
    }
}

/// The fitted parameters, one row per fit, with one-sigma uncertainties of the efficiencies.
fn calibration_table(cal: &Calibration, markdown: bool) -> String {
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
            sigma("memory", e.memory),
            format!("{:.1}", e.kernel_overhead_us),
            sigma("network", e.network),
            format!("{:.2}", e.overlap_exposure),
            format!("{:.2}", e.latency_scale),
            format!("{:.1}%", 100.0 * g.rms_relative_error),
            format!("{:.1}%", 100.0 * g.max_relative_error),
        ]);
    }
    let head = [
        "fit",
        "runs",
        "BF16 matmul",
        "FP8/FP4 matmul",
        "HBM",
        "kernel µs",
        "network",
        "overlap exposed",
        "latency x",
        "rms error",
        "max error",
    ]
    .map(String::from);
    report::table(&head, &body, markdown)
}

fn summarise(runs: &[xpusim::validation::Run], cmp: &[xpusim::validation::Comparison]) -> String {
    let mut sets: Vec<(String, Vec<f64>)> = Vec::new();
    for (r, c) in runs.iter().zip(cmp) {
        let key = Path::new(&r.file)
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        match sets.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c.error.abs()),
            None => sets.push((key, vec![c.error.abs()])),
        }
    }
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
    report::table(
        &["set", "runs", "mean abs error", "max abs error"].map(String::from),
        &body,
        true,
    )
}

/// Replace the text between `<!-- marker:begin -->` and `<!-- marker:end -->` in a file.
fn update_section(path: &Path, marker: &str, text: &str) -> Result<()> {
    let readme =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (begin, end) = (
        format!("<!-- {marker}:begin -->\n"),
        format!("<!-- {marker}:end -->"),
    );
    let (Some(b), Some(e)) = (readme.find(&begin), readme.find(&end)) else {
        bail!(
            "{}: markers `{}` and `{end}` not found",
            path.display(),
            begin.trim_end()
        );
    };
    let updated = format!("{}{}{}{}", &readme[..b], begin, text, &readme[e..]);
    xpusim::io::OutputPath::check(path, &[])?.write(updated.as_bytes())?;
    Ok(())
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        bail!("no run files given");
    }
    Ok(out)
}

fn load_calibration(path: Option<&Path>) -> Result<Calibration> {
    Ok(match path {
        Some(p) => Calibration::load(p)?,
        None => Calibration::shipped()?,
    })
}

fn emit(text: &str, output: Option<&Path>) -> Result<()> {
    match output {
        Some(p) => {
            xpusim::io::OutputPath::check(p, &[])?.write(text.as_bytes())?;
            eprintln!("wrote {}", p.display());
        }
        None => out!("{text}"),
    }
    Ok(())
}

fn fig<T>(f: &Option<Figure<T>>) -> String {
    f.as_ref()
        .map_or_else(|| "n/p".to_string(), |f| f.as_written.clone())
}

fn hardware_list(catalog: &Catalog, format: &str) -> Result<()> {
    match format {
        "json" => {
            #[derive(serde::Serialize)]
            struct Listing<'a> {
                chips: &'a [Chip],
                systems: &'a [xpusim::hardware::System],
            }
            outln!(
                "{}",
                serde_json::to_string_pretty(&Listing {
                    chips: catalog.chips(),
                    systems: catalog.systems()
                })?
            );
        }
        "table" => {
            let body: Vec<[String; 9]> = catalog
                .chips()
                .iter()
                .map(|c| {
                    let tf = |p| {
                        c.peak(p)
                            .map_or_else(|| "n/a".into(), |f| format!("{:.0}", f.value.tera()))
                    };
                    [
                        c.id.clone(),
                        c.name.clone(),
                        tf(Precision::Bf16),
                        tf(Precision::Fp8),
                        tf(Precision::Fp4),
                        c.hbm_capacity
                            .as_ref()
                            .map_or_else(|| "n/p".into(), |f| f.as_written.clone()),
                        fig(&c.hbm_bandwidth),
                        fig(&c.tdp),
                        c.default_system.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let head = [
                "id",
                "name",
                "BF16 TF",
                "FP8 TF",
                "FP4 TF",
                "HBM",
                "HBM BW",
                "power",
                "default system",
            ]
            .map(String::from);
            out!("{}", report::table(&head, &body, false));
            outln!();
            let body: Vec<[String; 5]> = catalog
                .systems()
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.chip.clone(),
                        s.domain_chips.value.to_string(),
                        format!("{:.0} GB/s", s.scale_up.per_direction().gb_per_s()),
                        format!("{:.0} Gbit/s", s.scale_out.per_direction().gbit_per_s()),
                    ]
                })
                .collect();
            let head = [
                "system",
                "chip",
                "chips/domain",
                "scale-up/chip/dir",
                "scale-out/chip/dir",
            ]
            .map(String::from);
            out!("{}", report::table(&head, &body, false));
        }
        other => bail!("unknown format `{other}`; expected table or json"),
    }
    Ok(())
}

fn hardware_show(catalog: &Catalog, id: &str, format: &str) -> Result<()> {
    let (chip, system) = catalog.resolve(id)?;
    let is_system = catalog.system(id).is_ok();
    let domain = system.domain_chips.value;
    let totals: Vec<(Precision, xpusim::hardware::Totals)> = Precision::ALL
        .iter()
        .filter_map(|p| {
            xpusim::hardware::totals(&chip, domain, *p)
                .ok()
                .map(|t| (*p, t))
        })
        .collect();
    match format {
        "json" => {
            let v = serde_json::json!({
                "chip": chip,
                "system": if is_system { serde_json::to_value(&system)? } else { serde_json::Value::Null },
                "default_system": system.id,
                "domain_totals": totals.iter().map(|(p, t)| serde_json::json!({
                    "precision": p.as_str(),
                    "chips": t.chips,
                    "peak_flop_per_s": t.peak.flops_per_second(),
                    "hbm_capacity_bytes": t.hbm_capacity.bytes(),
                    "hbm_bandwidth_bytes_per_s": t.hbm_bandwidth.bytes_per_second(),
                    "power_w": t.power.map(|w| w.watts()),
                    "status": "derived",
                })).collect::<Vec<_>>(),
            });
            outln!("{}", serde_json::to_string_pretty(&v)?);
        }
        "table" => {
            outln!(
                "{} — {} (family {}, vendor {})",
                chip.id,
                chip.name,
                chip.family,
                chip.vendor
            );
            if !chip.aliases.is_empty() {
                outln!("aliases: {}", chip.aliases.join(", "));
            }
            let mut body: Vec<[String; 4]> = Vec::new();
            let mut add = |name: String, f: Option<(&str, &xpusim::hardware::Provenance)>| {
                if let Some((v, p)) = f {
                    let mut src = format!("[{}] {}", p.source.key, p.source.title);
                    if let Some(d) = &p.derivation {
                        src = format!("{d}; {src}");
                    }
                    if let Some(n) = &p.note {
                        src = format!("{src} — {n}");
                    }
                    for a in &p.alternatives {
                        src = format!("{src}; alt {} [{}]", a.value, a.source);
                    }
                    body.push([name, v.to_string(), p.status.as_str().to_string(), src]);
                }
            };
            for p in Precision::ALL {
                if let Some(f) = chip.peak(p) {
                    add(
                        format!("peak {p} (dense)"),
                        Some((&format!("{:.1} TFLOP/s", f.value.tera()), &f.provenance)),
                    );
                }
            }
            let pairs: [(&str, Option<(String, &xpusim::hardware::Provenance)>); 9] = [
                (
                    "HBM capacity",
                    chip.hbm_capacity.as_ref().map(|f| {
                        (
                            format!("{:.1} GB ({:.1} GiB)", f.value.gb(), f.value.gib()),
                            &f.provenance,
                        )
                    }),
                ),
                (
                    "HBM bandwidth",
                    chip.hbm_bandwidth
                        .as_ref()
                        .map(|f| (format!("{:.0} GB/s", f.value.gb_per_s()), &f.provenance)),
                ),
                (
                    "on-chip SRAM",
                    chip.sram
                        .as_ref()
                        .map(|f| (format!("{:.0} MB", f.value.bytes() / 1e6), &f.provenance)),
                ),
                (
                    "scale-up link",
                    chip.scale_up.as_ref().map(|l| {
                        (
                            format!("{} ({})", l.bandwidth.as_written, l.direction.as_str()),
                            &l.bandwidth.provenance,
                        )
                    }),
                ),
                (
                    "scale-out link",
                    chip.scale_out.as_ref().map(|l| {
                        (
                            format!("{} ({})", l.bandwidth.as_written, l.direction.as_str()),
                            &l.bandwidth.provenance,
                        )
                    }),
                ),
                (
                    "TDP",
                    chip.tdp
                        .as_ref()
                        .map(|f| (format!("{:.0} W", f.value.watts()), &f.provenance)),
                ),
                (
                    "typical power",
                    chip.typical_power
                        .as_ref()
                        .map(|f| (format!("{:.0} W", f.value.watts()), &f.provenance)),
                ),
                (
                    "process",
                    chip.process_node
                        .as_ref()
                        .map(|f| (f.value.clone(), &f.provenance)),
                ),
                (
                    "release",
                    chip.release
                        .as_ref()
                        .map(|f| (f.value.clone(), &f.provenance)),
                ),
            ];
            for (name, v) in &pairs {
                add(name.to_string(), v.as_ref().map(|(s, p)| (s.as_str(), *p)));
            }
            for pr in &chip.prices {
                add(
                    format!("price {} ({})", pr.kind, pr.date),
                    Some((
                        &format!(
                            "${:.3}/chip-hour {}",
                            pr.per_chip_hour.usd_per_chip_hour(),
                            pr.instance.clone().unwrap_or_default()
                        ),
                        &pr.provenance,
                    )),
                );
            }
            out!(
                "{}",
                report::table(
                    &["figure", "value", "status", "source"].map(String::from),
                    &body,
                    false
                )
            );
            if !chip.claims.is_empty() {
                outln!("\nclaims:");
                for c in &chip.claims {
                    outln!(
                        "  \"{}\" [{} {}] -> {}",
                        c.text,
                        c.source.key,
                        c.status.as_str(),
                        c.reading
                    );
                }
            }
            outln!(
                "\nsystem {} ({}): {} chips per scale-up domain [{} {}]",
                system.id,
                system.name,
                domain,
                system.domain_chips.provenance.source.key,
                system.domain_chips.provenance.status.as_str()
            );
            for (name, link) in [
                ("scale-up", &system.scale_up),
                ("scale-out", &system.scale_out),
            ] {
                outln!(
                    "  {name}: {} ({}) = {:.1} GB/s per chip per direction [{} {}]",
                    link.bandwidth.as_written,
                    link.direction.as_str(),
                    link.per_direction().gb_per_s(),
                    link.bandwidth.provenance.source.key,
                    link.bandwidth.provenance.status.as_str()
                );
            }
            for (name, lat) in [
                ("scale-up", &system.scale_up_latency),
                ("scale-out", &system.scale_out_latency),
            ] {
                outln!(
                    "  {name} step latency: {:.1} us [{} {}]{}",
                    lat.value.seconds() * 1e6,
                    lat.provenance.source.key,
                    lat.provenance.status.as_str(),
                    lat.provenance
                        .note
                        .as_ref()
                        .map_or_else(String::new, |n| format!(" — {n}"))
                );
            }
            for (p, t) in &totals {
                outln!(
                    "  domain total {p}: {:.1} PFLOP/s, HBM {:.1} TB, {:.1} TB/s{} (derived: {} x per-chip)",
                    t.peak.flops_per_second() / 1e15,
                    t.hbm_capacity.bytes() / 1e12,
                    t.hbm_bandwidth.bytes_per_second() / 1e12,
                    t.power.map_or_else(String::new, |w| format!(", {:.1} kW", w.kilowatts())),
                    t.chips
                );
            }
        }
        other => bail!("unknown format `{other}`; expected table or json"),
    }
    Ok(())
}

fn models(format: &str) -> Result<()> {
    let all = presets()?;
    match format {
        "json" => outln!("{}", serde_json::to_string_pretty(&all)?),
        "table" => {
            let body: Vec<[String; 8]> = all
                .iter()
                .map(|m| {
                    [
                        m.id.clone(),
                        format!("{:.1}B", m.params() / 1e9),
                        format!("{:.1}B", m.active_params() / 1e9),
                        m.layers.to_string(),
                        m.d_model.to_string(),
                        format!("{}/{}", m.heads, m.kv_heads),
                        m.seq_len.to_string(),
                        m.moe.as_ref().map_or_else(
                            || "dense".into(),
                            |x| format!("MoE {}x top-{}", x.experts, x.active),
                        ),
                    ]
                })
                .collect();
            let head = [
                "id",
                "params",
                "active",
                "layers",
                "d_model",
                "heads q/kv",
                "seq",
                "kind",
            ]
            .map(String::from);
            out!("{}", report::table(&head, &body, false));
        }
        other => bail!("unknown format `{other}`; expected table or json"),
    }
    Ok(())
}

fn estimate(catalog: &Catalog, a: EstimateArgs) -> Result<()> {
    let model = if Path::new(&a.model).is_file() || a.model.ends_with(".toml") {
        let text = std::fs::read_to_string(&a.model)
            .with_context(|| format!("reading model file {}", a.model))?;
        let mut v = parse_models(&a.model, &text)?;
        if v.len() != 1 {
            bail!(
                "{}: define exactly one [[models]] entry, found {}",
                a.model,
                v.len()
            );
        }
        v.remove(0)
    } else {
        preset(&a.model)?
    };
    if a.chips == 0 {
        bail!("--chips: a cluster needs at least one chip");
    }
    let mut cluster = catalog.cluster(&a.hardware, a.chips)?;
    if let Some(g) = a.scale_out_gbps {
        cluster = cluster.with_scale_out(BytesPerSecond::from_gbit_per_s(g))?;
    }
    if let Some(d) = a.domain_chips {
        cluster = cluster.with_domain_chips(d)?;
    }
    let precision = Precision::parse(&a.precision)?;
    let seq_len = a.seq_len.unwrap_or(model.seq_len);
    let global_batch = match a.global_batch_tokens {
        Some(t) => TrainingSetup::sequences_for_tokens(t, seq_len)?,
        None => a.global_batch,
    };
    let mut setup = TrainingSetup::new(global_batch, seq_len, a.tokens, precision)?;
    setup.optimizer_states = match a.optimizer_states.as_str() {
        "fp32" => OptimizerStates::Fp32,
        "bf16" => OptimizerStates::Bf16,
        other => bail!("--optimizer-states: unknown precision `{other}`; expected fp32 or bf16"),
    };
    setup.main_grads = match a.main_grads.as_str() {
        "fp32" => MainGrads::Fp32,
        "bf16" => MainGrads::Bf16,
        other => bail!("--main-grads: unknown precision `{other}`; expected bf16 or fp32"),
    };
    setup.attention = match a.attention.as_str() {
        "flash" => AttentionKernel::Flash,
        "unfused" => AttentionKernel::Unfused,
        other => bail!("--attention: unknown kernel `{other}`; expected flash or unfused"),
    };
    setup.tp_comm_overlap = !a.no_tp_overlap;
    setup.dp_comm_overlap = !a.no_dp_overlap;
    setup.hierarchical_collectives = !a.flat_collectives;
    let any_layout = a.tp.is_some()
        || a.pp.is_some()
        || a.dp.is_some()
        || a.cp.is_some()
        || a.ep.is_some()
        || a.microbatch.is_some()
        || a.virtual_stages.is_some()
        || a.recompute.is_some()
        || a.zero.is_some()
        || a.zero_group.is_some();
    let request = if any_layout {
        let d = LayoutRequest::default();
        Some(LayoutRequest {
            tp: a.tp.unwrap_or(d.tp),
            pp: a.pp.unwrap_or(d.pp),
            dp: a.dp,
            cp: a.cp.unwrap_or(d.cp),
            ep: a.ep.unwrap_or(d.ep),
            microbatch: a.microbatch.unwrap_or(d.microbatch),
            virtual_stages: a.virtual_stages.unwrap_or(d.virtual_stages),
            recompute: match &a.recompute {
                Some(r) => Recompute::parse(r)?,
                None => d.recompute,
            },
            sequence_parallel: None,
            zero: a.zero.unwrap_or(d.zero),
            zero_group: a.zero_group.unwrap_or(0),
            allow_tp_scale_out: a.allow_tp_scale_out,
        })
    } else {
        None
    };
    let cal = load_calibration(a.calibration.as_deref())?;
    let format = Format::parse(&a.format)?;
    let e = evaluate_case(&model, &setup, &cluster, request.as_ref(), &cal)?;
    let row = Row::new(&a.hardware, &e).with_economics(
        &e,
        &cluster.chip,
        &a.economics.facility()?,
        a.economics.price()?,
    );
    if format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&row)?);
        return Ok(());
    }
    out!("{}", report::render(&[Ok(row.clone())], format)?);
    if format == Format::Table {
        let b = &row.breakdown;
        outln!(
            "\n{} on {} x {} ({}), {} layout{}",
            model.id,
            row.chips,
            row.chip,
            row.system,
            if request.is_some() {
                "given"
            } else {
                "searched"
            },
            if request.is_some() {
                String::new()
            } else {
                " (fastest that fits)".into()
            }
        );
        outln!(
            "FLOPs per token: {:.4e} exact, {:.4e} by 6N ({:+.1}%)",
            row.flops_per_token,
            row.six_n_flops_per_token,
            100.0 * (row.six_n_flops_per_token / row.flops_per_token - 1.0)
        );
        outln!("step breakdown (s): matmul {:.4}  memory-bound {:.4}  kernel overhead {:.4}  (recompute {:.4})", b.matmul_s, b.memory_bound_s, b.kernel_overhead_s, b.recompute_s);
        outln!(
            "  exposed comm: TP {:.4}  CP {:.4}  EP {:.4}  PP {:.4}  DP {:.4}  (scale-up {:.4}, scale-out {:.4})",
            b.tp_comm_s, b.cp_comm_s, b.ep_comm_s, b.pp_comm_s, b.dp_comm_s, b.scale_up_comm_s, b.scale_out_comm_s
        );
        outln!(
            "  bubble {:.4}  optimizer {:.4}  total {:.4}{}",
            b.bubble_s,
            b.optimizer_s,
            row.step_time_s,
            row.expected_error.map_or_else(String::new, |x| format!(
                "  (expected error ±{:.0}%: held-out studies of fit `{}`)",
                100.0 * x,
                row.calibration
            ))
        );
        outln!(
            "bound by {} ({:.0}% of the step); calibration: {}{}",
            row.bound_by,
            100.0 * row.bound_share,
            row.calibration,
            if row.calibration_fallback {
                format!(
                    " (stand-in: no measured run of group `{}` was fitted; expect errors above the fitted \
                     groups' 4-9% held-out error, up to the ~25% of a family never measured; see README)",
                    cluster.chip.calibration_group
                )
            } else {
                String::new()
            }
        );
        let x = &row.economics;
        outln!(
            "energy: {} MWh at PUE {} ({} MW facility, chip TDP), {} t CO2e; cost: {}",
            x.energy_mwh
                .map_or_else(|| "n/p (no power figure)".into(), |v| format!("{v:.1}")),
            x.pue,
            x.facility_power_mw
                .map_or_else(|| "n/p".into(), |v| format!("{v:.2}")),
            x.co2_tonnes
                .map_or_else(|| "n/p".into(), |v| format!("{v:.0}")),
            match (x.cost_usd, &x.price_basis) {
                (Some(c), Some(b)) => format!("${c:.4e} ({b})"),
                _ => "n/p (no price in the catalog; give --price)".into(),
            }
        );
        let m = e.memory();
        outln!(
            "memory per chip: {:.1} GB = weights {:.1} + gradients {:.1} + optimizer {:.1} + activations {:.1} + buffers {:.1}",
            m.total().gb(),
            m.weights.gb(),
            m.gradients.gb(),
            m.optimizer.gb(),
            m.activations.gb(),
            m.buffers.gb()
        );
    }
    Ok(())
}
