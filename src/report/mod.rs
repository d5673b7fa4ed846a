//! Results as rows: human table, JSON, CSV and Markdown. Files are written whole or not at all
//! ([`crate::io::OutputPath::write`]).

use crate::economics::Assessment;
use crate::error::{Error, Result};
use crate::parallelism::Layout;
use crate::perf::MemoryBand;
use crate::plan::{Estimate, Feasibility};
use serde::Serialize;

/// Step-time breakdown in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakdownRow {
    /// Matmuls.
    pub matmul_s: f64,
    /// Memory-bound kernels.
    pub memory_bound_s: f64,
    /// Per-kernel costs.
    pub kernel_overhead_s: f64,
    /// Recompute (part of the three above).
    pub recompute_s: f64,
    /// Exposed tensor-parallel communication.
    pub tp_comm_s: f64,
    /// Exposed context-parallel communication.
    pub cp_comm_s: f64,
    /// Exposed expert all-to-all.
    pub ep_comm_s: f64,
    /// Exposed pipeline point-to-point.
    pub pp_comm_s: f64,
    /// Exposed activation offload to host memory and back.
    pub offload_s: f64,
    /// Exposed data-parallel communication.
    pub dp_comm_s: f64,
    /// Exposed communication on scale-up links.
    pub scale_up_comm_s: f64,
    /// Exposed communication on the scale-out network.
    pub scale_out_comm_s: f64,
    /// Pipeline bubble.
    pub bubble_s: f64,
    /// Optimizer step.
    pub optimizer_s: f64,
}

/// One result row (the JSON schema documented in the README).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Chip or system id as asked.
    pub hardware: String,
    /// Chip id.
    pub chip: String,
    /// System id.
    pub system: String,
    /// Chips.
    pub chips: u64,
    /// Model id.
    pub model: String,
    /// Layout.
    pub layout: Layout,
    /// Whether its memory is accepted: it fits in HBM, or is tight (over by less than the
    /// memory model's error, [`crate::MEMORY_MODEL_ERROR`]).
    pub fits_memory: bool,
    /// `fits`, `tight` or `does-not-fit`.
    pub memory_band: MemoryBand,
    /// Free HBM as a fraction of the capacity; negative by the relative excess when over.
    pub memory_margin: f64,
    /// Why not, when it does not (`null` when it fits).
    pub infeasible_reason: Option<String>,
    /// Memory per chip, decimal GB.
    pub memory_per_chip_gb: f64,
    /// Step time, seconds.
    pub step_time_s: f64,
    /// Whole-cluster tokens per second.
    pub tokens_per_s: f64,
    /// Model FLOPs utilisation (against the training format's dense peak).
    pub mfu: f64,
    /// Hardware FLOPs utilisation: FLOPs executed (causal half with flash attention, recompute
    /// counted) over peak; never above 1.
    pub hfu: f64,
    /// Model FLOPs utilisation with causal attention counted as half the score square (a
    /// convention that cannot exceed 1; `mfu` counts the full square, as published runs do).
    pub mfu_causal: f64,
    /// Model TFLOP/s per chip.
    pub model_tflops_per_chip: f64,
    /// Days to train the tokens (no failures).
    pub train_days: f64,
    /// Chip-hours to train.
    pub chip_hours: f64,
    /// What bounds the step.
    pub bound_by: String,
    /// Share of the step taken by `bound_by`.
    pub bound_share: f64,
    /// Exact training FLOPs per token.
    pub flops_per_token: f64,
    /// 6·N per token, for comparison.
    pub six_n_flops_per_token: f64,
    /// Calibration fit used.
    pub calibration: String,
    /// True when the chip's own calibration group had no fitted runs and a family or global
    /// fit stands in (expect the larger, held-out errors of the README).
    pub calibration_fallback: bool,
    /// Whether the fit saw a run of this chip (false: a sibling's fit, with a widened error).
    pub chip_measured: bool,
    /// Relative step-time error to expect: rms over the fit's studies, each predicted by a fit
    /// made without it (`null` when the fit rests on a single study).
    pub expected_error: Option<f64>,
    /// What lies beyond the runs the calibration was fitted on (`cp 8 > 4`; empty inside).
    pub extrapolation: Vec<String>,
    /// Breakdown.
    pub breakdown: BreakdownRow,
    /// Cost, power, energy, carbon and goodput ([`crate::economics`]; flattened into the row).
    #[serde(flatten)]
    pub economics: Assessment,
}

impl Row {
    /// From an estimate.
    #[must_use]
    pub fn new(hardware: &str, e: &Estimate) -> Self {
        let b = &e.prediction.breakdown;
        let p = &e.prediction;
        Self {
            hardware: hardware.to_string(),
            chip: e.chip.clone(),
            system: e.system.clone(),
            chips: e.chips,
            model: e.model.clone(),
            layout: e.layout,
            fits_memory: p.fits_memory,
            memory_band: p.memory_band,
            memory_margin: p.memory_margin,
            infeasible_reason: match &e.feasibility {
                Feasibility::Feasible => None,
                Feasibility::Infeasible(r) => Some(r.clone()),
            },
            memory_per_chip_gb: p.memory.total().gb(),
            step_time_s: p.step_time.seconds(),
            tokens_per_s: p.tokens_per_second,
            mfu: p.mfu,
            hfu: p.hfu,
            mfu_causal: p.mfu_causal,
            model_tflops_per_chip: p.model_flops_per_chip.tera(),
            train_days: e.train_time.days(),
            chip_hours: e.chip_hours,
            bound_by: p.bound_by.as_str().into(),
            bound_share: p.bound_share,
            flops_per_token: e.flops_per_token.flops(),
            six_n_flops_per_token: e.six_n_flops_per_token.flops(),
            calibration: e.calibration_group.clone(),
            calibration_fallback: e.calibration_fallback,
            chip_measured: e.chip_measured,
            expected_error: e.expected_error,
            extrapolation: e.extrapolation.clone(),
            economics: Assessment::default(),
            breakdown: BreakdownRow {
                matmul_s: b.matmul.seconds(),
                memory_bound_s: b.memory_bound.seconds(),
                kernel_overhead_s: b.kernel_overhead.seconds(),
                recompute_s: b.recompute.seconds(),
                tp_comm_s: b.tp_comm.seconds(),
                cp_comm_s: b.cp_comm.seconds(),
                ep_comm_s: b.ep_comm.seconds(),
                pp_comm_s: b.pp_comm.seconds(),
                offload_s: b.offload.seconds(),
                dp_comm_s: b.dp_comm.seconds(),
                scale_up_comm_s: b.scale_up_comm.seconds(),
                scale_out_comm_s: b.scale_out_comm.seconds(),
                bubble_s: b.bubble.seconds(),
                optimizer_s: b.optimizer.seconds(),
            },
        }
    }
}

impl Row {
    /// With the run's cost, power, energy and goodput.
    #[must_use]
    pub fn with_assessment(mut self, a: Assessment) -> Self {
        self.economics = a;
        self
    }
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// JSON array.
    Json,
    /// CSV with a header.
    Csv,
    /// A Markdown table.
    Markdown,
}

/// A quantity for people: three significant digits and an SI prefix (`5.89 M`, `12.1 k`).
///
/// ```
/// use xpusim::report::human;
/// assert_eq!(human(5_888_500.0), "5.89 M");
/// assert_eq!(human(12_057_000.0), "12.1 M");
/// assert_eq!(human(0.417), "0.417");
/// assert_eq!(human(1.4224e8), "142 M");
/// ```
#[must_use]
pub fn human(x: f64) -> String {
    if !x.is_finite() {
        return "n/p".into();
    }
    let prefixes = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
    ];
    let (v, p) = prefixes
        .iter()
        .find(|(s, _)| x.abs() >= *s)
        .map_or((x, ""), |(s, p)| (x / s, *p));
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let n = format!("{v:.digits$}");
    let n = if p.is_empty() && x.abs() < 1.0 {
        format!("{x:.3}")
    } else {
        n
    };
    if p.is_empty() {
        n
    } else {
        format!("{n} {p}")
    }
}

/// `v` as (dotted key, text) pairs; `null` as an empty cell.
fn flatten(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                flatten(x, &key(k), out);
            }
        }
        serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// JSON records as CSV: one column per dotted key of any record (nested objects flattened, in
/// the order keys first appear), one line per record; a key a record lacks is an empty cell.
///
/// ```
/// let rows = [serde_json::json!({"a": 1, "b": {"c": "x"}}), serde_json::json!({"a": 2, "d": true})];
/// assert_eq!(xpusim::report::records_csv(&rows)?, "a,b.c,d\n1,x,\n2,,true\n");
/// # Ok::<(), xpusim::Error>(())
/// ```
///
/// # Errors
/// Serialisation errors (not expected).
pub fn records_csv(records: &[serde_json::Value]) -> Result<String> {
    let flat: Vec<Vec<(String, String)>> = records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            flatten(r, "", &mut out);
            out
        })
        .collect();
    let mut head: Vec<&str> = Vec::new();
    for (k, _) in flat.iter().flatten() {
        if !head.contains(&k.as_str()) {
            head.push(k);
        }
    }
    let io = |e: csv::Error| Error::input("output", e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&head).map_err(io)?;
    for f in &flat {
        let rec = head.iter().map(|h| {
            f.iter()
                .find(|(k, _)| k == h)
                .map_or("", |(_, v)| v.as_str())
        });
        w.write_record(rec).map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::input("output", e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| Error::input("output", e.to_string()))
}

/// What the table's abbreviations mean.
pub const LEGEND: &str = "\nlayout: TP tensor, PP pipeline, DP data, CP context, EP expert parallel; mb sequences per micro-batch; \
v interleaved stages; none/selective/mlp/full recompute (full:N a block of N layers per chunk, +module a module recomputed beyond the policy); Z ZeRO stage; fits: yes, tight +N% (over HBM by less than the memory model's error, accepted) or NO. MFU s²: model FLOPs with attention scores over the \
full s x s square (the published runs' convention; above 100% at long context, where a causal kernel computes half of it); \
MFU causal: scores over the causal half (never above HFU, so never above 100%). days (failures): without and with expected \
interruptions. MWh, avg MW: facility energy and mean facility power, all-in. cost $: on the row's price basis; * an estimated price.\n";

/// A result row or the reason a case could not run.
pub type Outcome = std::result::Result<Row, (String, u64, String)>;

const COLUMNS: [&str; 17] = [
    "hardware",
    "chips",
    "layout",
    "fits",
    "mem GB",
    "step s",
    "tokens/s",
    "MFU s²",
    "MFU causal",
    "HFU",
    "days (failures)",
    "chip-hours",
    "bound by",
    "MWh",
    "avg MW",
    "cost $",
    "note",
];

fn cells(o: &Outcome) -> [String; 17] {
    match o {
        Ok(r) => [
            r.hardware.clone(),
            r.chips.to_string(),
            format!(
                "TP{} PP{} DP{} CP{} EP{} mb{}{} {} Z{}",
                r.layout.tp,
                r.layout.pp,
                r.layout.dp,
                r.layout.cp,
                r.layout.ep,
                r.layout.microbatch,
                if r.layout.virtual_stages > 1 {
                    format!(" v{}", r.layout.virtual_stages)
                } else {
                    String::new()
                },
                r.layout.recompute_label(),
                r.layout.zero
            ),
            match r.memory_band {
                MemoryBand::Fits => "yes".into(),
                MemoryBand::Tight => format!("tight {:+.0}%", -100.0 * r.memory_margin),
                MemoryBand::DoesNotFit => "NO".into(),
            },
            format!("{:.1}", r.memory_per_chip_gb),
            format!("{:.3}", r.step_time_s),
            human(r.tokens_per_s),
            format!("{:.1}%", 100.0 * r.mfu),
            format!("{:.1}%", 100.0 * r.mfu_causal),
            format!("{:.1}%", 100.0 * r.hfu),
            format!(
                "{:.2} ({:.2})",
                r.train_days, r.economics.effective_train_days
            ),
            human(r.chip_hours),
            format!("{} ({:.0}%)", r.bound_by, 100.0 * r.bound_share),
            r.economics.energy_mwh.map_or_else(|| "n/p".into(), human),
            r.economics
                .avg_power_mw
                .map_or_else(|| "n/p".into(), |x| format!("{x:.1}")),
            r.economics.cost_usd.map_or_else(
                || "n/p".into(),
                |x| {
                    format!(
                        "${}{}",
                        human(x),
                        if r.economics.price_assumed { "*" } else { "" }
                    )
                },
            ),
            {
                let mut notes = Vec::new();
                if let Some(why) = &r.infeasible_reason {
                    notes.push(why.clone());
                } else if !r.extrapolation.is_empty() {
                    notes.push(format!(
                        "beyond fitted runs: {}",
                        r.extrapolation.join(", ")
                    ));
                }
                if !r.chip_measured {
                    notes.push(format!("no {} run measured (fit of its group)", r.chip));
                }
                notes.join("; ")
            },
        ],
        Err((hw, chips, reason)) => {
            let mut c: [String; 17] = Default::default();
            c[0] = hw.clone();
            c[1] = chips.to_string();
            c[16] = format!("cannot run: {reason}");
            c
        }
    }
}

/// Render rows in a format.
///
/// # Errors
/// Serialisation errors (not expected).
pub fn render(rows: &[Outcome], format: Format) -> Result<String> {
    match format {
        Format::Json | Format::Csv => {
            let mut w = RowWriter::new(Vec::new(), format);
            for r in rows {
                w.push(r)?;
            }
            String::from_utf8(w.finish()?).map_err(|e| Error::input("output", e.to_string()))
        }
        Format::Table | Format::Markdown => {
            let body: Vec<[String; 17]> = rows.iter().map(cells).collect();
            let mut t = table(
                &COLUMNS.map(String::from),
                &body,
                format == Format::Markdown,
            );
            t.push_str(LEGEND);
            Ok(t)
        }
    }
}

/// Rows written as they come, in CSV or JSON (an array of rows), so that a sweep's output
/// needs no more memory than one row: JSON is written exactly as one pretty-printed array
/// would be; CSV has every column of the JSON row (nested keys joined with dots) plus `error`,
/// its header taken from the first row that ran (rows that could not run before it wait).
///
/// ```
/// use xpusim::report::{Format, RowWriter};
/// let mut w = RowWriter::new(Vec::new(), Format::Csv);
/// w.push(&Err(("trn3".into(), 7, "no valid layout".into())))?;
/// let text = String::from_utf8(w.finish()?).unwrap_or_default();
/// assert_eq!(text, "hardware,chips,error\ntrn3,7,no valid layout\n");
/// # Ok::<(), xpusim::Error>(())
/// ```
#[derive(Debug)]
pub struct RowWriter<W: std::io::Write> {
    w: W,
    format: Format,
    rows: usize,
    /// CSV: the columns, once a row that ran has given them.
    head: Option<Vec<String>>,
    /// CSV: rows that could not run, waiting for the header.
    waiting: Vec<(String, u64, String)>,
}

impl<W: std::io::Write> RowWriter<W> {
    /// A writer of `format` (CSV or JSON; a table needs every row first, see [`render`]).
    #[must_use]
    pub fn new(w: W, format: Format) -> Self {
        Self {
            w,
            format,
            rows: 0,
            head: None,
            waiting: Vec::new(),
        }
    }

    fn io(e: impl std::fmt::Display) -> Error {
        Error::input("output", e.to_string())
    }

    fn write_err(source: std::io::Error) -> Error {
        Error::Io {
            path: "<output>".into(),
            source,
        }
    }

    fn csv_err(e: csv::Error) -> Error {
        match e.into_kind() {
            csv::ErrorKind::Io(source) => Self::write_err(source),
            other => Error::input("output", format!("{other:?}")),
        }
    }

    /// Write one row.
    ///
    /// # Errors
    /// Write errors of the sink (a full disk, a closed pipe).
    pub fn push(&mut self, o: &Outcome) -> Result<()> {
        self.rows += 1;
        match self.format {
            Format::Csv => self.push_csv(o),
            _ => {
                let v = match o {
                    Ok(r) => serde_json::to_value(r).map_err(Self::io)?,
                    Err((hw, chips, reason)) => {
                        serde_json::json!({"hardware": hw, "chips": chips, "error": reason})
                    }
                };
                let text = serde_json::to_string_pretty(&v).map_err(Self::io)?;
                let sep = if self.rows == 1 { "[\n" } else { ",\n" };
                self.w.write_all(sep.as_bytes()).map_err(Self::write_err)?;
                for (k, line) in text.lines().enumerate() {
                    if k > 0 {
                        self.w.write_all(b"\n").map_err(Self::write_err)?;
                    }
                    self.w.write_all(b"  ").map_err(Self::write_err)?;
                    self.w.write_all(line.as_bytes()).map_err(Self::write_err)?;
                }
                Ok(())
            }
        }
    }

    fn push_csv(&mut self, o: &Outcome) -> Result<()> {
        match o {
            Err(e) if self.head.is_none() => {
                self.waiting.push(e.clone());
                Ok(())
            }
            Err(e) => self.error_record(e),
            Ok(r) => {
                let mut flat = Vec::new();
                flatten(&serde_json::to_value(r).map_err(Self::io)?, "", &mut flat);
                if self.head.is_none() {
                    let mut head: Vec<String> = flat.iter().map(|(k, _)| k.clone()).collect();
                    head.push("error".into());
                    self.record(&head)?;
                    self.head = Some(head);
                    for e in std::mem::take(&mut self.waiting) {
                        self.error_record(&e)?;
                    }
                }
                let mut rec: Vec<String> = flat.into_iter().map(|(_, v)| v).collect();
                rec.push(String::new());
                self.record(&rec)
            }
        }
    }

    fn error_record(&mut self, (hw, chips, reason): &(String, u64, String)) -> Result<()> {
        let head = self.head.as_deref().unwrap_or_default();
        let rec: Vec<String> = head
            .iter()
            .map(|h| match h.as_str() {
                "hardware" => hw.clone(),
                "chips" => chips.to_string(),
                "error" => reason.clone(),
                _ => String::new(),
            })
            .collect();
        self.record(&rec)
    }

    fn record(&mut self, fields: &[String]) -> Result<()> {
        let mut w = csv::WriterBuilder::new().from_writer(&mut self.w);
        w.write_record(fields).map_err(Self::csv_err)?;
        w.flush().map_err(Self::write_err)
    }

    /// Close the output (the JSON array's bracket; a CSV of rows that all failed gets its
    /// header) and give the sink back.
    ///
    /// # Errors
    /// Write errors of the sink.
    pub fn finish(mut self) -> Result<W> {
        match self.format {
            Format::Csv => {
                if self.head.is_none() {
                    let head: Vec<String> =
                        ["hardware", "chips", "error"].map(String::from).to_vec();
                    self.record(&head)?;
                    self.head = Some(head);
                    for e in std::mem::take(&mut self.waiting) {
                        self.error_record(&e)?;
                    }
                }
            }
            _ => {
                let end: &[u8] = if self.rows == 0 { b"[]\n" } else { b"\n]\n" };
                self.w.write_all(end).map_err(Self::write_err)?;
            }
        }
        self.w.flush().map_err(Self::write_err)?;
        Ok(self.w)
    }
}

/// Lay out a table as aligned text or Markdown.
#[must_use]
pub fn table<const N: usize>(head: &[String; N], body: &[[String; N]], markdown: bool) -> String {
    let mut width = head.iter().map(|h| h.chars().count()).collect::<Vec<_>>();
    for r in body {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Numeric columns (every non-empty cell a number, an amount or `n/p`) are right-aligned.
    let numeric: Vec<bool> = (0..N)
        .map(|i| {
            body.iter().any(|r| !r[i].is_empty())
                && body.iter().all(|r| {
                    let c = r[i].trim_start_matches(['$', '+', '-']);
                    c.is_empty() || c == "n/p" || c.starts_with(|ch: char| ch.is_ascii_digit())
                })
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&width)
            .zip(&numeric)
            .map(|((c, w), right)| {
                if *right {
                    format!("{c:>w$}", w = *w)
                } else {
                    format!("{c:<w$}", w = *w)
                }
            })
            .collect();
        if markdown {
            format!("| {} |", parts.join(" | "))
        } else {
            parts.join("  ").trim_end().to_string()
        }
    };
    let mut out = vec![line(head)];
    if markdown {
        out.push(format!(
            "|{}|",
            width
                .iter()
                .zip(&numeric)
                .map(|(w, right)| if *right {
                    format!("{}:", "-".repeat(w + 1))
                } else {
                    "-".repeat(w + 2)
                })
                .collect::<Vec<_>>()
                .join("|")
        ));
    } else {
        out.push(
            width
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
    }
    out.extend(body.iter().map(|r| line(r)));
    out.join("\n") + "\n"
}

mod compare;
mod hardware;
pub use compare::compare;
pub use hardware::{hardware_list, hardware_show, models};

/// Formats of the listing commands (`hardware`, `models`, `validate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum TextFormat {
    /// Aligned text for a terminal.
    Table,
    /// JSON.
    Json,
    /// Markdown tables.
    Markdown,
}

mod validation;
pub use validation::{calibration_table, comparison_table, residual_table, summarise};

mod estimate;
pub use estimate::estimate_details;

#[cfg(feature = "plot")]
mod plot;
#[cfg(feature = "plot")]
pub use plot::plot_svg;
