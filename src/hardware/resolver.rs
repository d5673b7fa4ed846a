//! Figures as written in catalog files, and their resolution into typed [`Figure`]s: units
//! converted, then every value checked against its quantity's sane range, every problem kept.

use super::figure::{Alternative, Direction, Figure, Link, Provenance, Source, SourceKind, Status};
use super::limits::{check_source_key, Kind, SHARE_FACTOR};
use crate::error::Problem;
use crate::units::BytesPerSecond;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::{self, Display};

/// A key written out only when it is displayed, for a problem: `key(|f| write!(f, "{at}.x[{i}]"))`
/// (what `format_args!` gives, but storable in a variable).
pub(crate) struct Key<F>(F);

/// A key written out by `f` when it is displayed.
pub(crate) fn key<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result>(f: F) -> Key<F> {
    Key(f)
}

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> Display for Key<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

/// A number as written in a TOML file: integer or float.
///
/// Deserialised as `#[serde(untagged)]` would (same variants, same message for anything else),
/// without buffering the value and building an error for each variant that does not match.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

/// A number of either kind (`None` for any other value).
struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a float")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(i64::try_from(v).map_or(Number::Float(v as f64), Number::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number::Float(v))
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor).map_err(|_| {
            de::Error::custom("data did not match any variant of untagged enum Number")
        })
    }
}

impl Number {
    pub(crate) fn get(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

/// A value in an `alternatives` list: a number or text (deserialised as `#[serde(untagged)]`
/// would, like [`Number`]).
#[derive(Clone, Debug)]
pub(crate) enum AltValue {
    Number(Number),
    Text(String),
}

impl<'de> Deserialize<'de> for AltValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AltValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or text")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AltValue, E> {
                NumberVisitor.visit_i64(v).map(AltValue::Number)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AltValue, E> {
                NumberVisitor.visit_u64(v).map(AltValue::Number)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AltValue, E> {
                NumberVisitor.visit_f64(v).map(AltValue::Number)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<AltValue, E> {
                Ok(AltValue::Text(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<AltValue, E> {
                Ok(AltValue::Text(v))
            }
        }
        d.deserialize_any(V).map_err(|_| {
            de::Error::custom("data did not match any variant of untagged enum AltValue")
        })
    }
}

/// A conflicting published value, as written.
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

/// Context for turning file figures into typed figures: the file's sources, and the problems.
///
/// Keys (`at`) are taken as anything displayable, `format_args!("{at}.tdp")` say, and are only
/// written out for a problem.
pub(crate) struct Resolver<'a> {
    pub sources: &'a BTreeMap<String, Source>,
    pub problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn push(&mut self, p: Option<Problem>) {
        self.problems.extend(p);
    }

    fn source(&mut self, key: &str, at: &dyn Display) -> Source {
        match self.sources.get(key) {
            Some(s) => s.clone(),
            None => {
                let problem =
                    check_source_key(key, format_args!("{at}.source")).unwrap_or_else(|| {
                        Problem::new(
                            format!("{at}.source"),
                            format!("source key `{key}` is not defined in [sources]"),
                        )
                    });
                self.problems.push(problem);
                Source {
                    key: key.to_string(),
                    title: String::new(),
                    locator: String::new(),
                    kind: SourceKind::Secondary,
                }
            }
        }
    }

    /// Alternatives, their numbers checked like the main figure's: unit, then range after
    /// conversion.
    fn alternatives(
        &mut self,
        alts: &[AlternativeFile],
        kind: Kind,
        at: &dyn Display,
    ) -> Vec<Alternative> {
        alts.iter()
            .enumerate()
            .map(|(i, a)| {
                let key = &key(|f| write!(f, "{at}.alternatives[{i}]"));
                let _ = self.source(&a.source, key);
                let value = match (&a.value, &a.unit) {
                    (AltValue::Number(n), unit) => {
                        match kind.factor(unit.as_deref(), key) {
                            Ok(f) => {
                                let r =
                                    kind.range().check(n.get() * f, format_args!("{key}.value"));
                                self.push(r.err());
                            }
                            Err(p) => self.problems.push(p),
                        }
                        match unit {
                            Some(u) => format!("{} {u}", n.get()),
                            None => format!("{}", n.get()),
                        }
                    }
                    (AltValue::Text(t), None) => t.clone(),
                    (AltValue::Text(t), Some(_)) => {
                        self.problems.push(Problem::new(
                            format!("{key}.unit"),
                            "a text alternative takes no unit; give the value as a number",
                        ));
                        t.clone()
                    }
                };
                Alternative {
                    value,
                    source: a.source.clone(),
                    note: a.note.clone(),
                }
            })
            .collect()
    }

    /// A positive, finite SI value from a numeric figure that is not a link (which takes a
    /// `direction`).
    pub(crate) fn number(
        &mut self,
        f: &FigureFile,
        kind: Kind,
        at: &dyn Display,
    ) -> Option<Figure<f64>> {
        if f.direction.is_some() {
            self.problems.push(Problem::new(
                format!("{at}.direction"),
                "only link bandwidths (scale_up_bandwidth, scale_out_bandwidth) take a direction",
            ));
        }
        self.quantity(f, kind, at)
    }

    /// The value of `f` in SI units, checked after conversion against `kind`'s sane range.
    fn quantity(&mut self, f: &FigureFile, kind: Kind, at: &dyn Display) -> Option<Figure<f64>> {
        let factor = match kind.factor(f.unit.as_deref(), at) {
            Ok(x) => Some(x),
            Err(p) => {
                self.problems.push(p);
                None
            }
        };
        let published = f.value.get();
        let mut shares_ok = true;
        for (key, x) in [
            ("divided_by", f.divided_by),
            ("multiplied_by", f.multiplied_by),
        ] {
            if let Some(x) = x {
                let r = SHARE_FACTOR.check(x.get(), format_args!("{at}.{key}"));
                shares_ok &= r.is_ok();
                self.push(r.err());
            }
        }
        if (f.divided_by.is_some() || f.multiplied_by.is_some()) && f.status != Status::Derived {
            self.problems.push(Problem::new(
                format!("{at}.status"),
                "a figure computed with divided_by / multiplied_by has status `derived`",
            ));
        }
        let div = f.divided_by.map_or(1.0, Number::get);
        let mul = f.multiplied_by.map_or(1.0, Number::get);
        let raw = published * mul / div;
        let raw_ok = raw.is_finite() && raw > 0.0;
        if !raw_ok && shares_ok {
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
        let alternatives = self.alternatives(&f.alternatives, kind, at);
        let factor = factor?;
        if !(raw_ok && shares_ok) {
            return None;
        }
        // After conversion: `1e300 PFLOP/s` is infinite, `1e-310 B` subnormal; both refused.
        let sane = kind.range();
        let value = match sane.check(raw * factor, format_args!("{at}.value")) {
            Ok(v) => v,
            Err(p) => {
                self.problems.push(p);
                return None;
            }
        };
        let range = match range {
            Some((lo, hi)) => {
                let key = &key(|f| write!(f, "{at}.range"));
                match (sane.check(lo * factor, key), sane.check(hi * factor, key)) {
                    (Ok(lo), Ok(hi)) => Some((lo, hi)),
                    (Err(p), _) | (_, Err(p)) => {
                        self.problems.push(p);
                        return None;
                    }
                }
            }
            None => None,
        };
        let unit = f.unit.clone().unwrap_or_default();
        let as_written = format!("{raw} {unit}").trim_end().to_string();
        let derivation = match (f.divided_by, f.multiplied_by) {
            (None, None) => None,
            (d, m) => Some(format!(
                "{published} {unit}{}{}",
                m.map_or_else(String::new, |m| format!(" x {}", m.get())),
                d.map_or_else(String::new, |d| format!(" / {}", d.get()))
            )),
        };
        Some(Figure {
            value,
            as_written,
            range,
            provenance: Provenance {
                source,
                status: f.status,
                note: f.note.clone(),
                derivation,
                alternatives,
            },
        })
    }

    /// A positive whole number of chips per domain: no unit, no shares, no range, no direction.
    pub(crate) fn count(&mut self, f: &FigureFile, at: &dyn Display) -> Option<Figure<u64>> {
        self.whole(f, Kind::Chips, at)
    }

    /// A positive whole number of `kind` (chips, torus dimensions): no unit, no shares, no
    /// range, no direction.
    pub(crate) fn whole(
        &mut self,
        f: &FigureFile,
        kind: Kind,
        at: &dyn Display,
    ) -> Option<Figure<u64>> {
        let mut extra = false;
        for (key, present) in [
            ("divided_by", f.divided_by.is_some()),
            ("multiplied_by", f.multiplied_by.is_some()),
            ("range", f.range.is_some()),
        ] {
            if present {
                extra = true;
                self.problems.push(Problem::new(
                    format!("{at}.{key}"),
                    "a count is a whole number as published; it takes no divided_by, multiplied_by or range",
                ));
            }
        }
        let fig = self.number(f, kind, at)?;
        if extra {
            return None;
        }
        if fig.value.fract() != 0.0 {
            self.problems.push(Problem::new(
                format!("{at}.value"),
                format!("must be a whole number, got {}", fig.value),
            ));
            return None;
        }
        // In range (at most 1e7) and whole, so the conversion is exact.
        let n = fig.value as u64;
        Some(Figure {
            value: n,
            as_written: format!("{n}"),
            range: None,
            provenance: fig.provenance,
        })
    }

    /// A text figure (release date, process node).
    pub(crate) fn text(&mut self, f: &TextFigureFile, at: &dyn Display) -> Figure<String> {
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

    /// A link bandwidth with its direction convention.
    pub(crate) fn link(&mut self, f: &FigureFile, at: &dyn Display) -> Option<Link> {
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
        let fig = self.quantity(f, Kind::Bandwidth, at)?;
        Some(Link {
            bandwidth: fig.map(BytesPerSecond::new),
            direction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn sources() -> BTreeMap<String, Source> {
        let s = Source {
            key: "A".into(),
            title: "t".into(),
            locator: "l".into(),
            kind: SourceKind::Official,
        };
        BTreeMap::from([("A".to_string(), s)])
    }

    fn figure(text: &str) -> FigureFile {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Resolve `text` as `kind` at key `x`: the SI value, or the problem keys.
    fn resolve(text: &str, kind: Kind) -> Result<f64, Vec<String>> {
        let s = sources();
        let mut r = Resolver {
            sources: &s,
            problems: Vec::new(),
        };
        let v = r.number(&figure(text), kind, &"x");
        match (v, r.problems.is_empty()) {
            (Some(f), true) => Ok(f.value),
            _ => Err(r.problems.iter().map(|p| p.key.clone()).collect()),
        }
    }

    const OK: &str = r#"source = "A"
status = "official""#;

    #[test]
    fn a_good_figure_is_converted() {
        let v = resolve(
            &format!("value = 2\nunit = \"PFLOP/s\"\n{OK}"),
            Kind::FlopRate,
        );
        assert_relative_eq!(v.unwrap_or_else(|k| panic!("{k:?}")), 2e15);
    }

    #[test]
    fn overflow_after_conversion_is_refused() {
        let v = resolve(
            &format!("value = 1e300\nunit = \"PFLOP/s\"\n{OK}"),
            Kind::FlopRate,
        );
        assert_eq!(v, Err(vec!["x.value".to_string()]));
    }

    #[test]
    fn subnormal_values_are_refused() {
        let v = resolve(&format!("value = 1e-310\nunit = \"B\"\n{OK}"), Kind::Memory);
        assert_eq!(v, Err(vec!["x.value".to_string()]));
    }

    #[test]
    fn bad_shares_are_refused_by_key() {
        for (key, bad) in [
            ("divided_by", "0"),
            ("divided_by", "nan"),
            ("multiplied_by", "1e300"),
            ("multiplied_by", "-2"),
        ] {
            let text = format!(
                "value = 10\nunit = \"W\"\n{key} = {bad}\nsource = \"A\"\nstatus = \"derived\""
            );
            assert_eq!(
                resolve(&text, Kind::Power),
                Err(vec![format!("x.{key}")]),
                "{key} = {bad}"
            );
        }
    }

    #[test]
    fn alternatives_units_and_values_are_checked() {
        let text = |alt: &str| {
            format!(
                "value = 100\nunit = \"GB/s\"\n{OK}\nalternatives = [{{ {alt}, source = \"A\" }}]"
            )
        };
        assert!(resolve(&text("value = 90, unit = \"GB/s\""), Kind::Bandwidth).is_ok());
        for (alt, key) in [
            (
                "value = 90, unit = \"GB/fortnight\"",
                "x.alternatives[0].unit",
            ),
            ("value = 90", "x.alternatives[0].unit"),
            ("value = 1e300, unit = \"TB/s\"", "x.alternatives[0].value"),
            (
                "value = \"about 90\", unit = \"GB/s\"",
                "x.alternatives[0].unit",
            ),
        ] {
            assert_eq!(
                resolve(&text(alt), Kind::Bandwidth),
                Err(vec![key.to_string()]),
                "{alt}"
            );
        }
    }

    #[test]
    fn direction_only_on_links_and_counts_are_whole() {
        let text = format!("value = 10\nunit = \"W\"\ndirection = \"bidirectional\"\n{OK}");
        assert_eq!(
            resolve(&text, Kind::Power),
            Err(vec!["x.direction".to_string()])
        );
        let s = sources();
        let mut r = Resolver {
            sources: &s,
            problems: Vec::new(),
        };
        for (text, key) in [
            (format!("value = 72.5\n{OK}"), "d.value"),
            (format!("value = 0\n{OK}"), "d.value"),
            (format!("value = 1e12\n{OK}"), "d.value"),
            (format!("value = 8\nunit = \"GB\"\n{OK}"), "d.unit"),
            (format!("value = 72\ndivided_by = 2\n{OK}"), "d.divided_by"),
        ] {
            assert!(r.count(&figure(&text), &"d").is_none(), "{text}");
            assert!(r.problems.iter().any(|p| p.key == key), "{text}");
            r.problems.clear();
        }
        let n = r.count(&figure(&format!("value = 72\n{OK}")), &"d");
        assert_eq!(n.map(|f| f.value), Some(72));
    }

    #[test]
    fn numbers_read_as_untagged_enums_would_with_the_same_messages() {
        let parse = |text: &str| {
            crate::error::parse_toml::<FigureFile>("t.toml", &format!("{text}\n{OK}"))
                .map_err(|e| e.to_string())
        };
        let number = "data did not match any variant of untagged enum Number";
        let alt = "data did not match any variant of untagged enum AltValue";
        for (text, key, line, msg) in [
            ("value = \"abc\"", "value", 1, number),
            ("value = true", "value", 1, number),
            ("value = [1]", "value", 1, number),
            ("value = { a = 1 }", "value", 1, number),
            ("value = 1979-05-27", "value", 1, number),
            ("value = 1\nrange = [1, \"x\"]", "range[1]", 2, number),
            ("value = 1\ndivided_by = \"x\"", "divided_by", 2, number),
            (
                "value = 1\nalternatives = [{ value = true, source = \"A\" }]",
                "alternatives[0].value",
                2,
                alt,
            ),
            (
                "value = 1\nalternatives = [{ value = [1], source = \"A\" }]",
                "alternatives[0].value",
                2,
                alt,
            ),
        ] {
            assert_eq!(
                parse(text).err(),
                Some(format!("t.toml: {key}: {msg} (line {line})"))
            );
        }
        let ok = |text: &str| parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            ok("value = 9223372036854775807").value,
            Number::Int(i64::MAX)
        ));
        assert!(
            matches!(ok("value = 2.5").value, Number::Float(x) if x.to_bits() == 2.5f64.to_bits())
        );
        assert!(matches!(ok("value = nan").value, Number::Float(x) if x.is_nan()));
        let alts = ok("value = 1\nalternatives = [{ value = \"t\", source = \"A\" }, { value = 3, source = \"A\" }]").alternatives;
        assert!(matches!(&alts[0].value, AltValue::Text(t) if t == "t"));
        assert!(matches!(alts[1].value, AltValue::Number(Number::Int(3))));
        let json: Number =
            serde_json::from_str("18446744073709551615").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(json, Number::Float(x) if x.to_bits() == (u64::MAX as f64).to_bits()));
    }
}
