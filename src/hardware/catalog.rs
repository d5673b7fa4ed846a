//! The hardware catalog: built-in TOML files plus the user's own, validated in two stages
//! (raw file structs, then resolved figures with every problem reported at once).

use super::figure::{
    bandwidth, flop_rate, memory, power, price, time, FigureFile, Kind, Resolver, Source,
    TextFigureFile,
};
use super::{Chip, Cluster, Figure, Link, Precision, Provenance, Status, System};
use crate::error::{parse_toml, read_file, Error, Problem, Result};
use crate::units::UsdPerChipHour;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const BUILT_IN: [(&str, &str); 3] = [
    ("trainium.toml", include_str!("catalog/trainium.toml")),
    ("tpu.toml", include_str!("catalog/tpu.toml")),
    ("nvidia.toml", include_str!("catalog/nvidia.toml")),
];

const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    schema_version: u32,
    family: String,
    vendor: String,
    #[serde(default)]
    sources: BTreeMap<String, Source>,
    #[serde(default)]
    chips: Vec<ChipFile>,
    #[serde(default)]
    systems: Vec<SystemFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChipFile {
    id: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    calibration_group: String,
    default_system: Option<String>,
    #[serde(default, rename = "override")]
    replace: bool,
    release: Option<TextFigureFile>,
    process_node: Option<TextFigureFile>,
    peak_fp32: Option<FigureFile>,
    peak_tf32: Option<FigureFile>,
    peak_bf16: Option<FigureFile>,
    peak_fp8: Option<FigureFile>,
    peak_fp4: Option<FigureFile>,
    hbm_capacity: Option<FigureFile>,
    hbm_bandwidth: Option<FigureFile>,
    sram: Option<FigureFile>,
    scale_up_bandwidth: Option<FigureFile>,
    scale_out_bandwidth: Option<FigureFile>,
    tdp: Option<FigureFile>,
    typical_power: Option<FigureFile>,
    #[serde(default)]
    prices: Vec<PriceFile>,
    #[serde(default)]
    derive: Vec<DeriveFile>,
    #[serde(default)]
    claims: Vec<ClaimFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    kind: String,
    value: super::figure::Number,
    unit: String,
    date: String,
    region: Option<String>,
    instance: Option<String>,
    source: String,
    status: Status,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeriveFile {
    field: String,
    from: String,
    rule: DeriveRule,
    factor: f64,
    format: Option<Precision>,
    source: String,
    status: Status,
    note: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum DeriveRule {
    Scale,
    PerfPerWatt,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimFile {
    text: String,
    source: String,
    status: Status,
    reading: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemFile {
    id: String,
    name: String,
    chip: String,
    #[serde(default, rename = "override")]
    replace: bool,
    domain_chips: FigureFile,
    scale_up_bandwidth: Option<FigureFile>,
    scale_out_bandwidth: Option<FigureFile>,
    scale_up_latency: FigureFile,
    scale_out_latency: FigureFile,
}

/// A price with its date and source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Price {
    /// `on-demand`, `capacity-block`, `reserved-1y`, `reserved-3y`, `spot` or `purchase`.
    pub kind: String,
    /// Dollars per chip-hour.
    pub per_chip_hour: UsdPerChipHour,
    /// When the price was read.
    pub date: String,
    /// Cloud region.
    pub region: Option<String>,
    /// Instance and arithmetic.
    pub instance: Option<String>,
    /// Where it comes from.
    pub provenance: Provenance,
}

/// A vendor or press claim, verbatim, with how xpusim reads it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Claim {
    /// The words of the claim.
    pub text: String,
    /// The source.
    pub source: Source,
    /// Official or press.
    pub status: Status,
    /// How the model reads (or rejects) it.
    pub reading: String,
}

/// Chips and systems, built-in and user-supplied.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    chips: Vec<Chip>,
    systems: Vec<System>,
    /// Which file each chip/system id came from, for duplicate messages.
    origin: BTreeMap<String, String>,
}

struct PendingDerive {
    chip: usize,
    file: String,
    at: String,
    spec: DeriveFile,
    source: Source,
}

struct PendingSystem {
    file: String,
    at: String,
    spec: SystemFile,
    sources: BTreeMap<String, Source>,
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Catalog {
    /// The built-in catalog (embedded TOML files).
    ///
    /// # Errors
    /// Only if the embedded files are broken, which the test suite rules out.
    pub fn builtin() -> Result<Self> {
        let none: [&Path; 0] = [];
        Self::with_user_files(&none)
    }

    /// The built-in catalog extended (or overridden, with `override = true`) by user files.
    ///
    /// # Errors
    /// I/O errors, parse errors and validation problems, each naming the file and key.
    pub fn with_user_files(paths: &[impl AsRef<Path>]) -> Result<Self> {
        let mut files: Vec<(String, String, bool)> = BUILT_IN
            .iter()
            .map(|(name, text)| (format!("<built-in>/{name}"), text.to_string(), false))
            .collect();
        for p in paths {
            let p = p.as_ref();
            files.push((p.display().to_string(), read_file(p)?, true));
        }
        Self::from_sources(&files)
    }

    /// Build from `(file name, TOML text, is_user)` triples.
    ///
    /// # Errors
    /// Parse errors and validation problems, each naming the file and key.
    pub fn from_sources(files: &[(String, String, bool)]) -> Result<Self> {
        let mut cat = Catalog::default();
        let mut derives = Vec::new();
        let mut systems = Vec::new();
        for (name, text, is_user) in files {
            let file: CatalogFile = parse_toml(name, text)?;
            cat.add_file(name, file, *is_user, &mut derives, &mut systems)?;
        }
        cat.resolve_derivations(derives)?;
        for s in systems {
            cat.add_system(s)?;
        }
        Ok(cat)
    }

    fn add_file(
        &mut self,
        name: &str,
        file: CatalogFile,
        is_user: bool,
        derives: &mut Vec<PendingDerive>,
        systems: &mut Vec<PendingSystem>,
    ) -> Result<()> {
        let mut problems = Vec::new();
        if file.schema_version != SCHEMA_VERSION {
            problems.push(Problem::new(
                "schema_version",
                format!(
                    "unsupported version {}, expected {SCHEMA_VERSION}",
                    file.schema_version
                ),
            ));
        }
        if !is_kebab(&file.family) {
            problems.push(Problem::new("family", "must be lowercase kebab-case"));
        }
        if !is_user {
            let stem = name
                .rsplit('/')
                .next()
                .unwrap_or(name)
                .trim_end_matches(".toml");
            if stem != file.family {
                problems.push(Problem::new(
                    "family",
                    format!("must equal the file stem `{stem}`"),
                ));
            }
        }
        let mut sources = file.sources;
        for (k, s) in &mut sources {
            s.key = k.clone();
        }
        let mut new_chips = Vec::new();
        for chip in file.chips {
            let at = format!("chips[{}]", chip.id);
            let mut r = Resolver {
                sources: &sources,
                problems: Vec::new(),
            };
            if !is_kebab(&chip.id) {
                r.problems.push(Problem::new(
                    format!("{at}.id"),
                    "must be lowercase kebab-case (e.g. `my-chip`)",
                ));
            }
            let built = build_chip(&chip, &file.family, &file.vendor, &at, &mut r);
            problems.append(&mut r.problems);
            new_chips.push((chip, built, at));
        }
        for s in file.systems {
            let at = format!("systems[{}]", s.id);
            if !is_kebab(&s.id) {
                problems.push(Problem::new(
                    format!("{at}.id"),
                    "must be lowercase kebab-case",
                ));
            }
            systems.push(PendingSystem {
                file: name.to_string(),
                at,
                spec: s,
                sources: sources.clone(),
            });
        }
        // Duplicate ids: within the file, across files, and against aliases.
        for (spec, built, at) in new_chips {
            let mut names = vec![spec.id.clone()];
            names.extend(spec.aliases.iter().cloned());
            for n in &names {
                if let Some(prev) = self.origin.get(n) {
                    if spec.replace && self.chips.iter().any(|c| &c.id == n) {
                        continue;
                    }
                    problems.push(Problem::new(
                        format!("{at}.id"),
                        format!("duplicate id or alias `{n}` (already defined in {prev}); choose another id, or set `override = true` to replace it"),
                    ));
                }
            }
            if let Some(mut chip) = built {
                if spec.replace {
                    self.chips.retain(|c| c.id != chip.id);
                }
                for n in &names {
                    self.origin.insert(n.clone(), name.to_string());
                }
                let idx = self.chips.len();
                for d in spec.derive {
                    let key = format!("{at}.derive[{}]", d.field);
                    let source = match sources.get(&d.source) {
                        Some(s) => s.clone(),
                        None => {
                            problems.push(Problem::new(
                                format!("{key}.source"),
                                format!("source key `{}` is not defined in [sources]", d.source),
                            ));
                            continue;
                        }
                    };
                    derives.push(PendingDerive {
                        chip: idx,
                        file: name.to_string(),
                        at: key,
                        spec: d,
                        source,
                    });
                }
                chip.claims = spec
                    .claims
                    .iter()
                    .filter_map(|c| {
                        let s = sources.get(&c.source);
                        if s.is_none() {
                            problems.push(Problem::new(
                                format!("{at}.claims"),
                                format!("source key `{}` is not defined in [sources]", c.source),
                            ));
                        }
                        s.map(|s| super::Claim {
                            text: c.text.clone(),
                            source: s.clone(),
                            status: c.status,
                            reading: c.reading.clone(),
                        })
                    })
                    .collect();
                self.chips.push(chip);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                file: name.to_string(),
                problems,
            })
        }
    }

    fn resolve_derivations(&mut self, pending: Vec<PendingDerive>) -> Result<()> {
        // Derivations may chain (a user chip from trn4, itself from trn3): resolve in passes.
        let mut pending = pending;
        let mut errors: BTreeMap<String, Vec<Problem>> = BTreeMap::new();
        loop {
            let before = pending.len();
            let mut waiting = Vec::new();
            for d in pending {
                let target_has_pending =
                    |id: &str, field: &str, list: &[PendingDerive], chips: &[Chip]| {
                        list.iter()
                            .any(|o| chips[o.chip].id == id && o.spec.field == field)
                    };
                let Some(base) = self.chips.iter().position(|c| c.id == d.spec.from) else {
                    errors.entry(d.file.clone()).or_default().push(Problem::new(
                        format!("{}.from", d.at),
                        format!("unknown chip `{}`", d.spec.from),
                    ));
                    continue;
                };
                if target_has_pending(&d.spec.from, &d.spec.field, &waiting, &self.chips) {
                    waiting.push(d);
                    continue;
                }
                match self.apply_derive(&d, base) {
                    Ok(true) => {}
                    Ok(false) => waiting.push(d),
                    Err(p) => errors.entry(d.file.clone()).or_default().push(p),
                }
            }
            if waiting.is_empty() {
                break;
            }
            if waiting.len() == before {
                for d in waiting {
                    errors.entry(d.file.clone()).or_default().push(Problem::new(
                        format!("{}.from", d.at),
                        format!(
                            "`{}.{}` is missing or derived in a cycle",
                            d.spec.from, d.spec.field
                        ),
                    ));
                }
                break;
            }
            pending = waiting;
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some((file, problems)) => Err(Error::Invalid { file, problems }),
        }
    }

    /// Apply one derivation. `Ok(false)`: the base figure is not there yet (try again later).
    fn apply_derive(
        &mut self,
        d: &PendingDerive,
        base: usize,
    ) -> std::result::Result<bool, Problem> {
        let s = &d.spec;
        if !(s.factor.is_finite() && s.factor > 0.0) {
            return Err(Problem::new(
                format!("{}.factor", d.at),
                format!("must be positive and finite, got {}", s.factor),
            ));
        }
        let prov = |derivation: String| Provenance {
            source: d.source.clone(),
            status: s.status,
            note: s.note.clone(),
            derivation: Some(derivation),
            alternatives: Vec::new(),
        };
        let from = self.chips[base].clone();
        let target = &mut self.chips[d.chip];
        let desc = format!("{} x {}.{}", s.factor, s.from, s.field);
        // "144 GiB" scaled by 2 reads "288 GiB".
        let written = |base: &str| -> String {
            match base.split_once(' ') {
                Some((n, unit)) => match n.parse::<f64>() {
                    Ok(x) => format!("{} {unit}", x * s.factor),
                    Err(_) => desc.clone(),
                },
                None => desc.clone(),
            }
        };
        macro_rules! scale {
            ($base:expr, $slot:expr) => {{
                let Some(b) = $base.as_ref() else {
                    return Ok(false);
                };
                $slot = Some(Figure {
                    value: b.value * s.factor,
                    as_written: written(&b.as_written),
                    range: b.range.map(|(lo, hi)| (lo * s.factor, hi * s.factor)),
                    provenance: prov(desc.clone()),
                });
            }};
        }
        macro_rules! scale_link {
            ($base:expr, $slot:expr) => {{
                let Some(b) = $base.as_ref() else {
                    return Ok(false);
                };
                $slot = Some(Link {
                    bandwidth: Figure {
                        value: b.bandwidth.value * s.factor,
                        as_written: written(&b.bandwidth.as_written),
                        range: None,
                        provenance: prov(desc.clone()),
                    },
                    direction: b.direction,
                });
            }};
        }
        match (s.rule, s.field.as_str()) {
            (DeriveRule::Scale, f) if f.starts_with("peak_") => {
                let p = Precision::parse(&f["peak_".len()..])
                    .map_err(|_| Problem::new(format!("{}.field", d.at), format!("unknown field `{f}`")))?;
                scale!(from.peaks[p.index()], target.peaks[p.index()]);
            }
            (DeriveRule::Scale, "hbm_capacity") => scale!(from.hbm_capacity, target.hbm_capacity),
            (DeriveRule::Scale, "hbm_bandwidth") => scale!(from.hbm_bandwidth, target.hbm_bandwidth),
            (DeriveRule::Scale, "sram") => scale!(from.sram, target.sram),
            (DeriveRule::Scale, "tdp") => scale!(from.tdp, target.tdp),
            (DeriveRule::Scale, "scale_up_bandwidth") => scale_link!(from.scale_up, target.scale_up),
            (DeriveRule::Scale, "scale_out_bandwidth") => scale_link!(from.scale_out, target.scale_out),
            (DeriveRule::PerfPerWatt, "tdp") => {
                let Some(fmt) = s.format else {
                    return Err(Problem::new(format!("{}.format", d.at), "the perf-per-watt rule needs `format` (e.g. \"fp8\")"));
                };
                let (Some(bp), Some(bt)) = (from.tdp.as_ref(), from.peak(fmt)) else { return Ok(false) };
                let Some(own) = target.peak(fmt) else { return Ok(false) };
                let ratio = own.value / bt.value;
                let value = bp.value * ratio / s.factor;
                let derivation = format!(
                    "{}.tdp x ({}.peak_{fmt} / {}.peak_{fmt}) / {} = {:.0} W x {:.3} / {}",
                    s.from, target.id, s.from, s.factor, bp.value.watts(), ratio, s.factor
                );
                target.tdp = Some(Figure {
                    value,
                    as_written: format!("{:.0} W", value.watts()),
                    range: bp.range.map(|(lo, hi)| (lo * ratio / s.factor, hi * ratio / s.factor)),
                    provenance: prov(derivation),
                });
            }
            (rule, f) => {
                return Err(Problem::new(
                    format!("{}.field", d.at),
                    format!("cannot derive `{f}` with rule {rule:?}; scale takes peak_*, hbm_capacity, hbm_bandwidth, sram, tdp, scale_up_bandwidth, scale_out_bandwidth; perf-per-watt takes tdp"),
                ))
            }
        }
        Ok(true)
    }

    fn add_system(&mut self, p: PendingSystem) -> Result<()> {
        let s = &p.spec;
        let at = &p.at;
        let mut r = Resolver {
            sources: &p.sources,
            problems: Vec::new(),
        };
        let chip = self.chips.iter().find(|c| c.id == s.chip).cloned();
        if chip.is_none() {
            r.problems.push(Problem::new(
                format!("{at}.chip"),
                format!("unknown chip `{}`", s.chip),
            ));
        }
        if let Some(prev) = self.origin.get(&s.id) {
            if !(s.replace && self.systems.iter().any(|x| x.id == s.id)) {
                r.problems.push(Problem::new(
                    format!("{at}.id"),
                    format!("duplicate id `{}` (already defined in {prev}); choose another id, or set `override = true` to replace it", s.id),
                ));
            }
        }
        let domain = r.count(&s.domain_chips, &format!("{at}.domain_chips"));
        let up_override = s
            .scale_up_bandwidth
            .as_ref()
            .and_then(|f| r.link(f, &format!("{at}.scale_up_bandwidth")));
        let out_override = s
            .scale_out_bandwidth
            .as_ref()
            .and_then(|f| r.link(f, &format!("{at}.scale_out_bandwidth")));
        let up_lat = r
            .number(
                &s.scale_up_latency,
                Kind::Time,
                &format!("{at}.scale_up_latency"),
            )
            .map(time);
        let out_lat = r
            .number(
                &s.scale_out_latency,
                Kind::Time,
                &format!("{at}.scale_out_latency"),
            )
            .map(time);
        let mut problems = r.problems;
        if let Some(chip) = &chip {
            let up = up_override.or_else(|| chip.scale_up.clone());
            let out = out_override.or_else(|| chip.scale_out.clone());
            if up.is_none() {
                problems.push(Problem::new(
                    format!("{at}.scale_up_bandwidth"),
                    format!(
                        "chip `{}` has no scale-up bandwidth; give one here",
                        chip.id
                    ),
                ));
            }
            if out.is_none() {
                problems.push(Problem::new(
                    format!("{at}.scale_out_bandwidth"),
                    format!(
                        "chip `{}` has no scale-out bandwidth; give one here",
                        chip.id
                    ),
                ));
            }
            if let (true, Some(domain), Some(up), Some(out), Some(ul), Some(ol)) =
                (problems.is_empty(), domain, up, out, up_lat, out_lat)
            {
                if s.replace {
                    self.systems.retain(|x| x.id != s.id);
                }
                self.origin.insert(s.id.clone(), p.file.clone());
                self.systems.push(System {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    chip: chip.id.clone(),
                    domain_chips: domain,
                    scale_up: up,
                    scale_out: out,
                    scale_up_latency: ul,
                    scale_out_latency: ol,
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                file: p.file,
                problems,
            })
        }
    }

    /// All chips, in catalog order.
    #[must_use]
    pub fn chips(&self) -> &[Chip] {
        &self.chips
    }

    /// All systems, in catalog order.
    #[must_use]
    pub fn systems(&self) -> &[System] {
        &self.systems
    }

    /// A chip by id or alias (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnknownId`] listing the known ids.
    pub fn chip(&self, id: &str) -> Result<&Chip> {
        let id = id.to_ascii_lowercase();
        self.chips
            .iter()
            .find(|c| c.id == id || c.aliases.contains(&id))
            .ok_or_else(|| Error::unknown("chip", &id, self.chips.iter().map(|c| c.id.as_str())))
    }

    /// A system by id.
    ///
    /// # Errors
    /// [`Error::UnknownId`] listing the known ids.
    pub fn system(&self, id: &str) -> Result<&System> {
        let id = id.to_ascii_lowercase();
        self.systems.iter().find(|s| s.id == id).ok_or_else(|| {
            Error::unknown("system", &id, self.systems.iter().map(|s| s.id.as_str()))
        })
    }

    /// Resolve a chip or system id into (chip, system): a chip id picks its default system.
    ///
    /// # Errors
    /// [`Error::UnknownId`] when neither a chip nor a system has that id, or the chip has no system.
    pub fn resolve(&self, id: &str) -> Result<(Chip, System)> {
        if let Ok(system) = self.system(id) {
            let chip = self.chip(&system.chip)?;
            return Ok((chip.clone(), system.clone()));
        }
        let chip = self.chip(id).map_err(|_| {
            Error::unknown(
                "chip or system",
                id,
                self.chips
                    .iter()
                    .map(|c| c.id.as_str())
                    .chain(self.systems.iter().map(|s| s.id.as_str())),
            )
        })?;
        let system = match &chip.default_system {
            Some(s) => self.system(s)?,
            None => self
                .systems
                .iter()
                .find(|s| s.chip == chip.id)
                .ok_or_else(|| {
                    Error::input(
                        "hardware",
                        format!("chip `{}` has no system in the catalog", chip.id),
                    )
                })?,
        };
        Ok((chip.clone(), system.clone()))
    }

    /// A cluster of `chips` chips of the chip or system `id`.
    ///
    /// # Errors
    /// Unknown ids and zero chips.
    pub fn cluster(&self, id: &str, chips: u64) -> Result<Cluster> {
        let (chip, system) = self.resolve(id)?;
        Cluster::new(chip, system, chips)
    }
}

fn build_chip(
    c: &ChipFile,
    family: &str,
    vendor: &str,
    at: &str,
    r: &mut Resolver<'_>,
) -> Option<Chip> {
    let mut peaks: [Option<Figure<crate::units::FlopsPerSecond>>; 5] = Default::default();
    for (p, f) in [
        (Precision::Fp32, &c.peak_fp32),
        (Precision::Tf32, &c.peak_tf32),
        (Precision::Bf16, &c.peak_bf16),
        (Precision::Fp8, &c.peak_fp8),
        (Precision::Fp4, &c.peak_fp4),
    ] {
        if let Some(f) = f {
            peaks[p.index()] = r
                .number(f, Kind::FlopRate, &format!("{at}.peak_{p}"))
                .map(flop_rate);
        }
    }
    let num = |r: &mut Resolver<'_>, f: &Option<FigureFile>, kind: Kind, key: &str| {
        f.as_ref()
            .and_then(|f| r.number(f, kind, &format!("{at}.{key}")))
    };
    let hbm_capacity = num(r, &c.hbm_capacity, Kind::Memory, "hbm_capacity").map(memory);
    let hbm_bandwidth = num(r, &c.hbm_bandwidth, Kind::Bandwidth, "hbm_bandwidth").map(bandwidth);
    let sram = num(r, &c.sram, Kind::Memory, "sram").map(memory);
    let tdp = num(r, &c.tdp, Kind::Power, "tdp").map(power);
    let typical_power = num(r, &c.typical_power, Kind::Power, "typical_power").map(power);
    let scale_up = c
        .scale_up_bandwidth
        .as_ref()
        .and_then(|f| r.link(f, &format!("{at}.scale_up_bandwidth")));
    let scale_out = c
        .scale_out_bandwidth
        .as_ref()
        .and_then(|f| r.link(f, &format!("{at}.scale_out_bandwidth")));
    let release = c
        .release
        .as_ref()
        .map(|f| r.text(f, &format!("{at}.release")));
    let process_node = c
        .process_node
        .as_ref()
        .map(|f| r.text(f, &format!("{at}.process_node")));
    let mut prices = Vec::new();
    for (i, p) in c.prices.iter().enumerate() {
        let key = format!("{at}.prices[{i}]");
        let ff = FigureFile {
            value: p.value,
            unit: Some(p.unit.clone()),
            source: p.source.clone(),
            status: p.status,
            note: p.note.clone(),
            range: None,
            alternatives: Vec::new(),
            direction: None,
            divided_by: None,
            multiplied_by: None,
        };
        const KINDS: [&str; 6] = [
            "on-demand",
            "capacity-block",
            "reserved-1y",
            "reserved-3y",
            "spot",
            "purchase",
        ];
        if !KINDS.contains(&p.kind.as_str()) {
            r.problems.push(Problem::new(
                format!("{key}.kind"),
                format!(
                    "unknown price kind `{}`; expected one of {}",
                    p.kind,
                    KINDS.join(", ")
                ),
            ));
        }
        if let Some(f) = r.number(&ff, Kind::Price, &key) {
            prices.push(Price {
                kind: p.kind.clone(),
                per_chip_hour: price(f.value),
                date: p.date.clone(),
                region: p.region.clone(),
                instance: p.instance.clone(),
                provenance: f.provenance,
            });
        }
    }
    if !r.problems.is_empty() {
        return None;
    }
    Some(Chip {
        id: c.id.clone(),
        name: c.name.clone(),
        family: family.to_string(),
        vendor: vendor.to_string(),
        aliases: c.aliases.clone(),
        calibration_group: c.calibration_group.clone(),
        default_system: c.default_system.clone(),
        release,
        process_node,
        peaks,
        hbm_capacity,
        hbm_bandwidth,
        sram,
        scale_up,
        scale_out,
        tdp,
        typical_power,
        prices,
        claims: Vec::new(),
    })
}
