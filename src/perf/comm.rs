//! Exposed communication of each parallel dimension, placed on scale-up or scale-out links by
//! [`Fabric::time`] from each group's size and stride in rank order (tp innermost, then cp,
//! dp, pp).
//!
//! Expert groups are placed as Megatron-Core places them (`RankGenerator` for the expert
//! layers, MCore ≥ 0.10): inside each pipeline stage's block of `tp·cp·dp` ranks, expert tensor
//! parallelism innermost, then expert parallelism, then expert data parallelism. An EP group is
//! therefore `ep` ranks `etp` apart, wherever the block's data-parallel size leaves it: its
//! domains do not change when dp doubles.
//!
//! Volumes are BF16 tensors of one rank. Traffic that frameworks overlap with compute is priced
//! with `overlap_exposure`, the rest with `network`; every collective's latency with
//! `latency_scale`. The EP terms also carry the fixed cost of each MoE layer's dispatch
//! (`moe_fixed_us`), charged on the scale-up side: it is local to the chip.

use super::step::BF16_BYTES;
use super::terms::Comm;
use super::terms::Terms;
use super::theta::Param;
use super::{Machine, Shape};
use crate::network::{Collective, CommTime, Fabric, Group};
use crate::parallelism::{Layout, RecomputeModule};
use crate::units::Bytes;
use crate::workload::MoeDispatcher;

/// Tensor-parallel all-reduces per layer: the forward's two (after attention and after the
/// MLP) and their conjugates in backward (Shoeybi et al. 2019, the `f`/`g` operators).
const TP_ALL_REDUCES: f64 = 4.0;
/// With sequence parallelism the all-reduces become all-gather + reduce-scatter pairs of the
/// same volume, and backward redoes the all-gather of the layer input for the weight
/// gradients: one more all-reduce's worth (Korthikanti et al. 2022 §4.2.2).
const TP_SEQUENCE_PARALLEL_EXTRA: f64 = 1.0;
/// Full recompute repeats the forward's two tensor-parallel all-reduces.
const TP_RECOMPUTE_EXTRA: f64 = 2.0;
/// K and V: the two tensors context parallelism exchanges.
const KV_TENSORS: f64 = 2.0;
/// Context-parallel K/V exchanges per layer (ring attention; Liu et al. 2023, Megatron-Core CP):
/// K/V gathered in forward, again in backward, and their gradients reduce-scattered (the same
/// volume as a gather).
const CP_KV_GATHERS: f64 = 3.0;
/// Expert-parallel all-to-alls per MoE layer: dispatch and combine in forward, their transposes
/// in backward.
const EP_ALL_TO_ALLS: f64 = 4.0;
/// Full recompute repeats the forward's dispatch and combine.
const EP_RECOMPUTE_EXTRA: f64 = 2.0;
/// Of [`TP_ALL_REDUCES`], the MLP's: one in forward, its conjugate in backward. In an MoE layer
/// they act on the routed tokens (`top-k` copies) when experts are tensor-parallel, and vanish
/// when they are not.
const TP_MLP_ALL_REDUCES: f64 = 2.0;
/// Seconds per microsecond: counts × `moe_fixed_us`.
const SECONDS_PER_US: f64 = 1e-6;
/// Pipeline transfers per micro-batch per model chunk: activations forward, gradients back.
const PP_TRANSFERS_PER_CHUNK: f64 = 2.0;
/// ZeRO-3 (FULL_SHARD) all-gathers each layer's weights in forward and again in backward.
const ZERO3_GATHERS: f64 = 2.0;
/// ZeRO-2 (SHARD_GRAD_OP) keeps the gathered weights from forward to backward.
const ZERO2_GATHERS: f64 = 1.0;

/// The fabric with the setup's choice of hierarchical collectives.
fn fabric(s: &Shape, m: &Machine) -> Fabric {
    Fabric {
        hierarchical: s.hierarchical,
        logarithmic: s.logarithmic,
        ..m.fabric
    }
}

/// The communication groups of a layout, each as a size and a stride in rank order (tp
/// innermost, then cp, dp, pp). Collectives are placed on scale-up or scale-out links from these
/// by [`Fabric::placement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Groups {
    /// Tensor parallelism: consecutive ranks.
    pub(super) tp: Group,
    /// Context parallelism: stride tp.
    pub(super) cp: Group,
    /// Expert parallelism.
    pub(super) ep: Group,
    /// All data-parallel ranks (dp × cp; ZeRO-0's all-reduce).
    pub(super) dp: Group,
    /// ZeRO shard group: the innermost `zero_group_size` of the dp × cp ranks.
    pub(super) shard: Group,
    /// Replicas of one shard (HSDP, MiCS).
    pub(super) replica: Group,
}

/// Expert tensor parallelism as Megatron-Core resolves it: `--expert-tensor-parallel-size`
/// defaults to the tensor-parallel size (megatron/training/arguments.py, MCore ≥ 0.10), which
/// needs `ep` to divide `cp·dp`; where it does not, or the setup keeps experts whole
/// ([`crate::workload::TrainingSetup::expert_tensor_parallel`] false), it is 1 (the published
/// DeepSeek-V3 recipes: EP64 ETP1 at TP2).
pub(super) fn expert_tp(l: &Layout, split: bool) -> u64 {
    let (tp, cp, dp, ep) = (l.tp as u64, l.cp as u64, l.dp as u64, l.ep as u64);
    if split && (cp * dp).is_multiple_of(ep.max(1)) {
        tp
    } else {
        1
    }
}

/// The groups of layout `l`, experts split across the tensor-parallel ranks when `expert_split`
/// and the layout allow it ([`expert_tp`]).
pub(super) fn groups(l: &Layout, expert_split: bool) -> Groups {
    let (tp, cp, dp, ep) = (l.tp as u64, l.cp as u64, l.dp as u64, l.ep as u64);
    // Expert-tensor-parallel ranks innermost, then EP: EP members are `etp` ranks apart,
    // independent of cp and dp.
    let ep_stride = expert_tp(l, expert_split);
    let zg = l.zero_group_size() as u64;
    Groups {
        tp: Group {
            size: tp,
            stride: 1,
        },
        cp: Group {
            size: cp,
            stride: tp,
        },
        ep: Group {
            size: ep,
            stride: ep_stride,
        },
        dp: Group {
            size: dp * cp,
            stride: tp,
        },
        shard: Group {
            size: zg,
            stride: tp,
        },
        replica: Group {
            size: (dp * cp) / zg.max(1),
            stride: tp * zg,
        },
    }
}

/// Communication of one layer for one micro-batch.
pub(super) struct LayerComm {
    /// Tensor parallelism.
    pub(super) tp: Comm,
    /// Context parallelism.
    pub(super) cp: Comm,
    /// Expert parallelism (weighted by the share of MoE layers).
    pub(super) ep: Comm,
}

/// Per-layer, per-micro-batch TP, CP and EP communication.
pub(super) fn layer(s: &Shape, m: &Machine) -> LayerComm {
    let l = &s.layout;
    let fab = &fabric(s, m);
    let tp = l.tp as f64;
    let t = s.tokens_per_microbatch();
    let d = s.d_model;
    // Recompute repeats the forward's collectives: those of whole layers (the block's share),
    // and the MoE layer's dispatch and combine when its MLP block is recomputed (the `moe`
    // module, or the `mlp` policy, which is the `mlp` and `moe` modules).
    let full = s.full_recompute_fraction(s.layers_per_stage);
    let moe_module = l
        .recompute
        .modules()
        .union(l.recompute_modules)
        .contains(RecomputeModule::Moe);

    let act = Bytes::new(BF16_BYTES * t * d);
    let g = groups(l, s.expert_tensor_parallel);
    let tp_group = g.tp;
    let tp_param = if s.tp_overlap {
        Param::Overlap
    } else {
        Param::Network
    };
    let tp_count = TP_ALL_REDUCES
        + if l.sequence_parallel {
            TP_SEQUENCE_PARALLEL_EXTRA
        } else {
            0.0
        }
        + TP_RECOMPUTE_EXTRA * full
        - moe_mlp_tp_removed(s) * s.moe_fraction;
    let tp_layer =
        Comm::new(fab.time(Collective::AllReduce, act, tp_group), tp_param).scaled(tp_count);

    let cp_group = g.cp;
    // Each rank ends up with the K/V of all `cp` sequence shards.
    let kv_full = Bytes::new(BF16_BYTES * KV_TENSORS * t * l.cp as f64 * s.kv_width / tp);
    let cp_layer = Comm::new(
        fab.time(Collective::AllGather, kv_full, cp_group),
        Param::Overlap,
    )
    .scaled(CP_KV_GATHERS);

    let ep_layer = if s.moe_fraction > 0.0 {
        experts(s, fab, &g, if moe_module { 1.0 } else { full })
    } else {
        Comm::default()
    };
    LayerComm {
        tp: tp_layer,
        cp: cp_layer,
        ep: ep_layer,
    }
}

/// Of the MLP's tensor-parallel all-reduces, those an MoE layer does not run as dense layers
/// do: all of them when experts are not tensor-parallel (`etp` 1), or when the all-gather
/// dispatcher's TP × EP collective replaces them; none otherwise.
fn moe_mlp_tp_removed(s: &Shape) -> f64 {
    let l = &s.layout;
    if l.tp <= 1 || s.moe_fraction <= 0.0 {
        return 0.0;
    }
    if expert_tp(l, s.expert_tensor_parallel) == 1 || s.dispatcher == MoeDispatcher::AllGather {
        TP_MLP_ALL_REDUCES
    } else {
        0.0
    }
}

/// One layer's expert-parallel traffic and fixed cost for one micro-batch, weighted by the share
/// of MoE layers.
///
/// Each rank routes its `t / sp` tokens (the sequence-parallel shard) to `top-k` experts:
/// - all-to-all: `k` copies of each token, `4` all-to-alls per layer (dispatch and combine,
///   forward and backward), over the EP group;
/// - all-gather: every rank's tokens gathered over the `etp · ep` consecutive ranks of the
///   TP × EP group, outputs reduce-scattered back, in forward and backward;
/// - hierarchical: [`Fabric::dispatch_hierarchical`], four times.
///
/// With tensor-parallel experts (`etp > 1`) the all-to-all and hierarchical dispatchers then
/// all-gather the received tokens inside the expert-tensor group and reduce-scatter them after
/// the experts (Megatron-Core's all-to-all dispatcher): the MLP's two tensor-parallel
/// all-reduces act on `k` token copies, `k − 1` more than a dense MLP's (which
/// [`TP_ALL_REDUCES`] already counts). Full recompute repeats the forward's half.
fn experts(s: &Shape, fab: &Fabric, g: &Groups, recomputed: f64) -> Comm {
    let l = &s.layout;
    let tp = l.tp as f64;
    let sp_div = if l.sequence_parallel { tp } else { 1.0 };
    let tokens = s.tokens_per_microbatch() / sp_div;
    let token = BF16_BYTES * s.d_model;
    let k = s.moe_active;
    let etp = expert_tp(l, s.expert_tensor_parallel);
    let count = EP_ALL_TO_ALLS + EP_RECOMPUTE_EXTRA * recomputed;
    // Overlapped with another micro-batch's compute (Megatron-Core pairs one micro-batch's
    // forward with another's backward), the dispatch and combine are priced as overlappable
    // traffic (the fitted exposure), else as exposed traffic; with a single micro-batch per
    // step there is nothing to pair with.
    let param = if s.ep_overlap && s.microbatches >= 2.0 {
        Param::Overlap
    } else {
        Param::Network
    };
    let half = |a: CommTime, b: CommTime| {
        Comm::new(a, param).scaled(0.5) + Comm::new(b, param).scaled(0.5)
    };
    let route = match s.dispatcher {
        MoeDispatcher::AllToAll => Comm::new(
            fab.time(Collective::AllToAll, Bytes::new(token * tokens * k), g.ep),
            param,
        ),
        MoeDispatcher::AllGather => {
            let group = Group {
                size: etp * l.ep as u64,
                stride: 1,
            };
            // Each collective's buffer: the tokens of the whole TP × EP group (not copied per
            // expert: a token reaches a rank once, whichever of its experts that rank holds).
            let gathered = Bytes::new(token * tokens * group.size as f64);
            half(
                fab.time(Collective::AllGather, gathered, group),
                fab.time(Collective::ReduceScatter, gathered, group),
            )
        }
        MoeDispatcher::Hierarchical => Comm::new(
            fab.dispatch_hierarchical(Bytes::new(token * tokens), k, s.max_routed_domains, g.ep),
            param,
        ),
    };
    let expert_tp_extra = if etp > 1 && s.dispatcher != MoeDispatcher::AllGather {
        let act = Bytes::new(BF16_BYTES * s.tokens_per_microbatch() * s.d_model);
        Comm::new(fab.time(Collective::AllReduce, act, g.tp), param)
            .scaled(TP_MLP_ALL_REDUCES * (k - 1.0).max(0.0) * count / EP_ALL_TO_ALLS)
    } else {
        Comm::default()
    };
    let fixed = Comm {
        up: Terms::one(Param::MoeFixed, SECONDS_PER_US * count / EP_ALL_TO_ALLS),
        out: Terms::default(),
    };
    (route.scaled(count) + expert_tp_extra + fixed).scaled(s.moe_fraction)
}

/// Pipeline point-to-point of one micro-batch on one stage (all its chunks). The activation is
/// split across the tensor-parallel ranks (scatter/gather; Narayanan et al. 2021).
pub(super) fn pipeline(s: &Shape, m: &Machine) -> Comm {
    let l = &s.layout;
    if l.pp <= 1 {
        return Comm::default();
    }
    let t = s.tokens_per_microbatch();
    // Pipeline outermost: adjacent stages are tp·cp·dp ranks apart.
    let pp_stride = l.tp as u64 * l.cp as u64 * l.dp as u64;
    let pp_bytes = Bytes::new(BF16_BYTES * t * s.d_model / l.tp as f64);
    let fab = fabric(s, m);
    let crossing = fab.pipeline_crossing_fraction(pp_stride, l.pp as u64, l.virtual_stages as u64);
    let across = Comm::new(fab.point_to_point(pp_bytes, true), Param::Overlap);
    let inside = Comm::new(fab.point_to_point(pp_bytes, false), Param::Overlap);
    (across.scaled(crossing) + inside.scaled(1.0 - crossing))
        .scaled(PP_TRANSFERS_PER_CHUNK * l.virtual_stages as f64)
}

/// The compute that data-parallel traffic can hide behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DpWindow {
    /// ZeRO-0: the gradient all-reduce overlaps the last micro-batch's backward pass.
    LastBackward,
    /// ZeRO-1: reduce-scatter in backward, all-gather of updated weights in the next forward.
    LastMicrobatch,
    /// ZeRO-2/3: FSDP's per-layer collectives overlap every micro-batch's compute.
    EveryMicrobatch,
}

/// Data-parallel traffic of one step, and the window it can overlap.
///
/// ZeRO shards over `zero_group` ranks (the innermost of the dp × cp ranks); the other
/// data-parallel ranks hold replicas that all-reduce their shard once per step (HSDP, MiCS).
pub(super) fn data_parallel(s: &Shape, m: &Machine) -> (Comm, DpWindow) {
    let l = &s.layout;
    let fab = &fabric(s, m);
    let params = s.params_per_chip();
    let Groups {
        dp: dp_group,
        shard: shard_group,
        replica: replica_group,
        ..
    } = groups(l, s.expert_tensor_parallel);
    let grad = Bytes::new(params * BF16_BYTES);
    // Weights are gathered in their held format: FP8 with FP8 parameter gather, else BF16.
    let weights = Bytes::new(params * s.param_bytes);
    let zg = l.zero_group_size() as u64;
    let net = |op, b, g| Comm::new(fab.time(op, b, g), Param::Network);
    let replica_ar = || {
        net(
            Collective::AllReduce,
            Bytes::new(params * BF16_BYTES / zg as f64),
            replica_group,
        )
    };
    match l.zero {
        0 => (
            net(Collective::AllReduce, grad, dp_group),
            DpWindow::LastBackward,
        ),
        1 => (
            // Distributed optimizer: reduce-scatter gradients, all-gather updated weights.
            net(Collective::ReduceScatter, grad, shard_group)
                + net(Collective::AllGather, weights, shard_group)
                + replica_ar(),
            DpWindow::LastMicrobatch,
        ),
        zero => {
            // FSDP gathers and reduces one layer (and the embedding) at a time, per micro-batch.
            let gathers = if zero >= 3 {
                ZERO3_GATHERS
            } else {
                ZERO2_GATHERS
            };
            // Weights gathered in their held format, gradients reduced in BF16.
            let unit = |p: f64| {
                net(
                    Collective::AllGather,
                    Bytes::new(p * s.param_bytes),
                    shard_group,
                )
                .scaled(gathers)
                    + net(
                        Collective::ReduceScatter,
                        Bytes::new(p * BF16_BYTES),
                        shard_group,
                    )
            };
            let per = unit(s.layer_params_per_chip()).scaled(s.layers_per_stage)
                + unit(s.embedding_params / l.tp as f64);
            (
                per.scaled(s.microbatches) + replica_ar(),
                DpWindow::EveryMicrobatch,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{layout, setup_for};
    use super::*;
    use crate::parallelism::Recompute;
    use crate::perf::{step_terms, Efficiency};
    use crate::units::BytesPerSecond;
    use approx::assert_relative_eq;

    /// Without tensor parallelism there is no tensor-parallel traffic, and with it there is.
    #[test]
    fn tp_one_has_no_tp_communication() {
        let theta = Efficiency::PRIOR.to_theta();
        let mut l = layout(4, 1);
        l.tp = 1;
        l.sequence_parallel = false;
        let (s, m) = setup_for(l, 32);
        assert_eq!(layer(&s, &m).tp, Comm::default());
        assert_relative_eq!(step_terms(&s, &m).breakdown(&theta).tp_comm.seconds(), 0.0);
        let (s, m) = setup_for(layout(4, 1), 256);
        assert!(step_terms(&s, &m).breakdown(&theta).tp_comm.seconds() > 0.0);
    }

    /// The domains that the members of every group of one kind touch, by enumerating the ranks
    /// of a `chips`-rank cluster in domains of `domain` (the worst group's count).
    fn brute_domains(g: Group, chips: u64, domain: u64) -> u64 {
        let block = g.size * g.stride;
        let mut worst = 0;
        for q in 0..chips / block {
            for i in 0..g.stride {
                let mut d: Vec<u64> = (0..g.size)
                    .map(|j| (q * block + i + j * g.stride) / domain)
                    .collect();
                d.dedup();
                worst = worst.max(d.len() as u64);
            }
        }
        worst
    }

    fn with(tp: u32, cp: u32, dp: u32, ep: u32, zero_group: u32) -> Layout {
        Layout {
            tp,
            cp,
            dp,
            ep,
            zero_group,
            sequence_parallel: tp > 1,
            ..layout(1, 1)
        }
    }

    /// Every collective whose group fits one domain runs on scale-up links only; one whose
    /// group spans domains (by stride, size or a straddled boundary) uses scale-out.
    #[test]
    fn each_collective_is_placed_by_the_domains_its_group_touches() {
        let (_, m) = setup_for(layout(8, 1), 512);
        let b = Bytes::from_gb(1.0);
        let mut checked = [0u32; 2];
        for domain in [4, 8, 16, 72] {
            let fab = Fabric {
                domain_chips: domain,
                ..m.fabric
            };
            for (tp, cp, dp, ep, zg) in [
                (8, 1, 8, 1, 0),
                (2, 2, 2, 2, 0),
                (4, 2, 4, 4, 2),
                (8, 2, 4, 2, 4),
                (1, 1, 16, 8, 4),
                (2, 3, 4, 6, 3),
                (4, 1, 6, 4, 2),
                (8, 4, 3, 2, 6),
                (16, 1, 9, 1, 3),
                (1, 4, 3, 12, 12),
            ] {
                let l = with(tp, cp, dp, ep, zg);
                let chips = u64::from(tp * cp * dp) * 4;
                let fab = Fabric {
                    domain_chips: domain.min(chips),
                    ..fab
                };
                let g = groups(&l, true);
                for (name, group, op) in [
                    ("tp", g.tp, Collective::AllReduce),
                    ("cp", g.cp, Collective::AllGather),
                    ("ep", g.ep, Collective::AllToAll),
                    ("dp", g.dp, Collective::AllReduce),
                    ("shard", g.shard, Collective::ReduceScatter),
                    ("replica", g.replica, Collective::AllReduce),
                ] {
                    if group.size <= 1 {
                        continue;
                    }
                    let want = brute_domains(group, chips, fab.domain_chips);
                    assert_eq!(
                        fab.placement(group).domains,
                        want,
                        "{name} {group:?} in domains of {domain} ({l:?})"
                    );
                    let t = fab.time(op, b, group);
                    let why = format!("{name} {group:?} in domains of {domain}");
                    if want == 1 {
                        assert!(t.scale_up.seconds() > 0.0, "{why}");
                        assert_relative_eq!(t.scale_out.seconds(), 0.0);
                        assert_relative_eq!(t.scale_out_latency.seconds(), 0.0);
                        checked[0] += 1;
                    } else {
                        assert!(t.scale_out.seconds() > 0.0, "{why}");
                        checked[1] += 1;
                    }
                }
            }
        }
        assert!(checked.iter().all(|&c| c > 10), "{checked:?}");
    }

    fn groups_of(l: &Layout) -> Groups {
        groups(l, true)
    }

    /// Experts are placed as Megatron-Core places them: EP members `etp` ranks apart, with
    /// `etp` the tensor-parallel size when EP divides cp × dp, else 1.
    #[test]
    fn expert_groups_follow_megatron_core() {
        assert_eq!(
            groups_of(&with(4, 2, 8, 4, 0)).ep,
            Group { size: 4, stride: 4 }
        );
        assert_eq!(
            groups_of(&with(4, 2, 3, 2, 0)).ep,
            Group { size: 2, stride: 4 }
        );
        assert_eq!(
            groups_of(&with(4, 1, 6, 8, 0)).ep,
            Group { size: 8, stride: 1 }
        );
        // DeepSeek-V3's published recipe: TP2 DP32 EP64 runs with ETP1.
        assert_eq!(expert_tp(&with(2, 1, 32, 64, 0), true), 1);
        assert_eq!(
            groups_of(&with(2, 1, 32, 64, 0)).ep,
            Group {
                size: 64,
                stride: 1
            }
        );
    }

    /// An MoE model on H100s: `model` with `layout` on `chips`, batch 4,096 of 4,096 tokens,
    /// the setup adjusted by `adjust`.
    fn moe_setup(
        model: &str,
        layout: Layout,
        chips: u64,
        adjust: impl FnOnce(&mut crate::workload::TrainingSetup),
    ) -> (Shape, Machine) {
        super::super::tests::model_setup(model, (4096, 4096), layout, chips, adjust)
    }

    /// Issue 8: the same recipe at twice the data-parallel size prices the same expert-parallel
    /// traffic (a 256- and a 512-chip run used to differ 5x, the EP group jumping from scale-up
    /// to scale-out), for every dispatcher, whenever the recipe's expert tensor parallelism is
    /// the same at both sizes (with experts whole, always).
    #[test]
    fn expert_traffic_is_continuous_in_data_parallel_size() {
        let theta = Efficiency::PRIOR.to_theta();
        let mut checked = 0;
        for (tp, cp, ep, dp) in [
            (4, 2, 8, 4),
            (4, 1, 8, 2),
            (2, 1, 8, 4),
            (1, 1, 8, 8),
            (8, 1, 8, 1),
        ] {
            for split in [false, true] {
                let at = |dp: u32| {
                    let mut l = with(tp, cp, dp, ep, 0);
                    l.pp = 4;
                    l
                };
                if expert_tp(&at(dp), split) != expert_tp(&at(2 * dp), split) {
                    continue;
                }
                for dispatcher in [
                    MoeDispatcher::AllToAll,
                    MoeDispatcher::AllGather,
                    MoeDispatcher::Hierarchical,
                ] {
                    let ep_time = |dp: u32| {
                        let chips = u64::from(tp * cp * dp) * 4;
                        let (s, m) = moe_setup("grok-1", at(dp), chips, |s| {
                            s.moe_dispatcher = dispatcher;
                            s.expert_tensor_parallel = split;
                        });
                        layer(&s, &m).ep
                    };
                    let (a, b) = (ep_time(dp), ep_time(2 * dp));
                    assert!(a.total().at(&theta) > 0.0);
                    for (x, y) in [(a.up, b.up), (a.out, b.out)] {
                        assert_relative_eq!(x.at(&theta), y.at(&theta), max_relative = 1e-12);
                    }
                    checked += 1;
                }
            }
        }
        // Only tp 2, ep 8 at dp 4 → 8 switches its default (ETP 1 → 2).
        assert_eq!(checked, 27);
    }

    /// The dispatchers put their traffic on the levels they use: inside one domain all of it on
    /// scale-up; across domains the hierarchical dispatch sends fewer bytes over scale-out than
    /// the all-to-all (a token crosses once per domain, not once per expert), and the all-gather
    /// (every token to every domain) no fewer, for top-8 routing over 8 domains (equal here:
    /// 8 copies × 56/64 against 7 other domains).
    #[test]
    fn dispatchers_are_priced_on_their_levels() {
        let theta = Efficiency::PRIOR.to_theta();
        let ep_at = |l: Layout, chips, dispatcher| {
            let (s, m) = moe_setup("deepseek-v3", l, chips, |s| s.moe_dispatcher = dispatcher);
            layer(&s, &m).ep
        };
        let mut inside = with(1, 1, 8, 8, 0);
        inside.pp = 16;
        for d in [
            MoeDispatcher::AllToAll,
            MoeDispatcher::AllGather,
            MoeDispatcher::Hierarchical,
        ] {
            let c = ep_at(inside, 128, d);
            assert!(c.up.get(Param::Network) > 0.0, "{d:?}");
            assert_relative_eq!(c.out.at(&theta), 0.0);
        }
        let mut wide = with(1, 1, 64, 64, 0);
        wide.pp = 16;
        let out = |d| ep_at(wide, 1024, d).out.get(Param::Network);
        let (a2a, ag, h) = (
            out(MoeDispatcher::AllToAll),
            out(MoeDispatcher::AllGather),
            out(MoeDispatcher::Hierarchical),
        );
        assert!(
            h < a2a && a2a <= ag * (1.0 + 1e-12),
            "hierarchical {h}, all-to-all {a2a}, all-gather {ag}"
        );
    }

    /// Tensor-parallel traffic of the MoE MLP: with experts whole (ETP 1) the MoE layers drop
    /// the MLP's two all-reduces; with experts split over the TP ranks the all-to-all
    /// dispatcher adds `k − 1` times them (the routed copies), and the all-gather dispatcher
    /// moves them into its own TP × EP collective.
    #[test]
    fn expert_tensor_parallelism_moves_the_mlp_tensor_parallel_traffic() {
        let theta = Efficiency::PRIOR.to_theta();
        let mut l = with(4, 1, 8, 8, 0);
        l.pp = 4;
        let run = |split: bool, d: MoeDispatcher| {
            let (s, m) = moe_setup("grok-1", l, 128, |s| {
                s.moe_dispatcher = d;
                s.expert_tensor_parallel = split;
                s.tp_comm_overlap = false;
            });
            let c = layer(&s, &m);
            (c.tp.total().at(&theta), c.ep, s, m)
        };
        let (tp_split, ep_split, s, m) = run(true, MoeDispatcher::AllToAll);
        let (tp_whole, ep_whole, ..) = run(false, MoeDispatcher::AllToAll);
        let (tp_gather, ..) = run(true, MoeDispatcher::AllGather);
        let one_all_reduce = Comm::new(
            fabric(&s, &m).time(
                Collective::AllReduce,
                Bytes::new(BF16_BYTES * s.tokens_per_microbatch() * s.d_model),
                Group { size: 4, stride: 1 },
            ),
            Param::Network,
        )
        .total()
        .at(&theta);
        // Grok-1: every layer MoE, top-2.
        assert_relative_eq!(
            tp_split - tp_whole,
            2.0 * one_all_reduce,
            max_relative = 1e-9
        );
        assert_relative_eq!(tp_gather, tp_whole, max_relative = 1e-12);
        // The split experts' routed copies: (2 − 1) × 2 all-reduces in the EP terms beside the
        // four all-to-alls and the fixed cost.
        let routed = Bytes::new(BF16_BYTES * s.tokens_per_microbatch() / 4.0 * s.d_model * 2.0);
        let a2a = Comm::new(
            fabric(&s, &m).time(Collective::AllToAll, routed, groups(&l, true).ep),
            Param::Network,
        )
        .scaled(EP_ALL_TO_ALLS)
        .total()
        .at(&theta);
        let fixed = 1e-6 * theta[Param::MoeFixed.index()];
        assert_relative_eq!(
            ep_split.total().at(&theta),
            a2a + 2.0 * one_all_reduce + fixed,
            max_relative = 1e-9
        );
        assert!(ep_whole.total().at(&theta) > 0.0);
    }

    /// The fixed cost is one `moe_fixed_us` per MoE layer and micro-batch (scaled by the share
    /// of MoE layers, and by 3/2 with full recompute), and absent from dense models.
    #[test]
    fn the_moe_fixed_cost_counts_moe_layers() {
        let mut l = with(1, 1, 8, 8, 0);
        l.pp = 16;
        let (s, m) = moe_setup("deepseek-v3", l, 128, |_| {});
        let fixed = layer(&s, &m).ep.up.get(Param::MoeFixed);
        assert_relative_eq!(fixed, 1e-6 * 58.0 / 61.0, max_relative = 1e-12);
        l.recompute = Recompute::Full;
        let (s, m) = moe_setup("deepseek-v3", l, 128, |_| {});
        let full = layer(&s, &m).ep.up.get(Param::MoeFixed);
        assert_relative_eq!(full, 1.5 * fixed, max_relative = 1e-12);
        let (s, m) = setup_for(layout(8, 1), 512);
        assert_eq!(layer(&s, &m).ep, Comm::default());
    }

    /// Overlapped expert-parallel dispatch and combine (`ep_comm_overlap`) move the same
    /// traffic from the exposed-network parameter to the overlappable one, every dispatcher;
    /// the fixed cost stays; with a single micro-batch there is nothing to overlap with.
    #[test]
    fn overlapped_expert_traffic_is_priced_as_overlappable() {
        let mut l = with(1, 1, 64, 64, 0);
        l.pp = 16;
        for d in [
            MoeDispatcher::AllToAll,
            MoeDispatcher::AllGather,
            MoeDispatcher::Hierarchical,
        ] {
            let ep = |overlap: bool| {
                let (s, m) = moe_setup("deepseek-v3", l, 1024, |s| {
                    s.moe_dispatcher = d;
                    s.ep_comm_overlap = overlap;
                });
                layer(&s, &m).ep.total()
            };
            let (exposed, hidden) = (ep(false), ep(true));
            assert!(exposed.get(Param::Network) > 0.0, "{d:?}");
            assert_relative_eq!(hidden.get(Param::Network), 0.0);
            assert_relative_eq!(
                hidden.get(Param::Overlap),
                exposed.get(Param::Network),
                max_relative = 1e-12
            );
            assert_relative_eq!(hidden.get(Param::MoeFixed), exposed.get(Param::MoeFixed));
        }
        // One micro-batch per step leaves nothing to overlap with.
        let (s, m) = moe_setup("deepseek-v3", l, 1024, |s| {
            s.ep_comm_overlap = true;
            s.global_batch = 64;
        });
        assert_relative_eq!(s.microbatches, 1.0);
        let single = layer(&s, &m).ep.total();
        assert!(single.get(Param::Network) > 0.0);
        assert_relative_eq!(single.get(Param::Overlap), 0.0);
    }

    /// Pipeline transfers between stages in different domains are priced on the scale-out
    /// network; with every stage in one domain the scale-out bandwidth does not matter.
    #[test]
    fn pipeline_traffic_follows_the_stage_placement() {
        let theta = Efficiency::PRIOR.to_theta();
        let slow = |m: Machine| Machine {
            fabric: Fabric {
                scale_out: BytesPerSecond::from_gb_per_s(0.001),
                ..m.fabric
            },
            ..m
        };
        // 16 stages of 4 ranks in domains of 8: every other boundary crosses.
        let mut l = with(1, 1, 4, 1, 0);
        l.pp = 16;
        l.virtual_stages = 2;
        let (s, m) = setup_for(l, 64);
        let fast = pipeline(&s, &m).total().at(&theta);
        let slowed = pipeline(&s, &slow(m)).total().at(&theta);
        assert!(fast > 0.0);
        assert!(slowed > 100.0 * fast, "{slowed} vs {fast}");
        assert!(pipeline(&s, &m).up.at(&theta) > 0.0);
        // 8 stages of one rank in one 8-chip domain.
        let mut l = with(1, 1, 1, 1, 0);
        l.pp = 8;
        let (s, m) = setup_for(l, 8);
        let p = pipeline(&s, &m);
        assert!(p.total().at(&theta) > 0.0);
        assert_eq!(p, pipeline(&s, &slow(m)));
        assert_relative_eq!(p.out.at(&theta), 0.0);
    }
}
