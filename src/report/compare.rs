//! Two chips (or systems) side by side: the ratios a vendor's or the press's claim is about, from
//! the catalog's figures, with the claims recorded for either chip beside them.

use super::table;
use crate::economics::PowerInputs;
use crate::error::Result;
use crate::hardware::{Catalog, Chip, Precision, System};
use std::fmt::Write;

/// One compared quantity: its name, the two values and their ratio.
fn row(name: &str, a: Option<f64>, b: Option<f64>, unit: &str) -> [String; 4] {
    let show = |v: Option<f64>| {
        v.map_or_else(
            || "n/p".to_string(),
            |x| {
                let h = super::human(x);
                // "2.52 P" + "FLOP/s" reads 2.52 PFLOP/s; a bare number keeps its space.
                if h.ends_with(char::is_alphabetic) {
                    format!("{h}{unit}")
                } else {
                    format!("{h} {unit}").trim_end().to_string()
                }
            },
        )
    };
    let ratio = match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "n/p".into(),
    };
    [name.to_string(), show(a), show(b), ratio]
}

/// The figures compared for one chip in its system.
struct Side {
    chip: Chip,
    system: System,
}

impl Side {
    fn peak(&self, p: Precision) -> Option<f64> {
        self.chip.peak(p).map(|f| f.value.flops_per_second())
    }
    fn tdp(&self) -> Option<f64> {
        self.chip.tdp.as_ref().map(|f| f.value.watts())
    }
    /// All-in facility power per chip at full load (PUE 1: the IT load) from the power model.
    fn all_in(&self) -> Option<f64> {
        PowerInputs::from_catalog(&self.chip, &self.system).map(|p| p.facility(1.0, 1.0).watts())
    }
    fn domain(&self) -> f64 {
        self.system.domain_chips.value as f64
    }
}

/// `a` against `b`: peaks, memory, power, FLOP per watt per chip and per system (all-in), and
/// each chip's recorded claims, so a claim ("40% better energy efficiency", "4.4x") can be held
/// against the figures.
///
/// ```
/// let c = xpusim::Catalog::builtin()?;
/// let t = xpusim::report::compare(&c, "trn3-ultraserver-gen2", "trn2-ultraserver")?;
/// assert!(t.contains("FP8 FLOP/s per system") && t.contains("claims"));
/// # Ok::<(), xpusim::Error>(())
/// ```
///
/// # Errors
/// An unknown id.
pub fn compare(catalog: &Catalog, a: &str, b: &str) -> Result<String> {
    let side = |id: &str| -> Result<Side> {
        let (chip, system) = catalog.resolve(id)?;
        Ok(Side { chip, system })
    };
    let (x, y) = (side(a)?, side(b)?);
    let per_w = |s: &Side, p: Precision, w: Option<f64>| s.peak(p).zip(w).map(|(f, w)| f / w);
    let mut body = vec![
        row(
            "FP8 FLOP/s per chip",
            x.peak(Precision::Fp8),
            y.peak(Precision::Fp8),
            "FLOP/s",
        ),
        row(
            "BF16 FLOP/s per chip",
            x.peak(Precision::Bf16),
            y.peak(Precision::Bf16),
            "FLOP/s",
        ),
        row(
            "HBM per chip",
            x.chip.hbm_capacity.as_ref().map(|f| f.value.bytes()),
            y.chip.hbm_capacity.as_ref().map(|f| f.value.bytes()),
            "B",
        ),
        row(
            "HBM bandwidth per chip",
            x.chip
                .hbm_bandwidth
                .as_ref()
                .map(|f| f.value.bytes_per_second()),
            y.chip
                .hbm_bandwidth
                .as_ref()
                .map(|f| f.value.bytes_per_second()),
            "B/s",
        ),
        row("chip power (TDP)", x.tdp(), y.tdp(), "W"),
        row(
            "FP8 FLOP/s per chip watt",
            per_w(&x, Precision::Fp8, x.tdp()),
            per_w(&y, Precision::Fp8, y.tdp()),
            "FLOP/J",
        ),
        row("all-in power per chip (IT)", x.all_in(), y.all_in(), "W"),
        row(
            "FP8 FLOP/s per all-in watt",
            per_w(&x, Precision::Fp8, x.all_in()),
            per_w(&y, Precision::Fp8, y.all_in()),
            "FLOP/J",
        ),
        row("chips per system", Some(x.domain()), Some(y.domain()), ""),
        row(
            "FP8 FLOP/s per system",
            x.peak(Precision::Fp8).map(|f| f * x.domain()),
            y.peak(Precision::Fp8).map(|f| f * y.domain()),
            "FLOP/s",
        ),
        row(
            "all-in power per system",
            x.all_in().map(|w| w * x.domain()),
            y.all_in().map(|w| w * y.domain()),
            "W",
        ),
    ];
    body.retain(|r| !(r[1] == "n/p" && r[2] == "n/p"));
    let head = [
        "figure".to_string(),
        format!("{} ({})", x.chip.id, x.system.id),
        format!("{} ({})", y.chip.id, y.system.id),
        "ratio".to_string(),
    ];
    let mut s = table(&head, &body, false);
    let _ = writeln!(
        s,
        "\nFigures marked derived or projection in `hardware show` (e.g. a TDP derived from an efficiency claim) make the matching ratio a restatement of that claim, not a check of it."
    );
    let _ = writeln!(s, "\nclaims:");
    for side in [&x, &y] {
        for c in &side.chip.claims {
            let _ = writeln!(
                s,
                "  {}: \"{}\" [{} {}] -> {}",
                side.chip.id,
                c.text,
                c.source.key,
                c.status.as_str(),
                c.reading
            );
        }
    }
    Ok(s)
}
