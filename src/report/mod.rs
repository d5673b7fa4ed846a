//! Results as rows: human table, JSON, CSV and Markdown. Files are written whole or not at all
//! ([`crate::io::OutputPath::write`]).

use crate::cost::{catalog_price, cost, PriceUsed};
use crate::error::{Error, Result};
use crate::hardware::Chip;
use crate::parallelism::Layout;
use crate::plan::{Estimate, Feasibility};
use crate::request::Economics;
use crate::units::UsdPerChipHour;
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
    /// Whether it fits in HBM.
    pub fits_memory: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infeasible_reason: Option<String>,
    /// Memory per chip, decimal GB.
    pub memory_per_chip_gb: f64,
    /// Step time, seconds.
    pub step_time_s: f64,
    /// Whole-cluster tokens per second.
    pub tokens_per_s: f64,
    /// Model FLOPs utilisation (against the training format's dense peak).
    pub mfu: f64,
    /// Hardware FLOPs utilisation (recompute counted).
    pub hfu: f64,
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
    /// Relative step-time error to expect: rms over the fit's studies, each predicted by a fit
    /// made without it (`null` when the fit rests on a single study).
    pub expected_error: Option<f64>,
    /// Breakdown.
    pub breakdown: BreakdownRow,
    /// Energy, carbon and cost, when the chip has a power figure or a price.
    pub economics: EconomicsRow,
}

/// Facility power, energy, location-based carbon and rental cost of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EconomicsRow {
    /// Power usage effectiveness applied.
    pub pue: f64,
    /// Facility power of the cluster at chip TDP, MW (absent without a power figure).
    pub facility_power_mw: Option<f64>,
    /// Facility energy to train, MWh.
    pub energy_mwh: Option<f64>,
    /// Location-based emissions, tonnes CO2e.
    pub co2_tonnes: Option<f64>,
    /// Rental cost, USD (absent without a price).
    pub cost_usd: Option<f64>,
    /// The price used, USD per chip-hour.
    pub price_usd_per_chip_hour: Option<f64>,
    /// Kind, date and source of the price.
    pub price_basis: Option<String>,
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
            infeasible_reason: match &e.feasibility {
                Feasibility::Feasible => None,
                Feasibility::Infeasible(r) => Some(r.clone()),
            },
            memory_per_chip_gb: p.memory.total().gb(),
            step_time_s: p.step_time.seconds(),
            tokens_per_s: p.tokens_per_second,
            mfu: p.mfu,
            hfu: p.hfu,
            model_tflops_per_chip: p.model_flops_per_chip.tera(),
            train_days: e.train_time.days(),
            chip_hours: e.chip_hours,
            bound_by: p.bound_by.as_str().into(),
            bound_share: p.bound_share,
            flops_per_token: e.flops_per_token.flops(),
            six_n_flops_per_token: e.six_n_flops_per_token.flops(),
            calibration: e.calibration_group.clone(),
            calibration_fallback: e.calibration_fallback,
            expected_error: e.expected_error,
            economics: EconomicsRow::default(),
            breakdown: BreakdownRow {
                matmul_s: b.matmul.seconds(),
                memory_bound_s: b.memory_bound.seconds(),
                kernel_overhead_s: b.kernel_overhead.seconds(),
                recompute_s: b.recompute.seconds(),
                tp_comm_s: b.tp_comm.seconds(),
                cp_comm_s: b.cp_comm.seconds(),
                ep_comm_s: b.ep_comm.seconds(),
                pp_comm_s: b.pp_comm.seconds(),
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
    /// Add energy, carbon and cost: chip TDP x chips x time x PUE, and chip-hours x `price` (the
    /// chip's latest on-demand catalog price when `price` is `None`).
    #[must_use]
    pub fn with_economics(mut self, e: &Estimate, chip: &Chip, economics: &Economics) -> Self {
        let Economics { facility, price } = economics;
        let price: Option<UsdPerChipHour> = *price;
        let energy = chip
            .tdp
            .as_ref()
            .map(|p| facility.energy(p.value, e.chips, e.train_time));
        let price = match price {
            Some(p) => Some(PriceUsed {
                per_chip_hour: p,
                kind: "user".into(),
                date: String::new(),
                source: "--price".into(),
            }),
            None => catalog_price(chip, "on-demand"),
        };
        self.economics = EconomicsRow {
            pue: facility.pue,
            facility_power_mw: chip
                .tdp
                .as_ref()
                .map(|p| facility.power(p.value, e.chips).watts() / 1e6),
            energy_mwh: energy.map(|j| j.megawatt_hours()),
            co2_tonnes: energy.map(|j| facility.tonnes_co2(j)),
            cost_usd: price
                .as_ref()
                .map(|p| cost(e.chip_hours, p.per_chip_hour).usd()),
            price_usd_per_chip_hour: price.as_ref().map(|p| p.per_chip_hour.usd_per_chip_hour()),
            price_basis: price.map(|p| {
                format!("{} {} {}", p.kind, p.date, p.source)
                    .trim()
                    .to_string()
            }),
        };
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

impl Format {
    /// Parse `table`, `json`, `csv`, `markdown`.
    ///
    /// # Errors
    /// [`Error::Input`] for other text.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "markdown" | "md" => Ok(Self::Markdown),
            other => Err(Error::input(
                "format",
                format!("unknown format `{other}`; expected table, json, csv or markdown"),
            )),
        }
    }
}

/// A result row or the reason a case could not run.
pub type Outcome = std::result::Result<Row, (String, u64, String)>;

const COLUMNS: [&str; 15] = [
    "hardware",
    "chips",
    "layout",
    "fits",
    "mem GB",
    "step s",
    "tokens/s",
    "MFU",
    "HFU",
    "days",
    "chip-hours",
    "bound by",
    "MWh",
    "cost $",
    "note",
];

fn cells(o: &Outcome) -> [String; 15] {
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
                r.layout.recompute.as_str(),
                r.layout.zero
            ),
            if r.fits_memory {
                "yes".into()
            } else {
                "NO".into()
            },
            format!("{:.1}", r.memory_per_chip_gb),
            format!("{:.3}", r.step_time_s),
            format!("{:.4e}", r.tokens_per_s),
            format!("{:.1}%", 100.0 * r.mfu),
            format!("{:.1}%", 100.0 * r.hfu),
            format!("{:.2}", r.train_days),
            format!("{:.4e}", r.chip_hours),
            format!("{} ({:.0}%)", r.bound_by, 100.0 * r.bound_share),
            r.economics
                .energy_mwh
                .map_or_else(|| "n/p".into(), |x| format!("{x:.4e}")),
            r.economics
                .cost_usd
                .map_or_else(|| "n/p".into(), |x| format!("{x:.4e}")),
            r.infeasible_reason.clone().unwrap_or_default(),
        ],
        Err((hw, chips, reason)) => {
            let mut c: [String; 15] = Default::default();
            c[0] = hw.clone();
            c[1] = chips.to_string();
            c[14] = format!("cannot run: {reason}");
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
        Format::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|o| match o {
                    Ok(r) => serde_json::to_value(r),
                    Err((hw, chips, reason)) => {
                        Ok(serde_json::json!({"hardware": hw, "chips": chips, "error": reason}))
                    }
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::input("output", e.to_string()))?;
            serde_json::to_string_pretty(&v)
                .map(|s| s + "\n")
                .map_err(|e| Error::input("output", e.to_string()))
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let io = |e: csv::Error| Error::input("output", e.to_string());
            w.write_record([
                "hardware",
                "chips",
                "tp",
                "pp",
                "dp",
                "cp",
                "ep",
                "microbatch",
                "virtual_stages",
                "recompute",
                "zero",
                "fits_memory",
                "memory_per_chip_gb",
                "step_time_s",
                "tokens_per_s",
                "mfu",
                "hfu",
                "train_days",
                "chip_hours",
                "bound_by",
                "energy_mwh",
                "cost_usd",
                "error",
            ])
            .map_err(io)?;
            for o in rows {
                let rec: Vec<String> = match o {
                    Ok(r) => vec![
                        r.hardware.clone(),
                        r.chips.to_string(),
                        r.layout.tp.to_string(),
                        r.layout.pp.to_string(),
                        r.layout.dp.to_string(),
                        r.layout.cp.to_string(),
                        r.layout.ep.to_string(),
                        r.layout.microbatch.to_string(),
                        r.layout.virtual_stages.to_string(),
                        r.layout.recompute.as_str().to_string(),
                        r.layout.zero.to_string(),
                        r.fits_memory.to_string(),
                        r.memory_per_chip_gb.to_string(),
                        r.step_time_s.to_string(),
                        r.tokens_per_s.to_string(),
                        r.mfu.to_string(),
                        r.hfu.to_string(),
                        r.train_days.to_string(),
                        r.chip_hours.to_string(),
                        r.bound_by.clone(),
                        r.economics
                            .energy_mwh
                            .map_or_else(String::new, |x| x.to_string()),
                        r.economics
                            .cost_usd
                            .map_or_else(String::new, |x| x.to_string()),
                        String::new(),
                    ],
                    Err((hw, chips, reason)) => {
                        let mut v = vec![String::new(); 23];
                        v[0] = hw.clone();
                        v[1] = chips.to_string();
                        v[22] = reason.clone();
                        v
                    }
                };
                w.write_record(&rec).map_err(io)?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| Error::input("output", e.to_string()))?;
            String::from_utf8(bytes).map_err(|e| Error::input("output", e.to_string()))
        }
        Format::Table | Format::Markdown => {
            let body: Vec<[String; 15]> = rows.iter().map(cells).collect();
            Ok(table(
                &COLUMNS.map(String::from),
                &body,
                format == Format::Markdown,
            ))
        }
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
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
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
                .map(|w| "-".repeat(w + 2))
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

mod hardware;
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
