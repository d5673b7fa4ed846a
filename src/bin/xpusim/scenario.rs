//! `xpusim run`: a scenario file.

use crate::args::RunArgs;
use crate::{calibration, Destination, Partial};
use anyhow::Result;
use std::io::Write;
use xpusim::io::{read_input, OutputPath};
use xpusim::report::{self, Format, Outcome, Row, RowWriter};
use xpusim::units::UsdPerChipHour;
use xpusim::{assess, chip_hours_for_budget, Catalog, Scenario};

pub fn run(catalog: &Catalog, a: &RunArgs) -> Result<()> {
    let (path, format, economics) = (a.scenario.as_path(), a.format, &a.economics);
    let (output, calibration_file, plot) = (
        a.output.as_deref(),
        a.calibration.as_deref(),
        a.plot.as_deref(),
    );
    let mut inputs = vec![path];
    inputs.extend(calibration_file);
    let output = output.map(|o| OutputPath::check(o, &inputs)).transpose()?;
    if cfg!(not(feature = "plot")) && plot.is_some() {
        anyhow::bail!(
            "--plot needs the `plot` feature, which this build lacks; rebuild with `cargo install xpusim --features plot` (or the default features)"
        );
    }
    if plot.is_some() && plot == output.as_ref().map(OutputPath::path) {
        anyhow::bail!("--plot and --output name the same file; give two paths");
    }
    let plot = plot.map(|p| OutputPath::check(p, &inputs)).transpose()?;
    let s = Scenario::parse(&path.display().to_string(), &read_input(path)?, catalog)?;
    // Shard I of N holds cases I-1, I-1+N, ...: `xpusim merge` restores the file's order by
    // interleaving.
    let keep = |i: usize| a.shard.is_none_or(|sh| i % sh.count == sh.index - 1);
    if let Some(sh) = a.shard {
        if !(0..s.len()).any(keep) {
            anyhow::bail!(
                "--shard {}/{}: the scenario has fewer cases than shards; this slice is empty",
                sh.index,
                sh.count
            );
        }
    }
    let cal = calibration(calibration_file)?;
    let over = economics.request();
    let (mut failed, mut total) = (0usize, 0usize);
    // Tables need every row (column widths, the summary) and so does the plot; CSV and JSON
    // stream, so a sweep of millions of cases runs in flat memory.
    let streaming = matches!(format, Format::Csv | Format::Json);
    // Rows kept for a table or a plot, and their case numbers.
    let (mut kept, mut kept_at): (Vec<Outcome>, Vec<usize>) = (Vec::new(), Vec::new());
    let mut sink = Destination::open(output.as_ref())?;
    let mut writer = streaming.then(|| RowWriter::new(&mut sink, format));
    s.for_each(&cal, &over, keep, |i, r| -> Result<()> {
        total += 1;
        let outcome = match r {
            Ok((case, Ok((answer, economics)))) => {
                let e = &answer.estimate;
                let a = assess(e, &case.cluster.chip, &case.cluster.system, &economics);
                Ok(Row::new(&case.hardware, e).with_assessment(a))
            }
            Ok((case, Err(reason))) => Err((case.hardware, case.cluster.chips, reason.to_string())),
            Err(reason) => {
                let (id, chips) = s.case_label(i).unwrap_or(("?", 0));
                Err((id.to_string(), chips, reason.to_string()))
            }
        };
        failed += usize::from(outcome.is_err());
        if let Some(w) = writer.as_mut() {
            w.push(&outcome)?;
        }
        if !streaming || plot.is_some() {
            kept.push(outcome);
            kept_at.push(i);
        }
        Ok(())
    })?;
    if let Some(w) = writer {
        w.finish()?;
    } else {
        let mut out = String::new();
        if format == Format::Table {
            out.push_str(&format!(
                "{}\n{}\nmodel {} ({:.1}B parameters), global batch {} x {} tokens, {:.3e} tokens, {}\n\n",
                s.name,
                s.description,
                s.model.id,
                s.model.params() / 1e9,
                s.setup.global_batch(),
                s.setup.seq_len(),
                s.setup.tokens(),
                s.setup.precision()
            ));
        }
        out.push_str(&report::render(&kept, format)?);
        if format == Format::Table {
            out.push_str(&summary(&s, &kept_at, &kept));
        }
        sink.write_all(out.as_bytes())?;
    }
    sink.finish()?;
    if let Some(plot) = plot {
        draw(&s.name, &kept, &plot)?;
    }
    if failed > 0 {
        return Err(Partial(format!(
            "{}: {failed} of {total} case(s) could not run (see the `cannot run` rows)",
            path.display(),
        ))
        .into());
    }
    Ok(())
}

/// Write the figure of the rows that ran (`--plot`); nothing when none did.
#[cfg(feature = "plot")]
fn draw(title: &str, rows: &[Outcome], plot: &OutputPath) -> Result<()> {
    let ok: Vec<Row> = rows
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    if ok.is_empty() {
        eprintln!("no case ran; {} not written", plot.path().display());
        return Ok(());
    }
    plot.write(report::plot_svg(&ok, title)?.as_bytes())?;
    Ok(())
}

/// Refused before anything runs (see [`run`]).
#[cfg(not(feature = "plot"))]
fn draw(_: &str, _: &[Outcome], _: &OutputPath) -> Result<()> {
    Ok(())
}

/// The lines under a scenario's table: each case against the baseline, and what the budget buys.
/// `rows` are the scenario's cases' rows in the cases' order, `at` their case numbers.
fn summary(s: &Scenario, at: &[usize], rows: &[Outcome]) -> String {
    let mut out = String::new();
    let ok: Vec<&Row> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
    if let Some(base) = s.baseline.as_ref().and_then(|b| {
        at.iter().zip(rows).find_map(|(i, r)| {
            r.as_ref()
                .ok()
                .filter(|_| s.case_label(*i).is_some_and(|(id, _)| id == b))
        })
    }) {
        out.push_str(&format!(
            "\nagainst {} ({} chips):\n",
            base.hardware, base.chips
        ));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "n/p".into(),
        };
        for r in &ok {
            out.push_str(&format!(
                "  {:<24} {:>6} chips: time {}  cost {}  energy {}  cost/Mtok {}\n",
                r.hardware,
                r.chips,
                ratio(
                    Some(r.economics.effective_train_days),
                    Some(base.economics.effective_train_days)
                ),
                ratio(r.economics.cost_usd, base.economics.cost_usd),
                ratio(r.economics.energy_mwh, base.economics.energy_mwh),
                ratio(
                    r.economics.cost_per_mtok_usd,
                    base.economics.cost_per_mtok_usd
                ),
            ));
        }
    }
    if let Some(b) = s.budget {
        out.push_str(&format!(
            "\nUSD {:.3e} over {} years buys:\n",
            b.usd.usd(),
            b.years
        ));
        for r in &ok {
            match (r.economics.price_usd_per_chip_hour, r.economics.cost_usd) {
                (Some(p), Some(c)) if p > 0.0 && c > 0.0 => {
                    let (hours, held) =
                        chip_hours_for_budget(b.usd, UsdPerChipHour::new(p), b.years);
                    out.push_str(&format!(
                        "  {:<24} {:.3e} chip-hours at ${p:.2}/h = {:.0} chips held on average; {:.1} runs of this size{}\n",
                        r.hardware,
                        hours,
                        held,
                        b.usd.usd() / c,
                        if r.economics.price_assumed { " (estimated price)" } else { "" }
                    ));
                }
                _ => out.push_str(&format!("  {:<24} n/p (no price)\n", r.hardware)),
            }
        }
    }
    out
}
