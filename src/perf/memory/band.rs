//! The memory verdict: a margin against HBM and a band that admits the model's own error.

use crate::units::Bytes;
use serde::{Deserialize, Serialize};

/// Relative error of the memory model: a prediction up to this much above the HBM capacity is
/// "tight", not "does not fit". An assumption: the envelope this project already allowed
/// published runs that really ran (`tests/it/validation.rs`), which the largest excess among them
/// (10.3%, NVIDIA dgxc-benchmarking Nemotron-4 340B on 128 H100 with 12 interleaved stages per
/// rank) sits inside; frameworks trim memory in ways the model does not itemise (allocator
/// reuse, early frees, offload). Published per-GPU figures are met within ±10%
/// (`tests/data/memory`).
pub const MEMORY_MODEL_ERROR: f64 = 0.15;

/// Where a memory need falls against the capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryBand {
    /// At or below the capacity.
    Fits,
    /// Above the capacity by less than [`MEMORY_MODEL_ERROR`]: within the model's error, so it
    /// may well run. Feasible; the layout search ranks it after every layout that fits.
    Tight,
    /// Above the capacity by more than the model's error.
    DoesNotFit,
}

impl MemoryBand {
    /// The band of `need` against `capacity`.
    ///
    /// ```
    /// use xpusim::MemoryBand;
    /// use xpusim::units::Bytes;
    /// let cap = Bytes::from_gb(80.0);
    /// assert_eq!(MemoryBand::of(Bytes::from_gb(79.0), cap), MemoryBand::Fits);
    /// assert_eq!(MemoryBand::of(Bytes::from_gb(83.2), cap), MemoryBand::Tight);
    /// assert_eq!(MemoryBand::of(Bytes::from_gb(95.0), cap), MemoryBand::DoesNotFit);
    /// ```
    #[must_use]
    pub fn of(need: Bytes, capacity: Bytes) -> Self {
        if need <= capacity {
            Self::Fits
        } else if need <= capacity * (1.0 + MEMORY_MODEL_ERROR) {
            Self::Tight
        } else {
            Self::DoesNotFit
        }
    }

    /// Whether a layout in this band is accepted (fits or tight).
    #[must_use]
    pub fn feasible(self) -> bool {
        self != Self::DoesNotFit
    }

    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fits => "fits",
            Self::Tight => "tight",
            Self::DoesNotFit => "does-not-fit",
        }
    }
}

/// Free HBM per chip as a fraction of the capacity: positive when the need fits, negative by
/// the relative excess when it does not (−0.04: 4% over).
#[must_use]
pub fn memory_margin(need: Bytes, capacity: Bytes) -> f64 {
    if capacity > Bytes::ZERO {
        1.0 - need / capacity
    } else {
        f64::NEG_INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    /// A run 4% over is tight (feasible), one over by more than the model's error is not.
    #[test]
    fn four_percent_over_is_tight() {
        let cap = Bytes::from_gb(80.0);
        assert_eq!(MemoryBand::of(cap * 1.04, cap), MemoryBand::Tight);
        assert!(MemoryBand::Tight.feasible());
        let over = cap * (1.0 + MEMORY_MODEL_ERROR) + Bytes::from_gb(0.1);
        assert_eq!(MemoryBand::of(over, cap), MemoryBand::DoesNotFit);
        assert_relative_eq!(memory_margin(cap * 1.04, cap), -0.04, max_relative = 1e-9);
        assert_relative_eq!(memory_margin(cap * 0.75, cap), 0.25, max_relative = 1e-9);
    }

    proptest! {
        /// The band never improves as the need grows.
        #[test]
        fn band_is_monotone(a in 0.0f64..400.0, b in 0.0f64..400.0, cap in 1.0f64..300.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let cap = Bytes::from_gb(cap);
            prop_assert!(MemoryBand::of(Bytes::from_gb(lo), cap) <= MemoryBand::of(Bytes::from_gb(hi), cap));
        }
    }
}
