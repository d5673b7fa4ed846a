//! Rental cost of a training run: chip-hours × a dated price from the catalog (or the user's).
//!
//! Every published dollar figure for a training run is chip-hours times an assumed rate; so is
//! this one. The price carries its date, region, instance and source, because cloud prices move
//! (AWS cut P5 prices by ~45% in June 2025).

use crate::hardware::{Chip, Price, Status};
use crate::units::{Usd, UsdPerChipHour};
use serde::Serialize;

/// The price a cost was computed with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriceUsed {
    /// Dollars per chip-hour.
    pub per_chip_hour: UsdPerChipHour,
    /// Price kind (`on-demand`, `capacity-block`, ...), or `user`.
    pub kind: String,
    /// When the price was read.
    pub date: String,
    /// Source key and instance, or `--price` for a user price.
    pub source: String,
    /// Status of the figure (`official`, `press`, `assumed`, ...).
    pub status: Status,
}

impl PriceUsed {
    /// Whether the price is an estimate rather than a published figure.
    #[must_use]
    pub fn is_estimate(&self) -> bool {
        matches!(self.status, Status::Assumed | Status::Press)
    }
}

/// The latest price of `kind` (e.g. `on-demand`) in the chip's catalog entry.
#[must_use]
pub fn catalog_price(chip: &Chip, kind: &str) -> Option<PriceUsed> {
    chip.prices
        .iter()
        .filter(|p| p.kind == kind)
        .max_by(|a, b| a.date.cmp(&b.date))
        .map(|p: &Price| PriceUsed {
            per_chip_hour: p.per_chip_hour,
            kind: p.kind.clone(),
            date: p.date.clone(),
            status: p.provenance.status,
            source: format!(
                "[{}] {}{}",
                p.provenance.source.key,
                p.instance.clone().unwrap_or_default(),
                p.region
                    .as_ref()
                    .map_or_else(String::new, |r| format!(", {r}"))
            ),
        })
}

/// Cost of `chip_hours` at `price`.
///
/// ```
/// use xpusim::cost;
/// use xpusim::units::UsdPerChipHour;
/// assert_eq!(cost(1000.0, UsdPerChipHour::new(2.0)).usd().round(), 2000.0);
/// ```
#[must_use]
pub fn cost(chip_hours: f64, price: UsdPerChipHour) -> Usd {
    Usd::new(chip_hours.max(0.0) * price.usd_per_chip_hour())
}

/// Chip-hours a `budget` buys at `price`, and the chips it keeps busy for `years`
/// ([`crate::units::HOURS_PER_YEAR`] each).
///
/// ```
/// use xpusim::chip_hours_for_budget;
/// use xpusim::units::{Usd, UsdPerChipHour};
/// let (hours, chips) = chip_hours_for_budget(Usd::new(38e9), UsdPerChipHour::new(6.88), 7.0);
/// assert!(hours > 5.5e9 && chips > 90_000.0 && chips < 91_000.0);
/// ```
#[must_use]
pub fn chip_hours_for_budget(budget: Usd, price: UsdPerChipHour, years: f64) -> (f64, f64) {
    let p = price.usd_per_chip_hour();
    if !(p > 0.0 && years > 0.0) {
        return (0.0, 0.0);
    }
    let hours = budget.usd().max(0.0) / p;
    (hours, hours / (years * crate::units::HOURS_PER_YEAR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;

    #[test]
    fn the_latest_on_demand_price_is_used() {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let h100 = c.chip("h100-sxm").unwrap_or_else(|e| panic!("{e}"));
        let p = catalog_price(h100, "on-demand")
            .unwrap_or_else(|| panic!("h100 has an on-demand price"));
        assert!(
            (p.per_chip_hour.usd_per_chip_hour() - 6.88).abs() < 0.01,
            "{p:?}"
        );
        // Every chip is priced; where nothing is published the price is an estimate.
        let trn3 = c.chip("trn3").unwrap_or_else(|e| panic!("{e}"));
        assert!(catalog_price(trn3, "on-demand").is_some());
        assert!(trn3
            .prices
            .iter()
            .any(|p| p.kind == "on-demand" && p.provenance.status.as_str() == "assumed"));
    }
}
