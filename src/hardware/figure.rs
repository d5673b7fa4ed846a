//! Figures with provenance: a value, its source and how much to trust it.

use crate::units::{
    Bytes, BytesPerSecond, ExpPerSecond, FlopsPerSecond, Seconds, Usd, UsdPerChipHour, Watts,
};
use serde::{Deserialize, Serialize};

/// How a figure came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Vendor documentation or datasheet.
    Official,
    /// Press or analyst report.
    Press,
    /// Arithmetic on sourced figures, done by code.
    Derived,
    /// Announced multiples or plans, not a product specification.
    Projection,
    /// A modelling assumption; the note says why.
    Assumed,
}

impl Status {
    /// The kebab-case name used in files and output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::Press => "press",
            Self::Derived => "derived",
            Self::Projection => "projection",
            Self::Assumed => "assumed",
        }
    }
}

/// A cited source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Short key, as in `../shared/facts/hardware.md`.
    #[serde(default)]
    pub key: String,
    /// Title of the document.
    pub title: String,
    /// Where in it (repository path and commit, page, table).
    pub locator: String,
    /// Official, press or secondary.
    pub kind: SourceKind,
}

/// What kind of document a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The vendor's own documentation.
    Official,
    /// Press or analyst coverage.
    Press,
    /// A third party's summary (a blog, a comparison table, a cloud price list).
    Secondary,
}

impl SourceKind {
    /// The kebab-case name used in files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::Press => "press",
            Self::Secondary => "secondary",
        }
    }
}

/// A published value that conflicts with the chosen one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alternative {
    /// The value as written, with its unit.
    pub value: String,
    /// Source key.
    pub source: String,
    /// How it differs.
    pub note: Option<String>,
}

/// Where a figure comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Provenance {
    /// The source cited.
    pub source: Source,
    /// Official, press, derived, projection or assumed.
    pub status: Status,
    /// How to read the figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For derived figures: the computation, e.g. `6 x trn3.peak_fp4`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derivation: Option<String>,
    /// Conflicting published values not chosen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
}

/// A value with its provenance and, for non-official figures, an optional uncertainty range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure<T> {
    /// The chosen value.
    pub value: T,
    /// The value as written in the source, with its unit (e.g. `144 GiB`).
    pub as_written: String,
    /// Low and high ends of the uncertainty band.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<(T, T)>,
    /// Where it comes from.
    pub provenance: Provenance,
}

/// Direction convention of a link bandwidth figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// One direction.
    PerDirection,
    /// Both directions added (NVIDIA and Google convention).
    Bidirectional,
    /// The vendor does not say (AWS NeuronLink); read as an aggregate, like bidirectional.
    Unstated,
}

impl Direction {
    /// The kebab-case name used in files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerDirection => "per-direction",
            Self::Bidirectional => "bidirectional",
            Self::Unstated => "direction unstated",
        }
    }
}

/// A link bandwidth figure with its direction convention.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// The figure as published.
    pub bandwidth: Figure<BytesPerSecond>,
    /// Its direction convention.
    pub direction: Direction,
}

impl Link {
    /// The bandwidth in one direction, which is what a ring collective step uses.
    /// Bidirectional and unstated figures are halved (unstated AWS figures are read as
    /// aggregates; see the README).
    #[must_use]
    pub fn per_direction(&self) -> BytesPerSecond {
        match self.direction {
            Direction::PerDirection => self.bandwidth.value,
            Direction::Bidirectional | Direction::Unstated => self.bandwidth.value / 2.0,
        }
    }
}

impl<T> Figure<T> {
    /// The same figure with its value (and range) mapped.
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Figure<U> {
        Figure {
            range: self.range.map(|(lo, hi)| (f(lo), f(hi))),
            value: f(self.value),
            as_written: self.as_written,
            provenance: self.provenance,
        }
    }
}

/// Typed conversions used by the chip and system builders.
pub(crate) fn exp_rate(f: Figure<f64>) -> Figure<ExpPerSecond> {
    f.map(ExpPerSecond::new)
}
pub(crate) fn flop_rate(f: Figure<f64>) -> Figure<FlopsPerSecond> {
    f.map(FlopsPerSecond::new)
}
pub(crate) fn memory(f: Figure<f64>) -> Figure<Bytes> {
    f.map(Bytes::new)
}
pub(crate) fn bandwidth(f: Figure<f64>) -> Figure<BytesPerSecond> {
    f.map(BytesPerSecond::new)
}
pub(crate) fn power(f: Figure<f64>) -> Figure<Watts> {
    f.map(Watts::new)
}
pub(crate) fn time(f: Figure<f64>) -> Figure<Seconds> {
    f.map(Seconds::new)
}
pub(crate) fn price(f: f64) -> UsdPerChipHour {
    UsdPerChipHour::new(f)
}
pub(crate) fn money(f: Figure<f64>) -> Figure<Usd> {
    f.map(Usd::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn link(direction: Direction) -> Link {
        Link {
            bandwidth: Figure {
                value: BytesPerSecond::new(800e9),
                as_written: "800 GB/s".into(),
                range: None,
                provenance: Provenance {
                    source: Source {
                        key: "A".into(),
                        title: "t".into(),
                        locator: "l".into(),
                        kind: SourceKind::Official,
                    },
                    status: Status::Official,
                    note: None,
                    derivation: None,
                    alternatives: Vec::new(),
                },
            },
            direction,
        }
    }

    #[test]
    fn aggregate_links_are_halved() {
        assert_relative_eq!(
            link(Direction::PerDirection)
                .per_direction()
                .bytes_per_second(),
            800e9
        );
        for d in [Direction::Bidirectional, Direction::Unstated] {
            assert_relative_eq!(link(d).per_direction().bytes_per_second(), 400e9);
        }
    }

    #[test]
    fn enum_names_round_trip() {
        for k in [
            SourceKind::Official,
            SourceKind::Press,
            SourceKind::Secondary,
        ] {
            let v: SourceKind = toml::Value::String(k.as_str().into())
                .try_into()
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v, k);
        }
        assert_eq!(Status::Projection.as_str(), "projection");
    }
}
