//! Scale-up systems (`[[systems]]`), added once every chip and derivation is in place, and the
//! check that each chip's `default_system` names a system of that chip.

use super::super::figure::{memory, money, power, time, Source};
use super::super::limits::Kind;
use super::super::resolver::Resolver;
use super::super::System;
use super::schema::SystemFile;
use super::Catalog;
use crate::error::{Error, Problem, Result};
use std::collections::BTreeMap;

/// A system entry waiting for the chips it refers to (borrowed from its file).
pub(super) struct PendingSystem<'a> {
    /// The file it comes from.
    pub file: &'a str,
    /// Its key, `systems[x]`.
    pub at: String,
    pub spec: &'a SystemFile,
    /// Its file's sources.
    pub sources: std::rc::Rc<BTreeMap<String, Source>>,
}

impl Catalog {
    /// Check and add one system.
    pub(super) fn add_system(&mut self, p: PendingSystem<'_>) -> Result<()> {
        let s = p.spec;
        let at = &p.at;
        let mut r = Resolver {
            sources: &p.sources,
            problems: Vec::new(),
        };
        let chip = self.chips.iter().find(|c| c.id == s.chip);
        if chip.is_none() {
            let known = self.chips.iter().map(|c| c.id.as_str());
            let hint = crate::error::nearest(&s.chip, known)
                .map_or_else(String::new, |n| format!(" (did you mean `{n}`?)"));
            r.problems.push(Problem::new(
                format!("{at}.chip"),
                format!("unknown chip `{}`{hint}", s.chip),
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
        let domain = r.count(&s.domain_chips, &format_args!("{at}.domain_chips"));
        let link = |r: &mut Resolver<'_>, f: &Option<_>, key: &str| {
            f.as_ref()
                .and_then(|f| r.link(f, &format_args!("{at}.{key}")))
        };
        let up_override = link(&mut r, &s.scale_up_bandwidth, "scale_up_bandwidth");
        let out_override = link(&mut r, &s.scale_out_bandwidth, "scale_out_bandwidth");
        let up_lat = r
            .number(
                &s.scale_up_latency,
                Kind::Time,
                &format_args!("{at}.scale_up_latency"),
            )
            .map(time);
        let out_lat = r
            .number(
                &s.scale_out_latency,
                Kind::Time,
                &format_args!("{at}.scale_out_latency"),
            )
            .map(time);
        let torus = s.scale_up_torus_dims.as_ref().and_then(|f| {
            r.whole(
                f,
                Kind::TorusDims,
                &format_args!("{at}.scale_up_torus_dims"),
            )
        });
        let host_link = link(&mut r, &s.host_link_bandwidth, "host_link_bandwidth");
        let opt = |r: &mut Resolver<'_>, f: &Option<_>, kind: Kind, key: &str| {
            f.as_ref()
                .and_then(|f| r.number(f, kind, &format_args!("{at}.{key}")))
        };
        let host = opt(
            &mut r,
            &s.host_power_per_chip,
            Kind::Power,
            "host_power_per_chip",
        )
        .map(power);
        let net_power = opt(
            &mut r,
            &s.network_power_per_chip,
            Kind::Power,
            "network_power_per_chip",
        )
        .map(power);
        let net_capex = opt(
            &mut r,
            &s.network_capex_per_chip,
            Kind::Capex,
            "network_capex_per_chip",
        )
        .map(money);
        let host_memory = opt(
            &mut r,
            &s.host_memory_per_chip,
            Kind::Memory,
            "host_memory_per_chip",
        )
        .map(memory);
        let system_power =
            opt(&mut r, &s.system_power, Kind::SystemPower, "system_power").map(power);
        if s.power_all_in {
            for (present, key) in [
                (s.host_power_per_chip.is_some(), "host_power_per_chip"),
                (s.network_power_per_chip.is_some(), "network_power_per_chip"),
            ] {
                if present {
                    r.problems.push(Problem::new(
                        format!("{at}.{key}"),
                        "an all-in system (power_all_in = true) already counts host and network power in the chip's figure; remove this key or set power_all_in = false",
                    ));
                }
            }
        }
        let mut problems = r.problems;
        if let Some(chip) = chip {
            let up = up_override.or_else(|| chip.scale_up.clone());
            let out = out_override.or_else(|| chip.scale_out.clone());
            for (present, key, what) in [
                (up.is_some(), "scale_up_bandwidth", "scale-up"),
                (out.is_some(), "scale_out_bandwidth", "scale-out"),
            ] {
                if !present {
                    problems.push(Problem::new(
                        format!("{at}.{key}"),
                        format!("chip `{}` has no {what} bandwidth; give one here", chip.id),
                    ));
                }
            }
            if let (true, Some(domain), Some(up), Some(out), Some(ul), Some(ol)) =
                (problems.is_empty(), domain, up, out, up_lat, out_lat)
            {
                if s.replace {
                    self.systems.retain(|x| x.id != s.id);
                }
                self.origin.insert(s.id.clone(), p.file.to_string());
                self.systems.push(System {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    chip: chip.id.clone(),
                    domain_chips: domain,
                    scale_up: up,
                    scale_out: out,
                    scale_up_latency: ul,
                    scale_out_latency: ol,
                    scale_up_torus_dims: torus,
                    host_memory_per_chip: host_memory,
                    host_link,
                    host_power_per_chip: host,
                    network_power_per_chip: net_power,
                    network_capex_per_chip: net_capex,
                    system_power,
                    power_all_in: s.power_all_in,
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                file: p.file.to_string(),
                problems,
            })
        }
    }

    /// Every chip's `default_system` exists and is a system of that chip.
    pub(super) fn check_default_systems(&self) -> Result<()> {
        let mut errors: BTreeMap<String, Vec<Problem>> = BTreeMap::new();
        for c in &self.chips {
            let Some(id) = &c.default_system else {
                continue;
            };
            let reason = match self.systems.iter().find(|s| &s.id == id) {
                Some(s) if s.chip == c.id => continue,
                Some(s) => format!("system `{id}` is made of `{}`, not `{}`", s.chip, c.id),
                None => {
                    let known = self.systems.iter().map(|s| s.id.as_str());
                    let hint = crate::error::nearest(id, known)
                        .map_or_else(String::new, |n| format!(" (did you mean `{n}`?)"));
                    format!("unknown system `{id}`{hint}")
                }
            };
            let file = self.origin.get(&c.id).cloned().unwrap_or_default();
            errors.entry(file).or_default().push(Problem::new(
                format!("chips[{}].default_system", c.id),
                reason,
            ));
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some((file, problems)) => Err(Error::Invalid { file, problems }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, user, GOOD};

    fn has(text: &str, key: &str) {
        let k = keys(user(text));
        assert!(k.iter().any(|x| x == key), "{key} not in {k:?}");
    }

    #[test]
    fn domain_chips_must_be_a_sane_whole_number() {
        for bad in ["0", "-3", "2.5", "1e300", "20000000"] {
            has(
                &GOOD.replace(
                    "domain_chips = { value = 32,",
                    &format!("domain_chips = {{ value = {bad},"),
                ),
                "systems[acme-rack].domain_chips.value",
            );
        }
    }

    #[test]
    fn latencies_are_range_checked() {
        has(
            &GOOD.replace("value = 10, unit = \"us\"", "value = 10, unit = \"s\""),
            "systems[acme-rack].scale_out_latency.value",
        );
    }

    /// `GOOD` with `line` added to the system.
    fn sys_extra(line: &str) -> String {
        format!("{GOOD}{line}\n")
    }

    #[test]
    fn power_and_network_figures_are_checked_by_key() {
        let ok = sys_extra(
            "host_power_per_chip = { value = 400, unit = \"W\", source = \"A\", status = \"assumed\", range = [300, 500], note = \"n\" }\n\
             network_power_per_chip = { value = 100, unit = \"W\", source = \"A\", status = \"assumed\", range = [50, 200], note = \"n\" }\n\
             network_capex_per_chip = { value = 6, unit = \"kUSD\", source = \"A\", status = \"assumed\", range = [3, 12], note = \"n\" }\n\
             system_power = { value = 40, unit = \"kW\", source = \"A\", status = \"official\" }",
        );
        let c = user(&ok).unwrap_or_else(|e| panic!("{e}"));
        let s = c.system("acme-rack").unwrap_or_else(|e| panic!("{e}"));
        assert!(s
            .network_capex_per_chip
            .as_ref()
            .is_some_and(|f| (f.value.usd() - 6000.0).abs() < 1e-9));
        assert!(s
            .system_power
            .as_ref()
            .is_some_and(|f| (f.value.watts() - 40e3).abs() < 1e-9));
        let w = s.power_per_chip(crate::units::Watts::new(700.0));
        assert!(w.is_some_and(|w| (w.watts() - 1200.0).abs() < 1e-9));
        for (line, key) in [
            ("host_power_per_chip = { value = 400, unit = \"USD\", source = \"A\", status = \"official\" }", "host_power_per_chip.unit"),
            ("host_power_per_chip = { value = 4, unit = \"MW\", source = \"A\", status = \"official\" }", "host_power_per_chip.value"),
            ("network_power_per_chip = { value = 100, unit = \"Gbit/s\", source = \"A\", status = \"official\" }", "network_power_per_chip.unit"),
            ("network_power_per_chip = { value = 1e-3, unit = \"W\", source = \"A\", status = \"official\" }", "network_power_per_chip.value"),
            ("network_capex_per_chip = { value = 6000, unit = \"W\", source = \"A\", status = \"official\" }", "network_capex_per_chip.unit"),
            ("network_capex_per_chip = { value = 1e9, unit = \"USD\", source = \"A\", status = \"official\" }", "network_capex_per_chip.value"),
            ("system_power = { value = 40, unit = \"kUSD\", source = \"A\", status = \"official\" }", "system_power.unit"),
            ("system_power = { value = 100, unit = \"GW\", source = \"A\", status = \"official\" }", "system_power.value"),
            ("power_all_in = true\nhost_power_per_chip = { value = 400, unit = \"W\", source = \"A\", status = \"official\" }", "host_power_per_chip"),
        ] {
            has(&sys_extra(line), &format!("systems[acme-rack].{key}"));
        }
    }

    #[test]
    fn default_system_must_exist_and_match() {
        has(
            &GOOD.replace(
                "default_system = \"acme-rack\"",
                "default_system = \"acme-rak\"",
            ),
            "chips[acme-x1].default_system",
        );
        has(
            &GOOD.replace(
                "default_system = \"acme-rack\"",
                "default_system = \"trn3-ultraserver-gen2\"",
            ),
            "chips[acme-x1].default_system",
        );
    }

    #[test]
    fn unknown_chip_suggests_the_nearest() {
        let e = user(&GOOD.replace("chip = \"acme-x1\"", "chip = \"acme-x2\""))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("systems[acme-rack].chip") && e.contains("acme-x1"),
            "{e}"
        );
    }
}
