//! Unit tests of the resolvers.

use super::*;

fn gpt3() -> Model {
    crate::workload::preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let r = SetupRequest {
        global_batch: Some(-1),
        seq_len: Some(0),
        tokens: Some(f64::INFINITY),
        precision: Some(Precision::Fp32),
        ..Default::default()
    };
    let keys: Vec<String> = r
        .resolve("training", &gpt3())
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "training.seq_len",
            "training.global_batch",
            "training.tokens",
            "training.precision"
        ]
    );
}

#[test]
fn sizes_that_would_wrap_are_refused() {
    let r = LayoutRequest {
        virtual_stages: Some(2_147_483_648),
        tp: Some(i64::MAX),
        ..Default::default()
    };
    assert_eq!(r.resolve("").err().map(|e| e.len()), Some(2));
    let s = SetupRequest {
        global_batch: Some(1 << 31),
        seq_len: Some(1 << 20),
        tokens: Some(1e12),
        ..Default::default()
    };
    assert!(s.resolve("", &gpt3()).is_err());
}

#[test]
fn no_knob_means_search_and_search_rest_pins() {
    let empty = LayoutRequest::default().resolve("");
    assert!(matches!(empty, Ok(LayoutChoice::Search(_))));
    let pinned = LayoutRequest {
        tp: Some(8),
        search_rest: Some(true),
        ..Default::default()
    }
    .resolve("");
    assert!(matches!(pinned, Ok(LayoutChoice::Search(c)) if c.tp == Some(8)));
    let fixed = LayoutRequest {
        tp: Some(8),
        ..Default::default()
    }
    .resolve("");
    assert!(matches!(fixed, Ok(LayoutChoice::Fixed(_))));
}

#[test]
fn economics_are_checked_after_defaults() {
    let e = EconomicsRequest {
        pue: Some(1e308),
        price_usd_per_chip_hour: Some(1e308),
        ..Default::default()
    }
    .resolve("");
    assert_eq!(e.err().map(|e| e.len()), Some(2));
    let cli = EconomicsRequest {
        pue: Some(1.3),
        ..Default::default()
    };
    let file = EconomicsRequest {
        pue: Some(1.1),
        grid_kg_co2_per_kwh: Some(0.2),
        ..Default::default()
    };
    let both = file.overridden_by(&cli);
    assert_eq!(both.pue, Some(1.3));
    assert_eq!(both.grid_kg_co2_per_kwh, Some(0.2));
}

/// A software era presets the switches; a switch given on its own overrides the preset; no era
/// is the 2024 stack.
#[test]
fn a_software_era_presets_the_switches_and_each_switch_overrides_it() {
    use crate::workload::SoftwareEra;
    let base = SetupRequest {
        global_batch: Some(1536),
        tokens: Some(1e12),
        ..Default::default()
    };
    let resolve = |r: SetupRequest| r.resolve("", &gpt3()).unwrap_or_else(|e| panic!("{e:?}"));
    let old = resolve(SetupRequest {
        software: Some(SoftwareEra::Megatron2021),
        ..base.clone()
    });
    assert_eq!(old.attention(), AttentionKernel::Unfused);
    assert!(!old.tp_comm_overlap() && !old.dp_comm_overlap());
    assert_eq!(old.main_grads(), MainGrads::Fp32);
    let mixed = resolve(SetupRequest {
        software: Some(SoftwareEra::Megatron2021),
        attention: Some(AttentionKernel::Flash),
        ..base.clone()
    });
    assert_eq!(mixed.attention(), AttentionKernel::Flash);
    assert!(!mixed.tp_comm_overlap());
    let zero3 = resolve(SetupRequest {
        software: Some(SoftwareEra::DeepspeedZero3_2021),
        ..base.clone()
    });
    assert!(!zero3.hierarchical_collectives() && zero3.dp_comm_overlap());
    let none = resolve(base.clone());
    let modern = resolve(SetupRequest {
        software: Some(SoftwareEra::Mcore2024),
        ..base.clone()
    });
    assert_eq!(none, modern);
    let next = resolve(SetupRequest {
        software: Some(SoftwareEra::Mcore2025),
        ..base
    });
    assert!(next.logarithmic_collectives() && !modern.logarithmic_collectives());
}
