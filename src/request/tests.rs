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

/// The MoE dispatcher and expert tensor parallelism are read as kebab-case setup keys, default
/// to Megatron-Core's (all-to-all, experts split over TP), and a misspelt dispatcher is refused.
#[test]
fn moe_setup_keys_resolve_with_defaults() {
    let read = |extra: &str| -> Result<SetupRequest, toml::de::Error> {
        toml::from_str(&format!("global_batch = 64\ntokens = 1e9\n{extra}"))
    };
    let plain = read("")
        .unwrap_or_else(|e| panic!("{e}"))
        .resolve("training", &gpt3())
        .unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(plain.moe_dispatcher(), MoeDispatcher::AllToAll);
    assert!(plain.expert_tensor_parallel());
    let set = read("moe_dispatcher = \"hierarchical\"\nexpert_tensor_parallel = false")
        .unwrap_or_else(|e| panic!("{e}"))
        .resolve("training", &gpt3())
        .unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(set.moe_dispatcher(), MoeDispatcher::Hierarchical);
    assert!(!set.expert_tensor_parallel());
    assert!(read("moe_dispatcher = \"all-gather\"").is_ok());
    assert!(read("moe_dispatcher = \"alltoall\"").is_err());
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
    // EP overlap is a recipe switch of no era: off unless asked.
    assert!(!none.ep_comm_overlap());
    assert!(resolve(SetupRequest {
        ep_comm_overlap: Some(true),
        ..base.clone()
    })
    .ep_comm_overlap());
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

/// The MoE load-imbalance factor defaults to balanced and is refused below 1, above the limit,
/// or not finite, under its key.
#[test]
fn moe_load_imbalance_is_checked() {
    let r = |f: Option<f64>| SetupRequest {
        global_batch: Some(8),
        tokens: Some(1e9),
        moe_load_imbalance: f,
        ..Default::default()
    };
    let ok = r(None).resolve("training", &gpt3());
    assert!(ok.is_ok_and(|s| (s.moe_load_imbalance() - DEFAULT_MOE_LOAD_IMBALANCE).abs() < 1e-12));
    let set = r(Some(1.25)).resolve("training", &gpt3());
    assert!(set.is_ok_and(|s| (s.moe_load_imbalance() - 1.25).abs() < 1e-12));
    for bad in [0.5, MAX_MOE_LOAD_IMBALANCE * 2.0, f64::NAN] {
        let keys: Vec<String> = r(Some(bad))
            .resolve("training", &gpt3())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(keys, ["training.moe_load_imbalance"], "{bad}");
    }
}

/// `recompute_layers` pins full recompute of a block (alone, or beside `full`), refuses any
/// other policy and negative counts; `recompute_modules` drops the modules the policy already
/// names and refuses `full`. Problems name their keys.
#[test]
fn recompute_layers_and_modules_resolve_to_one_spelling() {
    use crate::parallelism::{RecomputeModule as M, RecomputeModules};
    let fixed = |r: LayoutRequest| match r.resolve("layout") {
        Ok(LayoutChoice::Fixed(c)) => Ok(c),
        Ok(LayoutChoice::Search(_)) => panic!("expected a fixed layout"),
        Err(p) => Err(p.into_iter().map(|p| p.key).collect::<Vec<_>>()),
    };
    let c = fixed(LayoutRequest {
        recompute_layers: Some(3),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.recompute, Some(Recompute::Full));
    assert_eq!(c.recompute_layers, Some(Some(3)));
    let c = fixed(LayoutRequest {
        recompute: Some(Recompute::Full),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(c.recompute_layers, Some(None));
    for (recompute, layers) in [(Some(Recompute::Mlp), Some(2)), (None, Some(-1))] {
        let keys = fixed(LayoutRequest {
            recompute,
            recompute_layers: layers,
            ..Default::default()
        })
        .err();
        assert_eq!(keys, Some(vec!["layout.recompute_layers".to_string()]));
    }
    let keys = fixed(LayoutRequest {
        recompute: Some(Recompute::Full),
        recompute_modules: Some(vec![M::Layernorm]),
        ..Default::default()
    })
    .err();
    assert_eq!(keys, Some(vec!["layout.recompute_modules".to_string()]));
    // Selective (the default) already names the attention core.
    let c = fixed(LayoutRequest {
        recompute_modules: Some(vec![M::CoreAttn, M::MoeAct, M::Layernorm]),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let want: RecomputeModules = [M::MoeAct, M::Layernorm].into_iter().collect();
    assert_eq!(c.recompute_modules, Some(want));
}

/// A layout with a block or extra modules round-trips through its serialized form; one
/// without them serializes as before (no new keys).
#[test]
fn layouts_with_recompute_options_round_trip() {
    use crate::parallelism::{RecomputeModule as M, RecomputeModules};
    let mut l = Layout::data_parallel(8);
    let plain = serde_json::to_string(&l).unwrap_or_else(|e| panic!("{e}"));
    assert!(!plain.contains("recompute_layers") && !plain.contains("recompute_modules"));
    l.recompute_modules = RecomputeModules::EMPTY.with(M::MoeAct);
    let json = serde_json::to_string(&l).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        json.contains("\"recompute_modules\":[\"moe-act\"]"),
        "{json}"
    );
    let back: Layout = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, l);
    l.recompute_modules = RecomputeModules::EMPTY;
    l.recompute = Recompute::Full;
    l.recompute_layers = Some(4);
    let json = serde_json::to_string(&l).unwrap_or_else(|e| panic!("{e}"));
    let back: Layout = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, l);
    // A block without full recompute is refused on the way in.
    let bad = json.replace("\"full\"", "\"none\"");
    assert!(serde_json::from_str::<Layout>(&bad).is_err());
}
