//! The `xpusim` command-line tool: parses the command line and dispatches to one file per
//! command. Everything is computed and rendered by the library.

mod args;
mod capacity;
mod estimate;
mod manual;
mod measured;
mod merge;
mod scenario;

use anyhow::Result;
use args::{Cli, Command, HardwareCommand};
use clap::Parser;
use std::io::Write;
use std::path::Path;
use xpusim::io::OutputPath;
use xpusim::{report, Catalog, Problem};

/// Exit status when a scenario ran but some of its cases could not.
pub const EXIT_PARTIAL: i32 = 3;

/// An outcome that is not an error but is not a full success either.
#[derive(Debug)]
pub struct Partial(pub String);
impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Partial {}

fn main() {
    let Err(e) = run() else { return };
    // A reader that stops early (`xpusim ... | head`) is not an error.
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return;
    }
    eprintln!("error: {e:#}");
    std::process::exit(if e.is::<Partial>() { EXIT_PARTIAL } else { 1 });
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    // The built-in catalog resolves only what a command looks up. It is leaked on purpose: it
    // lives as long as the process, and freeing it figure by figure at exit would only cost time
    // (an eighth of `hardware list`).
    let catalog: &Catalog = Box::leak(Box::new(Catalog::with_user_files(&cli.catalog)?));
    match cli.command {
        Command::Hardware { command } => match command {
            HardwareCommand::Compare { a, b } => emit(&report::compare(catalog, &a, &b)?, None),
            HardwareCommand::List { format } => {
                emit(&report::hardware_list(catalog, format)?, None)
            }
            HardwareCommand::Show { id, format } => {
                emit(&report::hardware_show(catalog, &id, format)?, None)
            }
        },
        Command::Models { format } => emit(&report::models(format)?, None),
        Command::Estimate(a) => estimate::run(catalog, &a),
        Command::Capacity(a) => capacity::run(catalog, &a),
        Command::Completions { shell } => emit(&manual::completions(shell), None),
        Command::Man => emit(&manual::page()?, None),
        Command::Run(a) => scenario::run(catalog, &a),
        Command::Merge { files, output } => merge::run(&files, output.as_deref()),
        Command::Calibrate { runs, output } => measured::calibrate(catalog, &runs, &output),
        Command::Validate {
            runs,
            calibration,
            format,
            holdout,
            update_readme,
        } => measured::validate(
            catalog,
            &runs,
            calibration.as_deref(),
            format,
            holdout,
            update_readme.as_deref(),
        ),
    }
}

/// Print `text`, or write it whole to `output` (checked beforehand with [`OutputPath::check`]).
pub fn emit(text: &str, output: Option<&OutputPath>) -> Result<()> {
    let mut d = Destination::open(output)?;
    d.write_all(text.as_bytes()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => anyhow::Error::new(e),
        _ => anyhow::Error::new(e).context("writing the output"),
    })?;
    d.finish()
}

/// Where a command's rows go as they are made: a file that appears whole when finished (and not
/// at all on an error), or standard output.
pub enum Destination {
    /// `-o FILE`.
    File(xpusim::io::PendingFile),
    /// Standard output.
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
}

impl Destination {
    /// Start writing to `output`, or to standard output.
    pub fn open(output: Option<&OutputPath>) -> Result<Self> {
        Ok(match output {
            Some(p) => Self::File(p.start()?),
            None => Self::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
        })
    }

    /// Finish: commit the file (and say so), or flush standard output.
    pub fn finish(self) -> Result<()> {
        match self {
            Self::File(f) => {
                let path = f.path().to_path_buf();
                f.commit()?;
                eprintln!("wrote {}", path.display());
            }
            Self::Stdout(mut w) => w.flush().map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => anyhow::Error::new(e),
                _ => anyhow::Error::new(e).context("writing to standard output"),
            })?,
        }
        Ok(())
    }
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(f) => f.write(buf),
            Self::Stdout(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(f) => f.flush(),
            Self::Stdout(w) => w.flush(),
        }
    }
}

/// The calibration to use: the file given, else the shipped one.
pub fn calibration(path: Option<&Path>) -> Result<xpusim::Calibration> {
    Ok(match path {
        Some(p) => xpusim::Calibration::load(p)?,
        None => xpusim::Calibration::shipped()?,
    })
}

/// The flag a request key comes from (`layout.virtual_stages` → `--virtual-stages`).
pub fn flag(key: &str) -> String {
    let k = key.strip_prefix("layout.").unwrap_or(key);
    match k {
        "scale_out_gbit_per_chip" => "--scale-out-gbps".into(),
        "grid_kg_co2_per_kwh" => "--grid-kg-per-kwh".into(),
        "price_usd_per_chip_hour" => "--price".into(),
        "" => "command line".into(),
        k => format!("--{}", k.replace('_', "-")),
    }
}

/// Command-line problems as one error, each naming its flag.
pub fn flagged(problems: Vec<Problem>) -> anyhow::Error {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", flag(&p.key), p.reason))
        .collect();
    anyhow::anyhow!("{}", lines.join("\n  "))
}
