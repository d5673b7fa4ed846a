//! Figures with provenance: a value, its source and how much to trust it.

use crate::error::Problem;
use crate::units::{Bytes, BytesPerSecond, FlopsPerSecond, Seconds, UsdPerChipHour, Watts};
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
    /// `official`, `press` or `secondary`.
    pub kind: String,
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

/// A number as written in a TOML file: integer or float.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub(crate) fn get(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

/// A value in an `alternatives` list: a number or text.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum AltValue {
    Number(Number),
    Text(String),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlternativeFile {
    pub value: AltValue,
    pub unit: Option<String>,
    pub source: String,
    pub note: Option<String>,
}

/// A numeric figure as written in a catalog file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FigureFile {
    pub value: Number,
    pub unit: Option<String>,
    pub source: String,
    pub status: Status,
    pub note: Option<String>,
    pub range: Option<[Number; 2]>,
    #[serde(default)]
    pub alternatives: Vec<AlternativeFile>,
    pub direction: Option<Direction>,
    /// The published value covers this many chips (an instance, a rack): the chip's share is
    /// computed as `value / divided_by`. Requires status `derived`.
    pub divided_by: Option<Number>,
    /// The published value is per link (or lane): the chip's figure is `value x multiplied_by`.
    /// Requires status `derived`.
    pub multiplied_by: Option<Number>,
}

/// A text figure (release date, process node).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextFigureFile {
    pub value: String,
    pub source: String,
    pub status: Status,
    pub note: Option<String>,
}

/// The kinds of quantity a figure may hold, with the units each accepts (factor to SI).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    FlopRate,
    Memory,
    Bandwidth,
    Power,
    Time,
    Price,
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
        }
    }

    /// SI factor of `unit`, or a problem naming the accepted units.
    pub(crate) fn factor(self, unit: Option<&str>, key: &str) -> Result<f64, Problem> {
        let units = self.units();
        let accepted = units
            .iter()
            .map(|(u, _)| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match unit {
            None => Err(Problem::new(
                format!("{key}.unit"),
                format!("missing unit; expected one of {accepted}"),
            )),
            Some(u) => units
                .iter()
                .find(|(name, _)| *name == u)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    Problem::new(
                        format!("{key}.unit"),
                        format!("cannot parse unit `{u}`; expected one of {accepted}"),
                    )
                }),
        }
    }
}

/// Context for turning file figures into typed figures: the file's sources.
pub(crate) struct Resolver<'a> {
    pub sources: &'a std::collections::BTreeMap<String, Source>,
    pub problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn source(&mut self, key: &str, at: &str) -> Source {
        match self.sources.get(key) {
            Some(s) => s.clone(),
            None => {
                self.problems.push(Problem::new(
                    format!("{at}.source"),
                    format!("source key `{key}` is not defined in [sources]"),
                ));
                Source {
                    key: key.to_string(),
                    title: String::new(),
                    locator: String::new(),
                    kind: String::new(),
                }
            }
        }
    }

    fn alternatives(&mut self, alts: &[AlternativeFile], at: &str) -> Vec<Alternative> {
        alts.iter()
            .enumerate()
            .map(|(i, a)| {
                let key = format!("{at}.alternatives[{i}]");
                let _ = self.source(&a.source, &key);
                let value = match (&a.value, &a.unit) {
                    (AltValue::Number(n), Some(u)) => format!("{} {u}", n.get()),
                    (AltValue::Number(n), None) => format!("{}", n.get()),
                    (AltValue::Text(t), _) => t.clone(),
                };
                Alternative {
                    value,
                    source: a.source.clone(),
                    note: a.note.clone(),
                }
            })
            .collect()
    }

    /// A positive, finite SI value from a numeric figure.
    pub(crate) fn number(&mut self, f: &FigureFile, kind: Kind, at: &str) -> Option<Figure<f64>> {
        let factor = match kind.factor(f.unit.as_deref(), at) {
            Ok(x) => Some(x),
            Err(p) => {
                self.problems.push(p);
                None
            }
        };
        let published = f.value.get();
        let div = f.divided_by.map_or(1.0, Number::get);
        let mul = f.multiplied_by.map_or(1.0, Number::get);
        for (key, x) in [("divided_by", div), ("multiplied_by", mul)] {
            if !(x.is_finite() && x > 0.0) {
                self.problems.push(Problem::new(
                    format!("{at}.{key}"),
                    format!("must be positive, got {x}"),
                ));
            }
        }
        if (f.divided_by.is_some() || f.multiplied_by.is_some()) && f.status != Status::Derived {
            self.problems.push(Problem::new(
                format!("{at}.status"),
                "a figure computed with divided_by / multiplied_by has status `derived`",
            ));
        }
        let raw = published * mul / div;
        if !raw.is_finite() || raw <= 0.0 {
            self.problems.push(Problem::new(
                format!("{at}.value"),
                format!("must be a positive finite number, got {published}"),
            ));
        }
        let range = f.range.map(|[lo, hi]| (lo.get(), hi.get()));
        if let Some((lo, hi)) = range {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= raw && raw <= hi) {
                self.problems.push(Problem::new(
                    format!("{at}.range"),
                    format!("must be [low, high] with 0 < low <= value ({raw}) <= high, got [{lo}, {hi}]"),
                ));
            }
        }
        if f.status == Status::Official && range.is_some() {
            self.problems.push(Problem::new(
                format!("{at}.range"),
                "an official figure carries no range; mark it press, derived, projection or assumed",
            ));
        }
        let source = self.source(&f.source, at);
        let alternatives = self.alternatives(&f.alternatives, at);
        let factor = factor?;
        if !raw.is_finite() || raw <= 0.0 {
            return None;
        }
        let unit = f.unit.clone().unwrap_or_default();
        let as_written = format!("{raw} {unit}");
        let derivation = match (f.divided_by, f.multiplied_by) {
            (None, None) => None,
            (d, m) => Some(format!(
                "{published} {unit}{}{}",
                m.map_or_else(String::new, |m| format!(" x {}", m.get())),
                d.map_or_else(String::new, |d| format!(" / {}", d.get()))
            )),
        };
        Some(Figure {
            value: raw * factor,
            as_written,
            range: range.map(|(lo, hi)| (lo * factor, hi * factor)),
            provenance: Provenance {
                source,
                status: f.status,
                note: f.note.clone(),
                derivation,
                alternatives,
            },
        })
    }

    /// A positive whole count (chips per domain), no unit.
    pub(crate) fn count(&mut self, f: &FigureFile, at: &str) -> Option<Figure<u64>> {
        if f.unit.is_some() {
            self.problems
                .push(Problem::new(format!("{at}.unit"), "a count takes no unit"));
        }
        let raw = f.value.get();
        let ok = raw.is_finite() && raw >= 1.0 && raw.fract() == 0.0 && raw < 1e15;
        if !ok {
            self.problems.push(Problem::new(
                format!("{at}.value"),
                format!("must be a whole number >= 1, got {raw}"),
            ));
        }
        let source = self.source(&f.source, at);
        let alternatives = self.alternatives(&f.alternatives, at);
        ok.then(|| Figure {
            value: raw as u64,
            as_written: format!("{raw}"),
            range: None,
            provenance: Provenance {
                source,
                status: f.status,
                note: f.note.clone(),
                derivation: None,
                alternatives,
            },
        })
    }

    pub(crate) fn text(&mut self, f: &TextFigureFile, at: &str) -> Figure<String> {
        let source = self.source(&f.source, at);
        Figure {
            value: f.value.clone(),
            as_written: f.value.clone(),
            range: None,
            provenance: Provenance {
                source,
                status: f.status,
                note: f.note.clone(),
                derivation: None,
                alternatives: Vec::new(),
            },
        }
    }

    pub(crate) fn link(&mut self, f: &FigureFile, at: &str) -> Option<Link> {
        let direction = match f.direction {
            Some(d) => d,
            None => {
                self.problems.push(Problem::new(
                    format!("{at}.direction"),
                    "a link bandwidth must say `per-direction`, `bidirectional` or `unstated`",
                ));
                Direction::Unstated
            }
        };
        let fig = self.number(f, Kind::Bandwidth, at)?;
        Some(Link {
            bandwidth: fig.map(BytesPerSecond::new),
            direction,
        })
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
