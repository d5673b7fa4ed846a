//! The seed facts (../shared/facts/seed-facts.md) reproduced from catalog data alone, and the
//! catalog's answers to bad input.

use approx::assert_relative_eq;
use xpusim::hardware::{totals, Catalog, Precision, Status};
use xpusim::Error;

/// Closed-form arithmetic on catalog figures: only float rounding separates them.
const EXACT: f64 = 1e-9;
/// Vendor ratios are quoted to two significant figures ("4.4x", "1.9x").
const QUOTED_RATIO: f64 = 0.02;

fn catalog() -> Catalog {
    Catalog::builtin().unwrap_or_else(|e| panic!("built-in catalog must load: {e}"))
}

#[test]
fn every_issue_chip_is_listed() {
    let c = catalog();
    for id in crate::SEED_CHIPS {
        assert!(c.chip(id).is_ok(), "{id} missing");
    }
    for alias in ["ironwood", "trillium", "trainium3"] {
        assert!(c.chip(alias).is_ok(), "alias {alias} missing");
    }
}

#[test]
fn every_figure_has_a_source_and_status() {
    let c = catalog();
    for chip in c.chips() {
        for p in Precision::ALL {
            if let Some(f) = chip.peak(p) {
                assert!(!f.provenance.source.title.is_empty(), "{} {p}", chip.id);
            }
        }
        for f in [&chip.hbm_capacity].into_iter().flatten() {
            assert!(!f.provenance.source.title.is_empty(), "{}", chip.id);
        }
        for price in &chip.prices {
            assert!(!price.date.is_empty(), "{} price without date", chip.id);
        }
    }
}

#[test]
fn trn3_ultraserver_is_4_4x_trn2_ultraserver_in_fp8() {
    let c = catalog();
    let trn3 = c
        .system("trn3-ultraserver-gen2")
        .unwrap_or_else(|e| panic!("{e}"));
    let trn2 = c
        .system("trn2-ultraserver")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(trn3.domain_chips.value, 144);
    assert_eq!(trn2.domain_chips.value, 64);
    let t3 = totals(
        c.chip("trn3").unwrap_or_else(|e| panic!("{e}")),
        144,
        Precision::Fp8,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let t2 = totals(
        c.chip("trn2").unwrap_or_else(|e| panic!("{e}")),
        64,
        Precision::Fp8,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The official system tables: 362,448 TF and 83,136 TF (hardware.md §3.1).
    assert_relative_eq!(t3.peak.tera(), 362_448.0, max_relative = EXACT);
    assert_relative_eq!(t2.peak.tera(), 83_136.0, max_relative = EXACT);
    assert_relative_eq!(t3.peak / t2.peak, 4.4, max_relative = QUOTED_RATIO);
}

#[test]
fn per_chip_trn3_is_1_9x_fp8_and_1_0x_bf16() {
    let c = catalog();
    let (t3, t2) = (
        c.chip("trn3").unwrap_or_else(|e| panic!("{e}")),
        c.chip("trn2").unwrap_or_else(|e| panic!("{e}")),
    );
    let r = |p| {
        t3.peak_flops(p).unwrap_or_else(|e| panic!("{e}"))
            / t2.peak_flops(p).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_relative_eq!(r(Precision::Fp8), 1.94, max_relative = QUOTED_RATIO);
    assert_relative_eq!(r(Precision::Bf16), 1.0, max_relative = QUOTED_RATIO);
}

#[test]
fn hbm_144_192_288_for_trn3_ironwood_gb300() {
    let c = catalog();
    let cap = |id: &str| {
        c.chip(id)
            .unwrap_or_else(|e| panic!("{e}"))
            .hbm_capacity
            .clone()
            .unwrap_or_else(|| panic!("{id} has no HBM"))
    };
    // AWS and Google publish GiB; NVIDIA publishes GB. The press wrote "GB" for all three.
    assert_relative_eq!(cap("trn3").value.gib(), 144.0, max_relative = EXACT);
    assert_relative_eq!(cap("ironwood").value.gib(), 192.0, max_relative = EXACT);
    assert_relative_eq!(cap("gb300").value.gb(), 288.0, max_relative = EXACT);
}

#[test]
fn trn4_is_derived_from_trn3_multipliers_and_marked_projection() {
    let c = catalog();
    let (t4, t3) = (
        c.chip("trn4").unwrap_or_else(|e| panic!("{e}")),
        c.chip("trn3").unwrap_or_else(|e| panic!("{e}")),
    );
    let ratio = |p| {
        t4.peak_flops(p).unwrap_or_else(|e| panic!("{e}"))
            / t3.peak_flops(p).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_relative_eq!(ratio(Precision::Fp4), 6.0, max_relative = EXACT);
    assert_relative_eq!(ratio(Precision::Fp8), 3.0, max_relative = EXACT);
    let bw = |c: &xpusim::hardware::Chip| {
        c.hbm_bandwidth
            .as_ref()
            .map(|f| f.value)
            .unwrap_or_else(|| panic!("no bw"))
    };
    let cap = |c: &xpusim::hardware::Chip| {
        c.hbm_capacity
            .as_ref()
            .map(|f| f.value)
            .unwrap_or_else(|| panic!("no cap"))
    };
    assert_relative_eq!(bw(t4) / bw(t3), 4.0, max_relative = EXACT);
    assert_relative_eq!(cap(t4) / cap(t3), 2.0, max_relative = EXACT);
    let fp4 = t4.peak(Precision::Fp4).unwrap_or_else(|| panic!("no fp4"));
    assert_eq!(fp4.provenance.status, Status::Projection);
    assert!(fp4
        .provenance
        .derivation
        .as_deref()
        .is_some_and(|d| d.contains("trn3")));
    assert!(
        t4.peak(Precision::Bf16).is_none(),
        "no BF16 multiple was announced"
    );
}

#[test]
fn a_million_trn3_chips_have_derived_totals() {
    let c = catalog();
    let cluster = c
        .cluster("trn3", 1_000_000)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = cluster
        .totals(Precision::Fp8)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_relative_eq!(
        t.peak.flops_per_second(),
        1e6 * 2517e12,
        max_relative = EXACT
    );
    assert_relative_eq!(t.hbm_capacity.gib(), 144e6, max_relative = EXACT);
    assert_eq!(cluster.domains(), 1_000_000_u64.div_ceil(144));
    // A billion chips do not overflow.
    let huge = c
        .cluster("trn3", 1_000_000_000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(huge
        .totals(Precision::Fp8)
        .unwrap_or_else(|e| panic!("{e}"))
        .peak
        .is_finite());
}

#[test]
fn both_readings_of_the_40_percent_claim_are_recorded() {
    let c = catalog();
    let trn3 = c.chip("trn3").unwrap_or_else(|e| panic!("{e}"));
    assert!(trn3.claims.iter().any(|c| c
        .text
        .contains("40 percent improvement in energy efficiency")));
    assert!(trn3
        .claims
        .iter()
        .any(|c| c.text.contains("power consumption lowered by about 40%")));
    // The model uses the efficiency reading: tdp = trn2 tdp x FP8 ratio / 1.4.
    let tdp = trn3.tdp.as_ref().unwrap_or_else(|| panic!("trn3 tdp"));
    assert_eq!(tdp.provenance.status, Status::Derived);
    assert_relative_eq!(
        tdp.value.watts(),
        500.0 * (2517.0 / 1299.0) / 1.4,
        max_relative = EXACT
    );
}

fn user(text: &str) -> Result<Catalog, Error> {
    let mut files: Vec<(String, String, bool)> = Vec::new();
    for (name, t) in [
        (
            "trainium.toml",
            include_str!("../../src/hardware/catalog/trainium.toml"),
        ),
        (
            "tpu.toml",
            include_str!("../../src/hardware/catalog/tpu.toml"),
        ),
        (
            "nvidia.toml",
            include_str!("../../src/hardware/catalog/nvidia.toml"),
        ),
    ] {
        files.push((format!("<built-in>/{name}"), t.to_string(), false));
    }
    files.push(("my-chips.toml".into(), text.to_string(), true));
    Catalog::from_sources(&files)
}

const GOOD: &str = r#"
schema_version = 1
family = "acme"
vendor = "Acme"
[sources.A]
title = "Acme datasheet"
locator = "acme.example/x1"
kind = "official"
[[chips]]
id = "acme-x1"
name = "Acme X1"
calibration_group = "acme"
peak_bf16 = { value = 1000, unit = "TFLOP/s", source = "A", status = "official" }
hbm_capacity = { value = 128, unit = "GB", source = "A", status = "official" }
hbm_bandwidth = { value = 6, unit = "TB/s", source = "A", status = "official" }
scale_up_bandwidth = { value = 1000, unit = "GB/s", direction = "bidirectional", source = "A", status = "official" }
scale_out_bandwidth = { value = 400, unit = "Gbit/s", direction = "per-direction", source = "A", status = "official" }
[[systems]]
id = "acme-rack"
name = "Acme rack"
chip = "acme-x1"
domain_chips = { value = 32, source = "A", status = "official" }
scale_up_latency = { value = 2, unit = "us", source = "A", status = "assumed", note = "guess" }
scale_out_latency = { value = 10, unit = "us", source = "A", status = "assumed", note = "guess" }
"#;

fn problem(text: &str) -> String {
    match user(text) {
        Ok(_) => panic!("bad input accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_custom_chip_is_a_first_class_entry() {
    let c = user(GOOD).unwrap_or_else(|e| panic!("{e}"));
    let (chip, system) = c.resolve("acme-x1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(system.id, "acme-rack");
    assert_relative_eq!(
        chip.peak_flops(Precision::Bf16)
            .unwrap_or_else(|e| panic!("{e}"))
            .tera(),
        1000.0
    );
}

#[test]
fn unknown_key_names_file_key_and_reason() {
    let msg = problem(&GOOD.replace("name = \"Acme X1\"", "name = \"Acme X1\"\nfrequency = 2"));
    assert!(
        msg.contains("my-chips.toml")
            && msg.contains("chips[0]")
            && msg.contains("unknown field `frequency`"),
        "{msg}"
    );
}

#[test]
fn missing_field_names_file_key_and_reason() {
    let msg = problem(&GOOD.replace("calibration_group = \"acme\"\n", ""));
    assert!(
        msg.contains("my-chips.toml") && msg.contains("missing field `calibration_group`"),
        "{msg}"
    );
}

#[test]
fn negative_and_zero_bandwidth_are_rejected() {
    for bad in ["-6", "0"] {
        let msg = problem(&GOOD.replace(
            "value = 6, unit = \"TB/s\"",
            &format!("value = {bad}, unit = \"TB/s\""),
        ));
        assert!(
            msg.contains("my-chips.toml")
                && msg.contains("chips[acme-x1].hbm_bandwidth.value")
                && msg.contains("positive"),
            "{msg}"
        );
    }
}

#[test]
fn duplicate_id_is_rejected_unless_override() {
    let msg = problem(&GOOD.replace("id = \"acme-x1\"", "id = \"trn2\""));
    assert!(
        msg.contains("my-chips.toml") && msg.contains("duplicate id") && msg.contains("trn2"),
        "{msg}"
    );
    let twice = format!(
        "{GOOD}\n{}",
        &GOOD[GOOD.find("[[chips]]").unwrap_or(0)..GOOD.find("[[systems]]").unwrap_or(0)]
    );
    let msg = problem(&twice);
    assert!(msg.contains("duplicate id"), "{msg}");
}

#[test]
fn unparseable_unit_is_rejected() {
    let msg = problem(&GOOD.replace("unit = \"TB/s\"", "unit = \"TB/fortnight\""));
    assert!(
        msg.contains("hbm_bandwidth.unit") && msg.contains("cannot parse unit `TB/fortnight`"),
        "{msg}"
    );
}

#[test]
fn undefined_source_and_missing_direction_are_rejected_together() {
    let text = GOOD
        .replace(
            "source = \"A\", status = \"official\" }\nhbm_capacity",
            "source = \"B\", status = \"official\" }\nhbm_capacity",
        )
        .replace("direction = \"bidirectional\", ", "");
    let msg = problem(&text);
    assert!(
        msg.contains("source key `B`") && msg.contains("direction"),
        "{msg}"
    );
}

#[test]
fn a_user_chip_can_be_derived_from_a_builtin() {
    let text = format!(
        "{}\n[[chips.derive]]\nfield = \"peak_fp8\"\nfrom = \"trn3\"\nrule = \"scale\"\nfactor = 2.0\nsource = \"A\"\nstatus = \"projection\"\n",
        &GOOD[..GOOD.find("[[systems]]").unwrap_or(GOOD.len())]
    );
    let c = user(&text).unwrap_or_else(|e| panic!("{e}"));
    let x = c.chip("acme-x1").unwrap_or_else(|e| panic!("{e}"));
    assert_relative_eq!(
        x.peak_flops(Precision::Fp8)
            .unwrap_or_else(|e| panic!("{e}"))
            .tera(),
        2.0 * 2517.0,
        max_relative = EXACT
    );
}

#[test]
fn shares_of_instance_figures_are_computed_and_marked_derived() {
    let c = catalog();
    let trn3 = c.chip("trn3").unwrap_or_else(|e| panic!("{e}"));
    let out = trn3
        .scale_out
        .as_ref()
        .unwrap_or_else(|| panic!("scale-out"));
    assert_relative_eq!(
        out.per_direction().gbit_per_s(),
        28_800.0 / 144.0,
        max_relative = EXACT
    );
    assert_eq!(out.bandwidth.provenance.status, Status::Derived);
    assert!(out
        .bandwidth
        .provenance
        .derivation
        .as_deref()
        .is_some_and(|d| d.contains("/ 144")));
    let msg = problem(&GOOD.replace(
        "value = 6, unit = \"TB/s\", source = \"A\", status = \"official\"",
        "value = 48, unit = \"TB/s\", divided_by = 8, source = \"A\", status = \"official\"",
    ));
    assert!(
        msg.contains("hbm_bandwidth.status") && msg.contains("derived"),
        "{msg}"
    );
}

/// The deployment facts of the seed list, as derived quantities (example 04 prints them).
#[test]
fn seed_deployments_are_derived_quantities() {
    use xpusim::units::{Usd, Watts};
    use xpusim::Facility;
    use xpusim::{catalog_price, chip_hours_for_budget};
    let c = catalog();
    let trn2 = c.chip("trn2").unwrap_or_else(|e| panic!("{e}"));
    let rainier = totals(trn2, 500_000, Precision::Fp8).unwrap_or_else(|e| panic!("{e}"));
    assert_relative_eq!(
        rainier.peak.flops_per_second(),
        500_000.0 * 1299e12,
        max_relative = EXACT
    );
    let tdp = trn2.tdp.as_ref().map_or(Watts::ZERO, |f| f.value);
    let f = Facility::default();
    let n = f.chips_for_power(Watts::new(2.2e9), tdp);
    assert_eq!(n, (2.2e9 / (500.0 * 1.15)) as u64);
    let price = catalog_price(
        c.chip("h100-sxm").unwrap_or_else(|e| panic!("{e}")),
        "on-demand",
    )
    .unwrap_or_else(|| panic!("price"));
    let (hours, gpus) = chip_hours_for_budget(Usd::new(38e9), price.per_chip_hour, 7.0);
    assert_relative_eq!(hours, 38e9 / 6.88, max_relative = EXACT);
    assert!(gpus > 80_000.0 && gpus < 100_000.0);
}
