//! Test fixtures: a good user file and helpers that load it beside the built-ins.

use super::Catalog;
use crate::error::{Error, Result};

/// A complete, valid user file: one chip, one system.
pub(super) const GOOD: &str = r#"
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
default_system = "acme-rack"
peak_bf16 = { value = 1000, unit = "TFLOP/s", source = "A", status = "official" }
hbm_capacity = { value = 128, unit = "GB", source = "A", status = "official" }
hbm_bandwidth = { value = 6, unit = "TB/s", source = "A", status = "official" }
scale_up_bandwidth = { value = 1000, unit = "GB/s", direction = "bidirectional", source = "A", status = "official" }
scale_out_bandwidth = { value = 400, unit = "Gbit/s", direction = "per-direction", source = "A", status = "official" }
tdp = { value = 700, unit = "W", source = "A", status = "official" }
[[systems]]
id = "acme-rack"
name = "Acme rack"
chip = "acme-x1"
domain_chips = { value = 32, source = "A", status = "official" }
scale_up_latency = { value = 2, unit = "us", source = "A", status = "assumed", note = "guess" }
scale_out_latency = { value = 10, unit = "us", source = "A", status = "assumed", note = "guess" }
"#;

/// The built-in catalog extended by `text` as `my-chips.toml`.
pub(super) fn user(text: &str) -> Result<Catalog> {
    Catalog::builtin()?.with_toml_str("my-chips.toml", text)
}

/// `GOOD` with `extra` TOML appended after the chip (before the systems).
pub(super) fn with_chip_extra(extra: &str) -> String {
    let at = GOOD.find("[[systems]]").unwrap_or(GOOD.len());
    format!("{}{extra}\n{}", &GOOD[..at], &GOOD[at..])
}

/// The keys of the problems of a failed load (empty when it loaded), after checking that the
/// error names the user file.
pub(super) fn keys(r: Result<Catalog>) -> Vec<String> {
    match r {
        Ok(_) => Vec::new(),
        Err(e) => {
            if let Error::Invalid { file, .. } | Error::Parse { file, .. } = &e {
                assert!(file.ends_with(".toml"), "{e}");
            }
            e.problems().into_iter().map(|p| p.key).collect()
        }
    }
}
