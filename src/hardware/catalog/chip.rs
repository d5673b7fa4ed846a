//! One `[[chips]]` entry: its names checked, its figures resolved, its derivations queued.

use super::super::limits::{check_date, check_id, check_name, Kind};
use super::super::resolver::{key, FigureFile, Resolver};
use super::super::{figure, Chip, Claim, Figure, Precision};
use super::derive::PendingDerive;
use super::schema::{CatalogFile, ChipFile};
use super::{entry_key, Catalog, Price};
use crate::error::Problem;
use crate::units::FlopsPerSecond;
use std::collections::BTreeMap;

impl Catalog {
    /// Check and build the `i`th chip of `file`, adding it (and queueing its derivations) when it
    /// has no problem; problems go to `problems`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_chip(
        &mut self,
        name: &str,
        file: &CatalogFile,
        i: usize,
        spec: &ChipFile,
        sources: &BTreeMap<String, figure::Source>,
        derives: &mut Vec<PendingDerive>,
        problems: &mut Vec<Problem>,
    ) {
        let at = entry_key("chips", i, &spec.id);
        let mut r = Resolver {
            sources,
            problems: Vec::new(),
        };
        r.problems
            .extend(check_id(&spec.id, format_args!("{at}.id")));
        r.problems
            .extend(check_name(&spec.name, format_args!("{at}.name")));
        for (j, a) in spec.aliases.iter().enumerate() {
            r.problems
                .extend(check_id(a, format_args!("{at}.aliases[{j}]")));
        }
        r.problems.extend(check_id(
            &spec.calibration_group,
            format_args!("{at}.calibration_group"),
        ));
        if let Some(s) = &spec.default_system {
            r.problems
                .extend(check_id(s, format_args!("{at}.default_system")));
        }
        let built = build_chip(spec, &file.family, &file.vendor, &at, &mut r);
        problems.append(&mut r.problems);
        // Duplicate ids: within the file, across files, and against aliases. An override may
        // reuse the id and aliases of the chip it replaces, and only those.
        let replaced: Vec<String> = match self.chips.iter().find(|c| c.id == spec.id) {
            Some(old) if spec.replace => std::iter::once(old.id.clone())
                .chain(old.aliases.iter().cloned())
                .collect(),
            _ => Vec::new(),
        };
        let mut names = vec![spec.id.clone()];
        names.extend(spec.aliases.iter().cloned());
        for n in &names {
            if let Some(prev) = self.origin.get(n) {
                if replaced.contains(n) {
                    continue;
                }
                problems.push(Problem::new(
                    format!("{at}.id"),
                    format!("duplicate id or alias `{n}` (already defined in {prev}); choose another id, or set `override = true` to replace it"),
                ));
            }
        }
        let Some(mut chip) = built else { return };
        if !replaced.is_empty() {
            self.chips.retain(|c| c.id != chip.id);
            for n in &replaced {
                self.origin.remove(n);
            }
            // The replaced chip's own derivations go with it.
            derives.retain(|d| d.target != spec.id);
        }
        for n in &names {
            self.origin.insert(n.clone(), name.to_string());
        }
        for d in &spec.derive {
            let key = format!("{at}.derive[{}]", d.field.as_str());
            match sources.get(&d.source) {
                Some(s) => derives.push(PendingDerive {
                    target: spec.id.clone(),
                    file: name.to_string(),
                    at: key,
                    spec: d.clone(),
                    source: s.clone(),
                }),
                None => problems.push(Problem::new(
                    format!("{key}.source"),
                    format!("source key `{}` is not defined in [sources]", d.source),
                )),
            }
        }
        for (j, c) in spec.claims.iter().enumerate() {
            match sources.get(&c.source) {
                Some(s) => chip.claims.push(Claim {
                    text: c.text.clone(),
                    source: s.clone(),
                    status: c.status,
                    reading: c.reading.clone(),
                }),
                None => problems.push(Problem::new(
                    format!("{at}.claims[{j}].source"),
                    format!("source key `{}` is not defined in [sources]", c.source),
                )),
            }
        }
        self.chips.push(chip);
    }
}

/// The chip of a file entry, or `None` with the problems in `r`.
fn build_chip(
    c: &ChipFile,
    family: &str,
    vendor: &str,
    at: &str,
    r: &mut Resolver<'_>,
) -> Option<Chip> {
    let mut peaks: [Option<Figure<FlopsPerSecond>>; 5] = Default::default();
    for (p, f) in [
        (Precision::Fp32, &c.peak_fp32),
        (Precision::Tf32, &c.peak_tf32),
        (Precision::Bf16, &c.peak_bf16),
        (Precision::Fp8, &c.peak_fp8),
        (Precision::Fp4, &c.peak_fp4),
    ] {
        if let Some(f) = f {
            peaks[p.index()] = r
                .number(f, Kind::FlopRate, &format_args!("{at}.peak_{p}"))
                .map(figure::flop_rate);
        }
    }
    let num = |r: &mut Resolver<'_>, f: &Option<FigureFile>, kind: Kind, key: &str| {
        f.as_ref()
            .and_then(|f| r.number(f, kind, &format_args!("{at}.{key}")))
    };
    let hbm_capacity = num(r, &c.hbm_capacity, Kind::Memory, "hbm_capacity").map(figure::memory);
    let hbm_bandwidth =
        num(r, &c.hbm_bandwidth, Kind::Bandwidth, "hbm_bandwidth").map(figure::bandwidth);
    let sram = num(r, &c.sram, Kind::Memory, "sram").map(figure::memory);
    let matrix_units = c
        .matrix_units
        .as_ref()
        .and_then(|f| r.whole(f, Kind::MatrixUnits, &format_args!("{at}.matrix_units")));
    let systolic_array = c
        .systolic_array
        .as_ref()
        .and_then(|f| r.whole(f, Kind::MatrixUnits, &format_args!("{at}.systolic_array")));
    let softmax_exp_rate =
        num(r, &c.softmax_exp_rate, Kind::ExpRate, "softmax_exp_rate").map(figure::exp_rate);
    let tdp = num(r, &c.tdp, Kind::Power, "tdp").map(figure::power);
    let typical_power = num(r, &c.typical_power, Kind::Power, "typical_power").map(figure::power);
    let idle_power = num(r, &c.idle_power, Kind::Power, "idle_power").map(figure::power);
    let purchase = num(r, &c.purchase, Kind::Capex, "purchase").map(figure::money);
    let link = |r: &mut Resolver<'_>, f: &Option<FigureFile>, key: &str| {
        f.as_ref()
            .and_then(|f| r.link(f, &format_args!("{at}.{key}")))
    };
    let scale_up = link(r, &c.scale_up_bandwidth, "scale_up_bandwidth");
    let scale_out = link(r, &c.scale_out_bandwidth, "scale_out_bandwidth");
    let release = c
        .release
        .as_ref()
        .map(|f| r.text(f, &format_args!("{at}.release")));
    let process_node = c
        .process_node
        .as_ref()
        .map(|f| r.text(f, &format_args!("{at}.process_node")));
    let mut prices = Vec::new();
    for (i, p) in c.prices.iter().enumerate() {
        let key = &key(|f| write!(f, "{at}.prices[{i}]"));
        r.problems
            .extend(check_date(&p.date, format_args!("{key}.date")));
        let ff = FigureFile {
            value: p.value,
            unit: Some(p.unit.clone()),
            source: p.source.clone(),
            status: p.status,
            note: p.note.clone(),
            range: p.range,
            alternatives: Vec::new(),
            direction: None,
            divided_by: None,
            multiplied_by: None,
        };
        if let Some(f) = r.number(&ff, Kind::Price, key) {
            prices.push(Price {
                kind: p.kind.as_str().to_string(),
                per_chip_hour: figure::price(f.value),
                range: f
                    .range
                    .map(|(lo, hi)| (figure::price(lo), figure::price(hi))),
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
        matrix_units,
        systolic_array,
        softmax_exp_rate,
        scale_up,
        scale_out,
        tdp,
        typical_power,
        idle_power,
        purchase,
        prices,
        claims: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, user, with_chip_extra, GOOD};

    fn has(text: &str, key: &str) {
        let k = keys(user(text));
        assert!(k.iter().any(|x| x == key), "{key} not in {k:?}");
    }

    #[test]
    fn huge_and_subnormal_figures_are_refused_after_conversion() {
        has(
            &GOOD.replace(
                "value = 1000, unit = \"TFLOP/s\"",
                "value = 1e300, unit = \"PFLOP/s\"",
            ),
            "chips[acme-x1].peak_bf16.value",
        );
        has(
            &GOOD.replace(
                "value = 128, unit = \"GB\"",
                "value = 1e-310, unit = \"TB\"",
            ),
            "chips[acme-x1].hbm_capacity.value",
        );
        has(
            &GOOD.replace("value = 700, unit = \"W\"", "value = 7, unit = \"MW\""),
            "chips[acme-x1].tdp.value",
        );
    }

    #[test]
    fn alternatives_with_bad_units_are_refused() {
        has(
            &GOOD.replace(
                "value = 128, unit = \"GB\", source = \"A\", status = \"official\"",
                "value = 128, unit = \"GB\", source = \"A\", status = \"official\", alternatives = [{ value = 120, unit = \"GB/s\", source = \"A\" }]",
            ),
            "chips[acme-x1].hbm_capacity.alternatives[0].unit",
        );
    }

    #[test]
    fn prices_are_checked() {
        let price = |kind: &str, value: &str, date: &str| {
            with_chip_extra(&format!(
                "[[chips.prices]]\nkind = \"{kind}\"\nvalue = {value}\nunit = \"USD/chip-hour\"\ndate = \"{date}\"\nsource = \"A\"\nstatus = \"official\"\n"
            ))
        };
        assert!(keys(user(&price("on-demand", "2.5", "2026-01-02"))).is_empty());
        has(
            &price("on-demand", "0", "2026-01-02"),
            "chips[acme-x1].prices[0].value",
        );
        has(
            &price("on-demand", "1e5", "2026-01-02"),
            "chips[acme-x1].prices[0].value",
        );
        has(
            &price("on-demand", "2", "yesterday"),
            "chips[acme-x1].prices[0].date",
        );
        let k = keys(user(&price("lease", "2", "2026-01-02")));
        assert!(
            k.iter().any(|k| k.contains("prices") && k.contains("kind")),
            "{k:?}"
        );
    }

    #[test]
    fn purchase_and_idle_power_are_checked_by_key() {
        let extra = |line: &str| {
            GOOD.replace(
                "tdp = { value = 700, unit = \"W\", source = \"A\", status = \"official\" }",
                &format!("tdp = {{ value = 700, unit = \"W\", source = \"A\", status = \"official\" }}\n{line}"),
            )
        };
        let ok = extra(
            "purchase = { value = 30, unit = \"kUSD\", source = \"A\", status = \"assumed\", range = [20, 40], note = \"n\" }\nidle_power = { value = 90, unit = \"W\", source = \"A\", status = \"press\" }",
        );
        let c = user(&ok).unwrap_or_else(|e| panic!("{e}"));
        let x1 = c.chip("acme-x1").unwrap_or_else(|e| panic!("{e}"));
        assert!(x1
            .purchase
            .as_ref()
            .is_some_and(|f| (f.value.usd() - 30_000.0).abs() < 1e-9));
        assert!(x1
            .idle_power
            .as_ref()
            .is_some_and(|f| (f.value.watts() - 90.0).abs() < 1e-9));
        for (line, key) in [
            ("purchase = { value = 30000, unit = \"USD/chip-hour\", source = \"A\", status = \"official\" }", "chips[acme-x1].purchase.unit"),
            ("purchase = { value = 30000, source = \"A\", status = \"official\" }", "chips[acme-x1].purchase.unit"),
            ("purchase = { value = 5, unit = \"USD\", source = \"A\", status = \"official\" }", "chips[acme-x1].purchase.value"),
            ("purchase = { value = 2e7, unit = \"USD\", source = \"A\", status = \"official\" }", "chips[acme-x1].purchase.value"),
            ("idle_power = { value = 90, unit = \"kUSD\", source = \"A\", status = \"official\" }", "chips[acme-x1].idle_power.unit"),
            ("idle_power = { value = 2, unit = \"MW\", source = \"A\", status = \"official\" }", "chips[acme-x1].idle_power.value"),
        ] {
            has(&extra(line), key);
        }
    }

    #[test]
    fn price_ranges_are_checked() {
        let price = |range: &str| {
            with_chip_extra(&format!(
                "[[chips.prices]]\nkind = \"reserved-1y\"\nvalue = 2.5\nunit = \"USD/chip-hour\"\ndate = \"2026-01\"\nsource = \"A\"\nstatus = \"assumed\"\nnote = \"n\"\nrange = {range}\n"
            ))
        };
        let c = user(&price("[2, 3]")).unwrap_or_else(|e| panic!("{e}"));
        let x1 = c.chip("acme-x1").unwrap_or_else(|e| panic!("{e}"));
        assert!(x1.prices[0]
            .range
            .is_some_and(|(lo, hi)| (lo.usd_per_chip_hour() - 2.0).abs() < 1e-9
                && (hi.usd_per_chip_hour() - 3.0).abs() < 1e-9));
        has(&price("[3, 4]"), "chips[acme-x1].prices[0].range");
    }

    #[test]
    fn aliases_and_groups_are_ids() {
        has(
            &GOOD.replace(
                "name = \"Acme X1\"",
                "name = \"Acme X1\"\naliases = [\"Acme X\"]",
            ),
            "chips[acme-x1].aliases[0]",
        );
        has(
            &GOOD.replace("calibration_group = \"acme\"", "calibration_group = \"\""),
            "chips[acme-x1].calibration_group",
        );
    }
}
