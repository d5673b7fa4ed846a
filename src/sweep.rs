//! The layout search's candidates (evaluated in parallel by [`crate::plan::search`]).
//!
//! Candidates are generated in a fixed order, evaluated with `par_iter` and collected in input
//! order, then reduced sequentially, so results are bitwise identical at any thread count.

use crate::hardware::Cluster;
use crate::parallelism::{Layout, LayoutConstraints, Recompute, ZeroStage};
use crate::workload::{AttentionKernel, Model, TrainingSetup};

/// Limits of the layout search.
///
/// The default covers what established planners search (Calculon's space): ZeRO 0 to 3,
/// every power-of-two micro-batch up to the per-replica batch (and the per-replica batch
/// itself), interleaving up to 16 chunks, sequence parallelism on and off, and every
/// recompute policy. Blocks of fully recomputed layers per chunk are not enumerated here: the
/// search adds, for each full-recompute layout that fits where keeping every activation does
/// not, the smallest block that fits as well ([`crate::plan::search_in`]). Module recompute
/// beyond the policy is searched only when pinned. Overlap of communication is a property of the software stack and is set
/// on the training setup, not searched: the step model gives overlap no memory cost, so a
/// search would always turn it on.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSpace {
    /// Largest micro-batch tried.
    pub max_microbatch: u32,
    /// Recompute policies tried.
    pub recompute: Vec<Recompute>,
    /// ZeRO stages tried.
    pub zero: Vec<ZeroStage>,
    /// Sequence-parallel settings tried for tensor-parallel layouts (without tensor
    /// parallelism there is nothing to split).
    pub sequence_parallel: Vec<bool>,
    /// Largest context-parallel size tried.
    pub max_cp: u32,
    /// Largest number of interleaved stages tried.
    pub max_virtual: u32,
    /// Runner-ups kept beside the best layout.
    pub runner_ups: usize,
}

impl Default for SearchSpace {
    fn default() -> Self {
        Self {
            max_microbatch: u32::MAX,
            recompute: vec![
                Recompute::None,
                Recompute::Selective,
                Recompute::Mlp,
                Recompute::Full,
            ],
            zero: ZeroStage::ALL.to_vec(),
            sequence_parallel: vec![true, false],
            max_cp: 8,
            max_virtual: 16,
            runner_ups: crate::plan::RUNNER_UPS,
        }
    }
}

/// The layouts the search considers for this cluster, model and setup that agree with the
/// pinned knobs (all valid), in a fixed order. Candidates are built so that they divide the
/// cluster, batch and sequence; [`Layout::is_valid`] (the same rules as a user's layout, without
/// building messages) keeps only the valid ones. One policy goes beyond validity: the search
/// interleaves pipeline stages only into equal chunks (`layers % (pp x v) == 0`, Megatron-LM's
/// rule); a given layout may use uneven stages (Llama 3's 126 layers on PP16 x v4).
#[must_use]
pub fn candidates(
    model: &Model,
    cluster: &Cluster,
    setup: &TrainingSetup,
    pinned: &LayoutConstraints,
    space: &SearchSpace,
) -> Vec<Layout> {
    let chips = cluster.chips;
    let divides = |a: u64, b: u64| a != 0 && b.is_multiple_of(a);
    let pow2 = |max: u64| (0..63).map(|i| 1u64 << i).take_while(move |x| *x <= max);
    let pick = |pin: Option<u32>, free: Vec<u64>| match pin {
        Some(x) => vec![u64::from(x)],
        None => free,
    };
    let allow = pinned.allow_tp_scale_out;
    let tp_max = if allow {
        chips
    } else {
        cluster.domain_chips.min(64)
    };
    let experts = model.moe.as_ref().map_or(1, |m| u64::from(m.experts));
    let recompute: Vec<Recompute> = match pinned.recompute {
        Some(r) => vec![r],
        // With fused attention, selective recompute recomputes nothing.
        None => space
            .recompute
            .iter()
            .copied()
            .filter(|r| !(*r == Recompute::Selective && setup.attention == AttentionKernel::Flash))
            .collect(),
    };
    let zeros: Vec<u8> = match pinned.zero {
        Some(z) => vec![z.as_u8()],
        None => space.zero.iter().map(|z| z.as_u8()).collect(),
    };
    let mut out = Vec::new();
    for tp in pick(pinned.tp, pow2(tp_max).collect()) {
        if !divides(tp, chips) || (!allow && !divides(tp, cluster.domain_chips)) {
            continue;
        }
        let pps = (1..=u64::from(model.layers).min(chips / tp)).collect();
        for pp in pick(pinned.pp, pps) {
            if !divides(tp * pp, chips) {
                continue;
            }
            for cp in pick(pinned.cp, pow2(u64::from(space.max_cp)).collect()) {
                if !divides(tp * pp * cp, chips) || !divides(cp, setup.seq_len) {
                    continue;
                }
                let dp = chips / (tp * pp * cp);
                if dp > setup.global_batch || pinned.dp.is_some_and(|d| u64::from(d) != dp) {
                    continue;
                }
                for v in pick(
                    pinned.virtual_stages,
                    pow2(u64::from(space.max_virtual)).collect(),
                ) {
                    if v > 1 && (pp == 1 || !divides(pp * v, u64::from(model.layers))) {
                        continue;
                    }
                    for mb in pick(
                        pinned.microbatch,
                        microbatches(setup.global_batch / dp, space),
                    ) {
                        if !divides(dp * mb, setup.global_batch) {
                            continue;
                        }
                        for ep in pick(pinned.ep, pow2(experts).collect()) {
                            if !divides(ep, experts) || !divides(ep, dp * cp * tp) {
                                continue;
                            }
                            let sps: &[bool] = match pinned.sequence_parallel {
                                Some(true) => &[true],
                                Some(false) => &[false],
                                None if tp == 1 => &[false],
                                None => &space.sequence_parallel,
                            };
                            // Sizes beyond u32 cannot form a layout (checked without
                            // allocating: this runs once per candidate).
                            let wide = [tp, pp, dp, cp, ep, mb, v];
                            if wide.iter().any(|&x| u32::try_from(x).is_err()) {
                                continue;
                            }
                            let sizes = wide.map(|x| u32::try_from(x).unwrap_or(u32::MAX));
                            for &recompute in &recompute {
                                // Pinned modules, less those the policy names; full recompute
                                // takes none.
                                let modules = pinned
                                    .recompute_modules
                                    .unwrap_or_default()
                                    .without(recompute.modules());
                                if recompute == Recompute::Full && !modules.is_empty() {
                                    continue;
                                }
                                let recompute_layers = match recompute {
                                    Recompute::Full => pinned.recompute_layers.flatten(),
                                    _ => None,
                                };
                                for &zero in &zeros {
                                    for &sequence_parallel in sps {
                                        let l = Layout {
                                            tp: sizes[0],
                                            pp: sizes[1],
                                            dp: sizes[2],
                                            cp: sizes[3],
                                            ep: sizes[4],
                                            microbatch: sizes[5],
                                            virtual_stages: sizes[6],
                                            recompute,
                                            recompute_modules: modules,
                                            recompute_layers,
                                            sequence_parallel,
                                            zero,
                                            zero_group: pinned.zero_group.unwrap_or(0),
                                        };
                                        if l.is_valid(model, cluster, setup, allow) {
                                            out.push(l);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Micro-batch sizes tried for a per-replica batch of `per_replica` sequences: every power of
/// two that divides it and the per-replica batch itself, up to the space's limit.
fn microbatches(per_replica: u64, space: &SearchSpace) -> Vec<u64> {
    let max = per_replica.min(u64::from(space.max_microbatch));
    let mut v: Vec<u64> = (0..63)
        .map(|i| 1u64 << i)
        .take_while(|m| *m <= max)
        .filter(|m| per_replica.is_multiple_of(*m))
        .collect();
    if per_replica <= max && !per_replica.is_power_of_two() {
        v.push(per_replica);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;
    use crate::request::{LayoutRequest, SetupRequest};

    /// Every layout of a small cluster, enumerated by brute force over all sizes, ranks the
    /// same as the search's candidates: the generator's shortcuts lose no valid layout.
    #[test]
    fn candidates_equal_brute_force_on_small_cases() {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = crate::workload::preset("llama2-7b").unwrap_or_else(|e| panic!("{e}"));
        let setup = SetupRequest {
            global_batch: Some(32),
            tokens: Some(1e9),
            ..Default::default()
        }
        .resolve("", &model)
        .unwrap_or_else(|e| panic!("{e:?}"));
        for chips in [1u64, 8, 16, 24] {
            let cluster = catalog
                .cluster("h100", chips)
                .unwrap_or_else(|e| panic!("{e}"));
            let space = SearchSpace::default();
            let got = candidates(
                &model,
                &cluster,
                &setup,
                &LayoutConstraints::default(),
                &space,
            );
            let mut want = Vec::new();
            let n = chips as u32;
            for tp in (1..=n).filter(|x| x.is_power_of_two() && *x <= 64) {
                for pp in 1..=n {
                    for cp in (1..=space.max_cp).filter(|x| x.is_power_of_two()) {
                        for dp in 1..=n {
                            for v in (1..=space.max_virtual).filter(|x| x.is_power_of_two()) {
                                for mb in 1..=32u32 {
                                    // The space's micro-batches: powers of two and the
                                    // per-replica batch itself.
                                    if !(mb.is_power_of_two() || dp * mb == 32) {
                                        continue;
                                    }
                                    for rc in [Recompute::None, Recompute::Mlp, Recompute::Full] {
                                        for &zero in &space.zero {
                                            for sp in [false, true] {
                                                let l = Layout {
                                                    tp,
                                                    pp,
                                                    dp,
                                                    cp,
                                                    ep: 1,
                                                    microbatch: mb,
                                                    virtual_stages: v,
                                                    recompute: rc,
                                                    recompute_modules:
                                                        crate::parallelism::RecomputeModules::EMPTY,
                                                    recompute_layers: None,
                                                    sequence_parallel: sp,
                                                    zero: zero.as_u8(),
                                                    zero_group: 0,
                                                };
                                                // The search's policies beyond validity:
                                                // interleave only into equal chunks
                                                // (Megatron-LM's rule; uneven stages are for
                                                // given layouts), and no sequence
                                                // parallelism without tensor parallelism.
                                                let even =
                                                    v == 1 || model.layers.is_multiple_of(pp * v);
                                                if even
                                                    && (tp > 1 || !sp)
                                                    && l.is_valid(&model, &cluster, &setup, false)
                                                {
                                                    want.push(l);
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let key = |l: &Layout| format!("{l}");
            let mut a: Vec<String> = got.iter().map(key).collect();
            let mut b: Vec<String> = want.iter().map(key).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{chips} chips");
            assert!(!a.is_empty());
        }
    }

    #[test]
    fn pinned_knobs_are_kept() {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = crate::workload::preset("llama2-7b").unwrap_or_else(|e| panic!("{e}"));
        let setup = SetupRequest {
            global_batch: Some(64),
            tokens: Some(1e9),
            ..Default::default()
        }
        .resolve("", &model)
        .unwrap_or_else(|e| panic!("{e:?}"));
        let cluster = catalog
            .cluster("h100", 64)
            .unwrap_or_else(|e| panic!("{e}"));
        let crate::request::LayoutChoice::Search(pinned) = LayoutRequest {
            tp: Some(2),
            search_rest: Some(true),
            ..Default::default()
        }
        .resolve("")
        .unwrap_or_else(|e| panic!("{e:?}")) else {
            panic!("expected a search")
        };
        let c = candidates(&model, &cluster, &setup, &pinned, &SearchSpace::default());
        assert!(!c.is_empty());
        assert!(c.iter().all(|l| l.tp == 2 && pinned.admits(l)));
    }
}
