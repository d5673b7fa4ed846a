//! What each catalog quantity accepts: its units (with their factor to SI) and a sane range of
//! SI values. A value outside its range is refused with the key, never clamped: `1e300 PFLOP/s`
//! would overflow to infinity and `1e-310 B` is a subnormal typo, and both would poison every
//! total derived from them.

use crate::error::Problem;
use std::fmt::Display;

/// An inclusive range of acceptable values of one quantity, in SI units, with its rationale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SaneRange {
    /// Smallest accepted value (always > 0).
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// The SI unit the bounds are in, for messages.
    pub unit: &'static str,
    /// Why the bounds are where they are.
    pub why: &'static str,
}

impl SaneRange {
    /// Whether `v` is a normal (finite, non-zero, non-subnormal) number inside the range.
    ///
    /// ```
    /// use xpusim::hardware::limits::PEAK_FLOPS;
    /// assert!(PEAK_FLOPS.contains(1e15));
    /// assert!(!PEAK_FLOPS.contains(1e300 * 1e15)); // inf
    /// assert!(!PEAK_FLOPS.contains(f64::NAN));
    /// ```
    #[must_use]
    pub fn contains(&self, v: f64) -> bool {
        v.is_normal() && v >= self.min && v <= self.max
    }

    /// `v` when it is inside the range, or a problem at `key` saying why not (the key is only
    /// written out then: pass `format_args!`).
    pub(crate) fn check(&self, v: f64, key: impl Display) -> Result<f64, Problem> {
        if self.contains(v) {
            Ok(v)
        } else {
            Err(Problem::new(
                key.to_string(),
                format!(
                    "{v:e} {} is outside the sane range {:e} to {:e} {} ({})",
                    self.unit, self.min, self.max, self.unit, self.why
                ),
            ))
        }
    }
}

/// Dense peak FLOP/s per chip: 1 GFLOP/s (a microcontroller) to 10 EFLOP/s (1000x today's largest).
pub const PEAK_FLOPS: SaneRange = SaneRange {
    min: 1e9,
    max: 1e19,
    unit: "FLOP/s",
    why: "1 GFLOP/s to 1000x the largest chip today",
};

/// Memory per chip (HBM or SRAM): 1 MB to 10 TB.
pub const MEMORY_BYTES: SaneRange = SaneRange {
    min: 1e6,
    max: 1e13,
    unit: "B",
    why: "1 MB of SRAM to 10 TB of HBM per chip",
};

/// Bandwidth per chip (HBM, scale-up, scale-out): 1 MB/s to 1 PB/s.
pub const BANDWIDTH: SaneRange = SaneRange {
    min: 1e6,
    max: 1e15,
    unit: "B/s",
    why: "1 MB/s to 100x the fastest HBM today",
};

/// Power per chip: 1 W to 1 MW.
pub const POWER: SaneRange = SaneRange {
    min: 1.0,
    max: 1e6,
    unit: "W",
    why: "1 W to 1 MW per chip, a thousand times any chip's TDP",
};

/// Latency of one collective step: 1 ns to 1 s.
pub const LATENCY: SaneRange = SaneRange {
    min: 1e-9,
    max: 1.0,
    unit: "s",
    why: "1 ns (one hop on die) to 1 s (longer is a unit mistake)",
};

/// Price per chip-hour: above zero (a budget is divided by it) up to 10 000 USD.
pub const PRICE: SaneRange = SaneRange {
    min: 1e-6,
    max: 1e4,
    unit: "USD/chip-hour",
    why: "a micro-dollar to 100x the dearest rental; zero would make every budget infinite",
};

/// Capital cost per chip (purchase price, or a network share): 100 USD to 10 million USD.
pub const CAPEX: SaneRange = SaneRange {
    min: 100.0,
    max: 1e7,
    unit: "USD",
    why: "a NIC's share of a switch to 100x the dearest accelerator with its server share",
};

/// Power of a whole system (a server, a rack, a pod): 1 W to 10 GW.
pub const SYSTEM_POWER: SaneRange = SaneRange {
    min: 1.0,
    max: 1e10,
    unit: "W",
    why: "1 W to 10 GW, several times the largest AI campus announced",
};

/// Chips in one scale-up domain: 1 to 10 million.
pub const DOMAIN_CHIPS: SaneRange = SaneRange {
    min: 1.0,
    max: 1e7,
    unit: "chips",
    why: "1 chip to 1000x the largest pod today",
};

/// Dimensions of a torus scale-up network: a 1-D ring to a 6-D torus (Fujitsu's Tofu
/// interconnect is 6-D; TPU pods are 2-D and 3-D).
pub const TORUS_DIMS: SaneRange = SaneRange {
    min: 1.0,
    max: 6.0,
    unit: "dimensions",
    why: "a ring (1) to a 6-D torus (Tofu); TPU pods are 2-D or 3-D",
};

/// Softmax exponentials per second of a chip's special-function units: 1 G to 10 P per second.
pub const EXP_RATE: SaneRange = SaneRange {
    min: 1e9,
    max: 1e16,
    unit: "exp/s",
    why: "1 Gexp/s to a thousand times today's fastest special-function units",
};

/// Matrix units of a chip (GPU streaming multiprocessors, systolic arrays), or a systolic array's
/// side: 1 to 100,000.
pub const MATRIX_UNITS: SaneRange = SaneRange {
    min: 1.0,
    max: 1e5,
    unit: "",
    why: "one array to a hundred times today's largest GPU's multiprocessors or a TPU array's side",
};

/// `divided_by` / `multiplied_by` of a figure: chips an instance figure covers, or links per
/// chip: 1 to 1 million.
pub const SHARE_FACTOR: SaneRange = SaneRange {
    min: 1.0,
    max: 1e6,
    unit: "",
    why: "an instance or rack covers 1 to a million chips; a chip has 1 to a million links",
};

/// The multiple of a `[[chips.derive]]` rule: 1/1000 to 1000.
pub const DERIVE_FACTOR: SaneRange = SaneRange {
    min: 1e-3,
    max: 1e3,
    unit: "",
    why: "generation-to-generation multiples are 0.1x to 100x; 1000x is a typo",
};

/// Chips in one cluster: 1 to 10^12, a thousand times a billion-chip cluster; every integer
/// product of this with a domain size or layout dimension still fits a `u64`.
pub const MAX_CLUSTER_CHIPS: u64 = 1_000_000_000_000;

/// The longest id (chip, system, alias, family, calibration group, source key).
pub const MAX_ID_CHARS: usize = 64;

/// The longest display name (chip, system, vendor).
pub const MAX_NAME_CHARS: usize = 200;

/// The kinds of quantity a figure may hold, with the units each accepts (factor to SI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    FlopRate,
    Memory,
    Bandwidth,
    Power,
    Time,
    Price,
    /// Capital cost per chip in US dollars.
    Capex,
    /// Power of a whole system (server, rack, pod), not per chip.
    SystemPower,
    /// A whole number of chips; takes no unit.
    Chips,
    /// Dimensions of a torus network; takes no unit.
    TorusDims,
    /// Matrix units or a systolic array's side; takes no unit.
    MatrixUnits,
    /// Exponentials per second (the special-function units' softmax rate).
    ExpRate,
}

impl Kind {
    fn units(self) -> &'static [(&'static str, f64)] {
        match self {
            Self::FlopRate => &[("GFLOP/s", 1e9), ("TFLOP/s", 1e12), ("PFLOP/s", 1e15)],
            Self::Memory => &[
                ("B", 1.0),
                ("MB", 1e6),
                ("GB", 1e9),
                ("TB", 1e12),
                ("MiB", 1_048_576.0),
                ("GiB", 1_073_741_824.0),
                ("TiB", 1_099_511_627_776.0),
            ],
            Self::Bandwidth => &[
                ("GB/s", 1e9),
                ("TB/s", 1e12),
                ("GiB/s", 1_073_741_824.0),
                ("TiB/s", 1_099_511_627_776.0),
                ("Gbit/s", 1e9 / 8.0),
                ("Tbit/s", 1e12 / 8.0),
            ],
            Self::Power => &[("W", 1.0), ("kW", 1e3), ("MW", 1e6)],
            Self::Time => &[("us", 1e-6), ("ms", 1e-3), ("s", 1.0)],
            Self::Price => &[("USD/chip-hour", 1.0)],
            Self::Capex => &[("USD", 1.0), ("kUSD", 1e3), ("MUSD", 1e6)],
            Self::SystemPower => &[("W", 1.0), ("kW", 1e3), ("MW", 1e6), ("GW", 1e9)],
            Self::ExpRate => &[("Gexp/s", 1e9), ("Texp/s", 1e12)],
            Self::Chips | Self::TorusDims | Self::MatrixUnits => &[],
        }
    }

    /// The sane range of SI values of this quantity.
    pub(crate) fn range(self) -> &'static SaneRange {
        match self {
            Self::FlopRate => &PEAK_FLOPS,
            Self::Memory => &MEMORY_BYTES,
            Self::Bandwidth => &BANDWIDTH,
            Self::Power => &POWER,
            Self::Time => &LATENCY,
            Self::Price => &PRICE,
            Self::Capex => &CAPEX,
            Self::SystemPower => &SYSTEM_POWER,
            Self::Chips => &DOMAIN_CHIPS,
            Self::TorusDims => &TORUS_DIMS,
            Self::MatrixUnits => &MATRIX_UNITS,
            Self::ExpRate => &EXP_RATE,
        }
    }

    /// SI factor of `unit`, or a problem at `key.unit` naming the accepted units.
    pub(crate) fn factor(self, unit: Option<&str>, key: impl Display) -> Result<f64, Problem> {
        let units = self.units();
        if units.is_empty() {
            return match unit {
                None => Ok(1.0),
                Some(u) => Err(Problem::new(
                    format!("{key}.unit"),
                    format!("a count takes no unit, got `{u}`"),
                )),
            };
        }
        if let Some((_, f)) = unit.and_then(|u| units.iter().find(|(name, _)| *name == u)) {
            return Ok(*f);
        }
        let accepted = units
            .iter()
            .map(|(u, _)| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let reason = match unit {
            None => format!("missing unit; expected one of {accepted}"),
            Some(u) => format!("cannot parse unit `{u}`; expected one of {accepted}"),
        };
        Err(Problem::new(format!("{key}.unit"), reason))
    }
}

/// A problem at `key` unless `id` is lowercase kebab-case of at most [`MAX_ID_CHARS`].
pub(crate) fn check_id(id: &str, key: impl Display) -> Option<Problem> {
    let kebab = !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let n = id.chars().count();
    if n > MAX_ID_CHARS {
        Some(Problem::new(
            key.to_string(),
            format!("too long ({n} characters); an id has at most {MAX_ID_CHARS}"),
        ))
    } else if !kebab {
        Some(Problem::new(
            key.to_string(),
            format!("`{id}` must be lowercase kebab-case (e.g. `my-chip`)"),
        ))
    } else {
        None
    }
}

/// A problem at `key` unless `key_name` is a source key: letters, digits, `-` or `_`, at most
/// [`MAX_ID_CHARS`].
pub(crate) fn check_source_key(name: &str, key: impl Display) -> Option<Problem> {
    let n = name.chars().count();
    let ok = n > 0
        && n <= MAX_ID_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!ok).then(|| {
        Problem::new(
            key.to_string(),
            format!(
                "a source key is 1 to {MAX_ID_CHARS} letters, digits, `-` or `_` ({n} characters given)"
            ),
        )
    })
}

/// A problem at `key` unless `name` is a non-blank display name of at most [`MAX_NAME_CHARS`]
/// without control characters.
pub(crate) fn check_name(name: &str, key: impl Display) -> Option<Problem> {
    let n = name.chars().count();
    if name.trim().is_empty() {
        Some(Problem::new(key.to_string(), "must not be empty"))
    } else if n > MAX_NAME_CHARS {
        Some(Problem::new(
            key.to_string(),
            format!("too long ({n} characters); a name has at most {MAX_NAME_CHARS}"),
        ))
    } else if name.chars().any(char::is_control) {
        Some(Problem::new(
            key.to_string(),
            "must not contain control characters",
        ))
    } else {
        None
    }
}

/// A problem at `key` unless `date` reads `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (so that dates sort
/// as text, which is how the latest price is found).
pub(crate) fn check_date(date: &str, key: impl Display) -> Option<Problem> {
    let parts: Vec<&str> = date.split('-').collect();
    let num = |s: &str, len: usize, lo: u32, hi: u32| {
        s.len() == len
            && s.chars().all(|c| c.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v))
    };
    let ok = match parts.as_slice() {
        [y] => num(y, 4, 1900, 2200),
        [y, m] => num(y, 4, 1900, 2200) && num(m, 2, 1, 12),
        [y, m, d] => num(y, 4, 1900, 2200) && num(m, 2, 1, 12) && num(d, 2, 1, 31),
        _ => false,
    };
    (!ok).then(|| {
        Problem::new(
            key.to_string(),
            format!("`{date}` is not a date; write YYYY-MM-DD (or YYYY-MM)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_overflow_subnormals_and_zero() {
        assert!(PEAK_FLOPS.check(1e300 * 1e15, "k").is_err());
        assert!(MEMORY_BYTES.check(1e-310, "k").is_err());
        assert!(PRICE.check(0.0, "k").is_err());
        assert!(LATENCY.check(f64::NAN, "k").is_err());
        let p = POWER.check(2e6, "chips[x].tdp.value");
        assert!(p.is_err_and(|p| p.key == "chips[x].tdp.value" && p.reason.contains("sane")));
        assert!(POWER.check(700.0, "k").is_ok());
    }

    #[test]
    fn every_range_is_ordered_and_positive() {
        for r in [
            PEAK_FLOPS,
            MEMORY_BYTES,
            BANDWIDTH,
            POWER,
            LATENCY,
            PRICE,
            CAPEX,
            SYSTEM_POWER,
            DOMAIN_CHIPS,
            SHARE_FACTOR,
            DERIVE_FACTOR,
        ] {
            assert!(r.min > 0.0 && r.min < r.max && r.max.is_finite(), "{r:?}");
        }
    }

    #[test]
    fn units_are_checked() {
        assert!(Kind::Memory.factor(Some("GiB"), "k").is_ok());
        assert!(Kind::Memory
            .factor(Some("GB/s"), "a.b")
            .is_err_and(|p| p.key == "a.b.unit"));
        assert!(Kind::Chips.factor(Some("GB"), "k").is_err());
        assert!(Kind::Chips.factor(None, "k").is_ok());
        assert!(Kind::Power.factor(None, "k").is_err());
        assert!(Kind::Capex
            .factor(Some("MUSD"), "k")
            .is_ok_and(|f| (f - 1e6).abs() < 1e-9));
        assert!(Kind::Capex
            .factor(Some("USD/chip-hour"), "p")
            .is_err_and(|p| p.key == "p.unit"));
        assert!(Kind::SystemPower.factor(Some("GW"), "k").is_ok());
        assert!(CAPEX.check(50.0, "k").is_err() && CAPEX.check(30_000.0, "k").is_ok());
        assert!(SYSTEM_POWER.check(10e6, "k").is_ok() && POWER.check(10e6, "k").is_err());
    }

    #[test]
    fn ids_names_and_dates() {
        assert!(check_id("trn3-ultraserver", "k").is_none());
        for bad in ["Trn3", "-a", "a-", "a--b", "", "a b"] {
            assert!(check_id(bad, "k").is_some(), "{bad}");
        }
        let long = "a".repeat(MAX_ID_CHARS + 1);
        assert!(check_id(&long, "k").is_some_and(|p| p.reason.contains("too long")));
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1), "k").is_some());
        assert!(check_name("  ", "k").is_some());
        assert!(check_name("AWS Trainium3", "k").is_none());
        assert!(check_source_key("GL-B200", "k").is_none());
        assert!(check_source_key("a b", "k").is_some());
        for good in ["2026-11-09", "2024-12", "2025"] {
            assert!(check_date(good, "k").is_none(), "{good}");
        }
        for bad in ["2026-13-01", "26-11-09", "soon", "2026-11-09-1"] {
            assert!(check_date(bad, "k").is_some(), "{bad}");
        }
    }
}
