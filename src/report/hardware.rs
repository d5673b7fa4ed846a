//! Human and JSON rendering of the catalog and the model presets.

use super::{table, TextFormat};
use crate::error::{Error, Result};
use crate::hardware::{Catalog, Chip, Figure, Precision};
use crate::workload::presets;
use std::fmt::Write;

macro_rules! w {
    ($s:expr, $($arg:tt)*) => {
        { let _ = write!($s, $($arg)*); }
    };
}
macro_rules! wln {
    ($s:expr) => {
        { let _ = writeln!($s); }
    };
    ($s:expr, $($arg:tt)*) => {
        { let _ = writeln!($s, $($arg)*); }
    };
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::input("output", e.to_string()))
}

fn fig<T>(f: &Option<Figure<T>>) -> String {
    f.as_ref()
        .map_or_else(|| "n/p".to_string(), |f| f.as_written.clone())
}

/// The catalog as a table of chips and a table of systems, or as JSON.
///
/// # Errors
/// A problem in the catalog files (see [`Catalog::check`]); serialisation errors (not expected).
pub fn hardware_list(catalog: &Catalog, format: TextFormat) -> Result<String> {
    catalog.check()?;
    let mut s = String::new();
    match format {
        TextFormat::Json => {
            #[derive(serde::Serialize)]
            struct Listing<'a> {
                chips: &'a [Chip],
                systems: &'a [crate::hardware::System],
            }
            wln!(
                s,
                "{}",
                json(&&Listing {
                    chips: catalog.chips(),
                    systems: catalog.systems()
                })?
            );
        }
        TextFormat::Table | TextFormat::Markdown => {
            let body: Vec<[String; 9]> = catalog
                .chips()
                .iter()
                .map(|c| {
                    let tf = |p| {
                        c.peak(p)
                            .map_or_else(|| "n/a".into(), |f| format!("{:.0}", f.value.tera()))
                    };
                    [
                        c.id.clone(),
                        c.name.clone(),
                        tf(Precision::Bf16),
                        tf(Precision::Fp8),
                        tf(Precision::Fp4),
                        c.hbm_capacity
                            .as_ref()
                            .map_or_else(|| "n/p".into(), |f| f.as_written.clone()),
                        fig(&c.hbm_bandwidth),
                        fig(&c.tdp),
                        c.default_system.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let head = [
                "id",
                "name",
                "BF16 TF",
                "FP8 TF",
                "FP4 TF",
                "HBM",
                "HBM BW",
                "power",
                "default system",
            ]
            .map(String::from);
            w!(s, "{}", table(&head, &body, false));
            wln!(s);
            let body: Vec<[String; 5]> = catalog
                .systems()
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.chip.clone(),
                        s.domain_chips.value.to_string(),
                        format!("{:.0} GB/s", s.scale_up.per_direction().gb_per_s()),
                        format!("{:.0} Gbit/s", s.scale_out.per_direction().gbit_per_s()),
                    ]
                })
                .collect();
            let head = [
                "system",
                "chip",
                "chips/domain",
                "scale-up/chip/dir",
                "scale-out/chip/dir",
            ]
            .map(String::from);
            w!(s, "{}", table(&head, &body, false));
        }
    }
    Ok(s)
}

/// Every figure of a chip or system with its status and source.
///
/// # Errors
/// An unknown id (with the nearest known one suggested).
pub fn hardware_show(catalog: &Catalog, id: &str, format: TextFormat) -> Result<String> {
    let mut s = String::new();
    let (chip, system) = catalog.resolve(id)?;
    let is_system = catalog.system(id).is_ok();
    let domain = system.domain_chips.value;
    let totals: Vec<(Precision, crate::hardware::Totals)> = Precision::ALL
        .iter()
        .filter_map(|p| {
            crate::hardware::totals(&chip, domain, *p)
                .ok()
                .map(|t| (*p, t))
        })
        .collect();
    match format {
        TextFormat::Json => {
            let v = serde_json::json!({
                "chip": chip,
                "system": if is_system { serde_json::to_value(&system).map_err(|e| Error::input("output", e.to_string()))? } else { serde_json::Value::Null },
                "default_system": system.id,
                "domain_totals": totals.iter().map(|(p, t)| serde_json::json!({
                    "precision": p.as_str(),
                    "chips": t.chips,
                    "peak_flop_per_s": t.peak.flops_per_second(),
                    "hbm_capacity_bytes": t.hbm_capacity.bytes(),
                    "hbm_bandwidth_bytes_per_s": t.hbm_bandwidth.bytes_per_second(),
                    "power_w": t.power.map(|w| w.watts()),
                    "status": "derived",
                })).collect::<Vec<_>>(),
            });
            wln!(s, "{}", json(&&v)?);
        }
        TextFormat::Table | TextFormat::Markdown => {
            wln!(
                s,
                "{} — {} (family {}, vendor {})",
                chip.id,
                chip.name,
                chip.family,
                chip.vendor
            );
            if !chip.aliases.is_empty() {
                wln!(s, "aliases: {}", chip.aliases.join(", "));
            }
            let mut body: Vec<[String; 4]> = Vec::new();
            let mut add = |name: String, f: Option<(&str, &crate::hardware::Provenance)>| {
                if let Some((v, p)) = f {
                    let mut src = format!("[{}] {}", p.source.key, p.source.title);
                    if let Some(d) = &p.derivation {
                        src = format!("{d}; {src}");
                    }
                    if let Some(n) = &p.note {
                        src = format!("{src} — {n}");
                    }
                    for a in &p.alternatives {
                        src = format!("{src}; alt {} [{}]", a.value, a.source);
                    }
                    body.push([name, v.to_string(), p.status.as_str().to_string(), src]);
                }
            };
            for p in Precision::ALL {
                if let Some(f) = chip.peak(p) {
                    add(
                        format!("peak {p} (dense)"),
                        Some((&format!("{:.1} TFLOP/s", f.value.tera()), &f.provenance)),
                    );
                }
            }
            let pairs: [(&str, Option<(String, &crate::hardware::Provenance)>); 12] = [
                (
                    "HBM capacity",
                    chip.hbm_capacity.as_ref().map(|f| {
                        (
                            format!("{:.1} GB ({:.1} GiB)", f.value.gb(), f.value.gib()),
                            &f.provenance,
                        )
                    }),
                ),
                (
                    "HBM bandwidth",
                    chip.hbm_bandwidth
                        .as_ref()
                        .map(|f| (format!("{:.0} GB/s", f.value.gb_per_s()), &f.provenance)),
                ),
                (
                    "on-chip SRAM",
                    chip.sram
                        .as_ref()
                        .map(|f| (format!("{:.0} MB", f.value.bytes() / 1e6), &f.provenance)),
                ),
                (
                    "matrix units",
                    chip.matrix_units
                        .as_ref()
                        .map(|f| (format!("{}", f.value), &f.provenance)),
                ),
                (
                    "systolic array side",
                    chip.systolic_array
                        .as_ref()
                        .map(|f| (format!("{}", f.value), &f.provenance)),
                ),
                (
                    "softmax exponentials",
                    chip.softmax_exp_rate.as_ref().map(|f| {
                        (
                            format!("{:.1} Texp/s", f.value.exp_per_second() / 1e12),
                            &f.provenance,
                        )
                    }),
                ),
                (
                    "scale-up link",
                    chip.scale_up.as_ref().map(|l| {
                        (
                            format!("{} ({})", l.bandwidth.as_written, l.direction.as_str()),
                            &l.bandwidth.provenance,
                        )
                    }),
                ),
                (
                    "scale-out link",
                    chip.scale_out.as_ref().map(|l| {
                        (
                            format!("{} ({})", l.bandwidth.as_written, l.direction.as_str()),
                            &l.bandwidth.provenance,
                        )
                    }),
                ),
                (
                    "TDP",
                    chip.tdp
                        .as_ref()
                        .map(|f| (format!("{:.0} W", f.value.watts()), &f.provenance)),
                ),
                (
                    "typical power",
                    chip.typical_power
                        .as_ref()
                        .map(|f| (format!("{:.0} W", f.value.watts()), &f.provenance)),
                ),
                (
                    "process",
                    chip.process_node
                        .as_ref()
                        .map(|f| (f.value.clone(), &f.provenance)),
                ),
                (
                    "release",
                    chip.release
                        .as_ref()
                        .map(|f| (f.value.clone(), &f.provenance)),
                ),
            ];
            for (name, v) in &pairs {
                add(name.to_string(), v.as_ref().map(|(s, p)| (s.as_str(), *p)));
            }
            for pr in &chip.prices {
                add(
                    format!("price {} ({})", pr.kind, pr.date),
                    Some((
                        &format!(
                            "${:.3}/chip-hour {}",
                            pr.per_chip_hour.usd_per_chip_hour(),
                            pr.instance.clone().unwrap_or_default()
                        ),
                        &pr.provenance,
                    )),
                );
            }
            w!(
                s,
                "{}",
                table(
                    &["figure", "value", "status", "source"].map(String::from),
                    &body,
                    false
                )
            );
            if !chip.claims.is_empty() {
                wln!(s, "\nclaims:");
                for c in &chip.claims {
                    wln!(
                        s,
                        "  \"{}\" [{} {}] -> {}",
                        c.text,
                        c.source.key,
                        c.status.as_str(),
                        c.reading
                    );
                }
            }
            wln!(
                s,
                "\nsystem {} ({}): {} chips per scale-up domain [{} {}]",
                system.id,
                system.name,
                domain,
                system.domain_chips.provenance.source.key,
                system.domain_chips.provenance.status.as_str()
            );
            for (name, link) in [
                ("scale-up", &system.scale_up),
                ("scale-out", &system.scale_out),
            ] {
                wln!(
                    s,
                    "  {name}: {} ({}) = {:.1} GB/s per chip per direction [{} {}]",
                    link.bandwidth.as_written,
                    link.direction.as_str(),
                    link.per_direction().gb_per_s(),
                    link.bandwidth.provenance.source.key,
                    link.bandwidth.provenance.status.as_str()
                );
            }
            for (name, lat) in [
                ("scale-up", &system.scale_up_latency),
                ("scale-out", &system.scale_out_latency),
            ] {
                wln!(
                    s,
                    "  {name} step latency: {:.1} us [{} {}]{}",
                    lat.value.seconds() * 1e6,
                    lat.provenance.source.key,
                    lat.provenance.status.as_str(),
                    lat.provenance
                        .note
                        .as_ref()
                        .map_or_else(String::new, |n| format!(" — {n}"))
                );
            }
            match &system.scale_up_torus_dims {
                Some(d) => wln!(
                    s,
                    "  scale-up topology: {}-D torus (collectives run axis by axis) [{} {}]",
                    d.value,
                    d.provenance.source.key,
                    d.provenance.status.as_str()
                ),
                None => wln!(
                    s,
                    "  scale-up topology: switched (one hop between any two chips)"
                ),
            }
            if let (Some(mem), Some(link)) = (&system.host_memory_per_chip, &system.host_link) {
                wln!(
                    s,
                    "  host (activation offload): {:.0} GB per chip [{} {}], link {} ({}) = {:.1} GB/s per chip per direction [{} {}]",
                    mem.value.gb(),
                    mem.provenance.source.key,
                    mem.provenance.status.as_str(),
                    link.bandwidth.as_written,
                    link.direction.as_str(),
                    link.per_direction().gb_per_s(),
                    link.bandwidth.provenance.source.key,
                    link.bandwidth.provenance.status.as_str()
                );
            }
            for (p, t) in &totals {
                wln!(s, "  domain total {p}: {:.1} PFLOP/s, HBM {:.1} TB, {:.1} TB/s{} (derived: {} x per-chip)",
                    t.peak.flops_per_second() / 1e15,
                    t.hbm_capacity.bytes() / 1e12,
                    t.hbm_bandwidth.bytes_per_second() / 1e12,
                    t.power.map_or_else(String::new, |w| format!(", {:.1} kW", w.kilowatts())),
                    t.chips
                );
            }
        }
    }
    Ok(s)
}

/// The built-in model presets.
///
/// # Errors
/// Only if an embedded preset is broken.
pub fn models(format: TextFormat) -> Result<String> {
    let mut s = String::new();
    let all = presets()?;
    match format {
        TextFormat::Json => wln!(s, "{}", json(&&all)?),
        TextFormat::Table | TextFormat::Markdown => {
            let body: Vec<[String; 8]> = all
                .iter()
                .map(|m| {
                    [
                        m.id.clone(),
                        format!("{:.1}B", m.params() / 1e9),
                        format!("{:.1}B", m.active_params() / 1e9),
                        m.layers.to_string(),
                        m.d_model.to_string(),
                        format!("{}/{}", m.heads, m.kv_heads),
                        m.seq_len.to_string(),
                        m.moe.as_ref().map_or_else(
                            || "dense".into(),
                            |x| format!("MoE {}x top-{}", x.experts, x.active),
                        ),
                    ]
                })
                .collect();
            let head = [
                "id",
                "params",
                "active",
                "layers",
                "d_model",
                "heads q/kv",
                "seq",
                "kind",
            ]
            .map(String::from);
            w!(s, "{}", table(&head, &body, false));
        }
    }
    Ok(s)
}
