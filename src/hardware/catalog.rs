//! The hardware catalog: built-in TOML files plus the user's own, validated in two stages
//! (raw file structs, then resolved figures with every problem reported at once).
//!
//! This file loads and merges files; [`schema`] is what a file may hold, [`chip`] builds one chip,
//! [`derive`] computes figures from other chips', [`system`] adds scale-up systems, [`lookup`]
//! answers queries and [`builtin`] loads the built-in files lazily, from the JSON form `build.rs`
//! makes of them, an entry at a time.

mod builtin;
mod chip;
mod derive;
mod lookup;
mod schema;
mod system;
#[cfg(test)]
mod testing;

use super::figure::Source;
use super::limits::{check_id, check_name, check_source_key};
use super::{Chip, Provenance, Status, System};
use crate::error::{parse_toml, read_file, Error, Problem, Result};
use crate::units::UsdPerChipHour;
use builtin::{builtin_name, Lazy};
use derive::PendingDerive;
use schema::{CatalogFile, SCHEMA_VERSION};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use system::PendingSystem;

const BUILT_IN: [(&str, &str); 3] = [
    ("trainium.toml", include_str!("catalog/trainium.toml")),
    ("tpu.toml", include_str!("catalog/tpu.toml")),
    ("nvidia.toml", include_str!("catalog/nvidia.toml")),
];

/// A price with its date and source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Price {
    /// `on-demand`, `capacity-block`, `reserved-1y`, `reserved-3y`, `spot` or `purchase` (the
    /// file's value is checked against this list).
    pub kind: String,
    /// Dollars per chip-hour.
    pub per_chip_hour: UsdPerChipHour,
    /// Low and high ends of the uncertainty band of a non-official price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<(UsdPerChipHour, UsdPerChipHour)>,
    /// When the price was read (`YYYY-MM-DD` or `YYYY-MM`, so dates sort as text).
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

/// One parsed file, kept so that the catalog can be rebuilt when a file is added.
#[derive(Clone, Debug)]
struct Loaded {
    name: String,
    file: CatalogFile,
    is_user: bool,
}

/// Chips and systems, built-in and user-supplied.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    chips: Vec<Chip>,
    systems: Vec<System>,
    /// Which file each chip/system id came from, for duplicate messages.
    origin: BTreeMap<String, String>,
    /// The files it was built from, in order.
    files: Vec<Loaded>,
    /// For the built-in catalog: its entries, resolved on first use (the fields above are then
    /// empty and every query goes through this).
    lazy: Option<Box<Lazy>>,
}

impl Catalog {
    /// The built-in catalog (embedded TOML files).
    ///
    /// Cheap: an entry is read and resolved when it is first looked up (a chip with the chips it
    /// derives from and their systems), the whole catalog when it is first listed. The built-in
    /// files are validated by the test suite, entry by entry and as a whole.
    ///
    /// # Errors
    /// Only if the embedded files are broken, which the test suite rules out; a broken entry
    /// found later is reported by the lookup that needs it, or by [`Catalog::check`].
    pub fn builtin() -> Result<Self> {
        match Lazy::new() {
            Some(lazy) => Ok(Self {
                lazy: Some(Box::new(lazy)),
                ..Self::default()
            }),
            None => Self::builtin_from_toml(),
        }
    }

    /// The built-in catalog parsed from its TOML text and resolved as a whole, as a user file is
    /// (the reference [`Catalog::builtin`] is tested against).
    ///
    /// # Errors
    /// Only if the embedded files are broken, which the test suite rules out.
    pub fn builtin_from_toml() -> Result<Self> {
        let files: Vec<(String, String, bool)> = BUILT_IN
            .iter()
            .map(|(name, text)| (builtin_name(name), text.to_string(), false))
            .collect();
        Self::from_sources(&files)
    }

    /// The catalog that answers a lookup of `id` (lowercase): this one, or for the lazy built-in
    /// catalog the resolved part that holds it (`None` when it holds no such id).
    fn part_for(&self, id: &str, wanted: builtin::Wanted) -> Result<Option<&Self>> {
        match &self.lazy {
            None => Ok(Some(self)),
            Some(lazy) => lazy.part_for(id, wanted),
        }
    }

    /// The ids of the chips, the systems or both, in catalog order, for messages (the built-in
    /// catalog lists them without resolving anything).
    fn ids(&self, wanted: builtin::Wanted) -> Vec<&str> {
        if let Some(lazy) = &self.lazy {
            return lazy.ids(wanted);
        }
        let chips = self.chips.iter().map(|c| c.id.as_str());
        let systems = self.systems.iter().map(|s| s.id.as_str());
        match wanted {
            builtin::Wanted::Chip => chips.collect(),
            builtin::Wanted::System => systems.collect(),
            builtin::Wanted::Either => chips.chain(systems).collect(),
        }
    }

    /// This catalog resolved as a whole.
    fn whole(&self) -> Result<&Self> {
        match &self.lazy {
            None => Ok(self),
            Some(lazy) => lazy.full(),
        }
    }

    /// The built-in catalog extended (or overridden, with `override = true`) by user files,
    /// read with [`crate::io::read_input`]; each is added as by [`Catalog::with_toml_str`].
    ///
    /// # Errors
    /// I/O errors, parse errors and validation problems, each naming the file and key.
    pub fn with_user_files(paths: &[impl AsRef<Path>]) -> Result<Self> {
        if paths.is_empty() {
            return Self::builtin();
        }
        let mut texts = Vec::with_capacity(paths.len());
        for p in paths {
            let p = p.as_ref();
            texts.push((p.display().to_string(), read_file(p)?));
        }
        Self::builtin()?.extend(texts)
    }

    /// This catalog extended by the TOML text of one user file called `name` (used in
    /// messages), exactly as a user file is: new chips and systems are added, entries with
    /// `override = true` replace those with the same id, and derivations and systems are
    /// resolved again over the whole catalog so that they see the replacements.
    ///
    /// ```
    /// use xpusim::hardware::Catalog;
    /// let c = Catalog::builtin()?.with_toml_str("mine.toml", r#"
    /// schema_version = 1
    /// family = "acme"
    /// vendor = "Acme"
    /// [sources.A]
    /// title = "Acme datasheet"
    /// locator = "acme.example/x1"
    /// kind = "official"
    /// [[chips]]
    /// id = "acme-x1"
    /// name = "Acme X1"
    /// calibration_group = "acme"
    /// peak_bf16 = { value = 1000, unit = "TFLOP/s", source = "A", status = "official" }
    /// "#)?;
    /// assert!(c.chip("acme-x1").is_ok());
    /// assert!(c.chip("trn3").is_ok());
    /// # Ok::<(), xpusim::Error>(())
    /// ```
    ///
    /// # Errors
    /// Parse errors and validation problems, each naming `name` (or the file at fault) and key.
    pub fn with_toml_str(self, name: &str, text: &str) -> Result<Self> {
        self.extend(vec![(name.to_string(), text.to_string())])
    }

    /// This catalog with user files `(name, text)` added, rebuilt from all its files.
    fn extend(self, texts: Vec<(String, String)>) -> Result<Self> {
        if texts.is_empty() {
            return Ok(self);
        }
        let mut files = match &self.lazy {
            Some(lazy) => lazy.files()?,
            None => self.files,
        };
        for (name, text) in texts {
            files.push(Loaded {
                file: parse_toml(&name, &text)?,
                name,
                is_user: true,
            });
        }
        Self::build(files)
    }

    /// Build from `(file name, TOML text, is_user)` triples.
    ///
    /// # Errors
    /// Parse errors and validation problems, each naming the file and key.
    pub fn from_sources(files: &[(String, String, bool)]) -> Result<Self> {
        let mut loaded = Vec::with_capacity(files.len());
        for (name, text, is_user) in files {
            loaded.push(Loaded {
                name: name.clone(),
                file: parse_toml(name, text)?,
                is_user: *is_user,
            });
        }
        Self::build(loaded)
    }

    /// Add the files in order, then resolve derivations, then add systems.
    fn build(files: Vec<Loaded>) -> Result<Self> {
        let mut cat = Catalog::default();
        let mut derives = Vec::new();
        let mut systems = Vec::new();
        for f in &files {
            cat.add_file(f, &mut derives, &mut systems)?;
        }
        cat.resolve_derivations(derives)?;
        for s in systems {
            cat.add_system(s)?;
        }
        cat.check_default_systems()?;
        cat.files = files;
        Ok(cat)
    }

    /// Check a file's header and sources, build its chips and queue its derivations and systems.
    fn add_file<'a>(
        &mut self,
        loaded: &'a Loaded,
        derives: &mut Vec<PendingDerive>,
        systems: &mut Vec<PendingSystem<'a>>,
    ) -> Result<()> {
        let Loaded {
            name,
            file,
            is_user,
        } = loaded;
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
        problems.extend(check_id(&file.family, "family"));
        problems.extend(check_name(&file.vendor, "vendor"));
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
        let mut sources = file.sources.clone();
        for (k, s) in &mut sources {
            problems.extend(check_source_key(k, format_args!("sources.{k}")));
            s.key = k.clone();
        }
        for (i, chip) in file.chips.iter().enumerate() {
            self.add_chip(name, file, i, chip, &sources, derives, &mut problems);
        }
        let sources = std::rc::Rc::new(sources);
        for (i, s) in file.systems.iter().enumerate() {
            let at = entry_key("systems", i, &s.id);
            problems.extend(check_id(&s.id, format_args!("{at}.id")));
            problems.extend(check_name(&s.name, format_args!("{at}.name")));
            systems.push(PendingSystem {
                file: name,
                at,
                spec: s,
                sources: std::rc::Rc::clone(&sources),
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                file: name.clone(),
                problems,
            })
        }
    }
}

/// The key of the `i`th entry of `table`: `chips[trn3]` by id, or `chips[0]` when the id is too
/// long or odd to repeat in every message.
fn entry_key(table: &str, i: usize, id: &str) -> String {
    if check_id(id, "").is_none() {
        format!("{table}[{id}]")
    } else {
        format!("{table}[{i}]")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{keys, user, GOOD};
    use super::*;

    #[test]
    fn every_builtin_figure_passes_the_range_checks() {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        c.check().unwrap_or_else(|e| panic!("{e}"));
        assert!(c.chips().len() >= 14 && !c.systems().is_empty());
    }

    #[test]
    fn the_builtin_toml_passes_every_check() {
        let c = Catalog::builtin_from_toml().unwrap_or_else(|e| panic!("{e}"));
        assert!(c.lazy.is_none() && c.chips().len() >= 14 && !c.systems().is_empty());
    }

    #[test]
    fn the_lazy_builtin_catalog_is_the_toml_one_entry_by_entry_and_whole() {
        let toml = Catalog::builtin_from_toml().unwrap_or_else(|e| panic!("{e}"));
        let ok = |r: Result<(Chip, System)>| r.unwrap_or_else(|e| panic!("{e}"));
        for chip in toml.chips() {
            // A fresh catalog each time, so that the chip comes from its own part.
            let lazy = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
            assert!(lazy.lazy.is_some(), "every built-in file has its fast form");
            assert_eq!(lazy.chip(&chip.id).ok(), Some(chip), "{}", chip.id);
            for a in &chip.aliases {
                assert_eq!(lazy.chip(a).map(|c| &c.id).ok(), Some(&chip.id), "{a}");
            }
            let fresh = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ok(fresh.resolve(&chip.id)), ok(toml.resolve(&chip.id)));
        }
        for system in toml.systems() {
            let lazy = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(lazy.system(&system.id).ok(), Some(system), "{}", system.id);
            let fresh = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ok(fresh.resolve(&system.id)), ok(toml.resolve(&system.id)));
        }
        let lazy = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lazy.chips(), toml.chips());
        assert_eq!(lazy.systems(), toml.systems());
        let json = |c: &Catalog| {
            serde_json::to_string(&(c.chips(), c.systems())).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(json(&lazy), json(&toml));
        assert_eq!(format!("{:?}", lazy.chips()), format!("{:?}", toml.chips()));
        // Once whole, lookups answer from the whole catalog.
        assert_eq!(lazy.chip("h100").ok(), toml.chip("h100").ok());
        let files = |c: &Catalog| -> Vec<String> {
            let files = match &c.lazy {
                Some(l) => l.files().unwrap_or_else(|e| panic!("{e}")),
                None => c.files.clone(),
            };
            files.iter().map(|f| format!("{:?}", f.file)).collect()
        };
        assert_eq!(files(&lazy), files(&toml));
    }

    #[test]
    fn unknown_ids_get_the_same_message_from_the_lazy_catalog() {
        let toml = Catalog::builtin_from_toml().unwrap_or_else(|e| panic!("{e}"));
        let msg = |r: Result<String>| r.err().map(|e| e.to_string()).unwrap_or_default();
        for id in ["trn33", "h100-sxm5", "hgx-h10", ""] {
            let lazy = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
            let chip = |c: &Catalog| msg(c.chip(id).map(|c| c.id.clone()));
            let system = |c: &Catalog| msg(c.system(id).map(|s| s.id.clone()));
            let resolve = |c: &Catalog| msg(c.resolve(id).map(|(c, _)| c.id));
            assert_eq!(chip(&lazy), chip(&toml));
            assert_eq!(system(&lazy), system(&toml));
            assert_eq!(resolve(&lazy), resolve(&toml));
            assert!(!chip(&lazy).is_empty());
        }
    }

    #[test]
    fn no_user_files_is_the_builtin_catalog() {
        let none: [&str; 0] = [];
        let c = Catalog::with_user_files(&none).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.lazy.is_some());
    }

    #[test]
    fn every_builtin_chip_has_an_on_demand_and_a_purchase_price() {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        for chip in c.chips() {
            assert!(
                crate::cost::catalog_price(chip, "on-demand").is_some(),
                "{} has no on-demand price",
                chip.id
            );
            assert!(chip.purchase.is_some(), "{} has no purchase price", chip.id);
            assert!(chip.idle_power.is_some(), "{} has no idle power", chip.id);
        }
    }

    #[test]
    fn every_builtin_system_has_host_and_network_figures_or_is_all_in() {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        for s in c.systems() {
            if s.power_all_in {
                assert!(s.host_power_per_chip.is_none() && s.network_power_per_chip.is_none());
                assert!(
                    s.system_power.is_some(),
                    "{}: all-in needs its system power",
                    s.id
                );
            } else {
                assert!(
                    s.host_power_per_chip.is_some(),
                    "{} has no host power",
                    s.id
                );
                assert!(
                    s.network_power_per_chip.is_some(),
                    "{} has no network power",
                    s.id
                );
            }
            assert!(
                s.network_capex_per_chip.is_some(),
                "{} has no network capex",
                s.id
            );
            let chip = c.chip(&s.chip).unwrap_or_else(|e| panic!("{e}"));
            let tdp = chip.tdp.as_ref().map_or(700.0, |f| f.value.watts());
            let all_in = s.power_per_chip(crate::units::Watts::new(tdp));
            assert!(all_in.is_some_and(|w| w.watts() >= tdp), "{}", s.id);
        }
    }

    #[test]
    fn builtin_assumed_money_and_power_figures_carry_a_range_and_a_note() {
        fn check<T>(f: &Option<super::super::Figure<T>>, what: &str) {
            if let Some(f) = f {
                if matches!(f.provenance.status, Status::Assumed | Status::Derived) {
                    assert!(f.range.is_some(), "{what} has no range");
                }
                if f.provenance.status != Status::Official {
                    assert!(f.provenance.note.is_some(), "{what} has no note");
                }
            }
        }
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        for chip in c.chips() {
            check(&chip.idle_power, &format!("{}.idle_power", chip.id));
            check(&chip.purchase, &format!("{}.purchase", chip.id));
            for p in &chip.prices {
                if p.provenance.status == Status::Assumed {
                    let what = format!("{}.prices[{}]", chip.id, p.kind);
                    assert!(p.range.is_some(), "{what} has no range");
                    assert!(p.provenance.note.is_some(), "{what} has no note");
                }
            }
        }
        for s in c.systems() {
            check(
                &s.host_power_per_chip,
                &format!("{}.host_power_per_chip", s.id),
            );
            check(
                &s.network_power_per_chip,
                &format!("{}.network_power_per_chip", s.id),
            );
            check(
                &s.network_capex_per_chip,
                &format!("{}.network_capex_per_chip", s.id),
            );
        }
    }

    #[test]
    fn derived_host_power_is_system_power_per_chip_less_the_chip() {
        let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let mut checked = 0;
        for s in c.systems() {
            let (Some(host), Some(sys)) = (&s.host_power_per_chip, &s.system_power) else {
                continue;
            };
            if host.provenance.status != Status::Derived {
                continue;
            }
            let chip = c.chip(&s.chip).unwrap_or_else(|e| panic!("{e}"));
            let tdp = chip
                .tdp
                .as_ref()
                .map(|f| f.value.watts())
                .unwrap_or_default();
            #[allow(clippy::cast_precision_loss)]
            let per_chip = sys.value.watts() / s.domain_chips.value as f64;
            approx::assert_relative_eq!(host.value.watts(), per_chip - tdp, max_relative = 1e-3);
            checked += 1;
        }
        assert!(checked >= 7, "{checked}");
        let pod = c.system("tpu-7x-pod").unwrap_or_else(|e| panic!("{e}"));
        assert!(pod.power_all_in);
        let w = crate::units::Watts::new(1085.0);
        assert_eq!(pod.power_per_chip(w), Some(w));
    }

    #[test]
    fn with_toml_str_adds_a_chip() {
        let c = Catalog::builtin()
            .and_then(|c| c.with_toml_str("mine.toml", GOOD))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.chip("acme-x1").is_ok() && c.system("acme-rack").is_ok());
        assert!(c.chip("trn3").is_ok());
    }

    #[test]
    fn with_toml_str_overrides_a_chip_and_derivations_follow() {
        let base = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let trn3 = base.chip("trn3").unwrap_or_else(|e| panic!("{e}")).clone();
        let trn4_hbm = |c: &Catalog| {
            c.chip("trn4")
                .ok()
                .and_then(|x| x.hbm_capacity.as_ref())
                .map(|f| f.value.bytes())
        };
        let text = r#"
schema_version = 1
family = "mine"
vendor = "Me"
[sources.A]
title = "t"
locator = "l"
kind = "secondary"
[[chips]]
id = "trn3"
override = true
name = "Trainium3 (my reading)"
aliases = ["trainium3"]
calibration_group = "trainium"
default_system = "trn3-ultraserver-gen2"
peak_fp8 = { value = 2517, unit = "TFLOP/s", source = "A", status = "press" }
peak_fp4 = { value = 2517, unit = "TFLOP/s", source = "A", status = "press" }
hbm_capacity = { value = 100, unit = "GiB", source = "A", status = "press" }
hbm_bandwidth = { value = 4, unit = "TB/s", source = "A", status = "press" }
scale_up_bandwidth = { value = 1, unit = "TB/s", direction = "unstated", source = "A", status = "press" }
scale_out_bandwidth = { value = 100, unit = "GB/s", direction = "unstated", source = "A", status = "press" }
tdp = { value = 1000, unit = "W", source = "A", status = "press" }
"#;
        let c = base
            .clone()
            .with_toml_str("mine.toml", text)
            .unwrap_or_else(|e| panic!("{e}"));
        let mine = c.chip("trn3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mine.name, "Trainium3 (my reading)");
        assert_ne!(mine.hbm_capacity, trn3.hbm_capacity);
        // trn4 is derived from trn3 in the built-in files: it follows the replacement.
        if let (Some(old), Some(new)) = (trn4_hbm(&base), trn4_hbm(&c)) {
            approx::assert_relative_ne!(old, new);
        }
        assert_eq!(c.chips().len(), base.chips().len());
        let dup = base.with_toml_str("mine.toml", &text.replace("override = true\n", ""));
        assert!(keys(dup).contains(&"chips[trn3].id".to_string()));
    }

    #[test]
    fn user_files_go_through_with_toml_str() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("acme.toml");
        std::fs::write(&p, GOOD).unwrap_or_else(|e| panic!("{e}"));
        let c = Catalog::with_user_files(&[&p]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.chip("acme-x1").is_ok());
        let missing = Catalog::with_user_files(&[dir.path().join("nope.toml")]);
        assert!(matches!(missing, Err(Error::Io { .. })));
    }

    #[test]
    fn over_long_ids_and_names_are_refused_by_key() {
        let long_id = "a".repeat(65);
        let k = keys(user(
            &GOOD.replace("id = \"acme-x1\"", &format!("id = \"{long_id}\"")),
        ));
        assert!(k.contains(&"chips[0].id".to_string()), "{k:?}");
        let long_name = "N".repeat(201);
        let k = keys(user(&GOOD.replace("Acme rack", &long_name)));
        assert!(k.contains(&"systems[acme-rack].name".to_string()), "{k:?}");
        let k = keys(user(&GOOD.replace("[sources.A]", "[sources.\"A B\"]")));
        assert!(k.contains(&"sources.A B".to_string()), "{k:?}");
    }

    #[test]
    fn unknown_enum_values_are_refused_with_the_allowed_ones() {
        for (from, to, key, allowed) in [
            (
                "status = \"official\" }\nhbm_capacity",
                "status = \"rumour\" }\nhbm_capacity",
                "peak_bf16",
                "projection",
            ),
            (
                "kind = \"official\"",
                "kind = \"blog\"",
                "sources",
                "secondary",
            ),
            (
                "direction = \"bidirectional\"",
                "direction = \"both\"",
                "scale_up_bandwidth",
                "per-direction",
            ),
        ] {
            let err = user(&GOOD.replacen(from, to, 1)).err();
            let msg = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                msg.contains("my-chips.toml") && msg.contains(key) && msg.contains(allowed),
                "{msg}"
            );
        }
    }
}
