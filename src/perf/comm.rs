//! Exposed communication of each parallel dimension, placed on scale-up or scale-out links by
//! [`Fabric::time`] from each group's size and stride in rank order (tp innermost, then cp,
//! dp, pp).
//!
//! Volumes are BF16 tensors of one rank. Traffic that frameworks overlap with compute is priced
//! with `overlap_exposure`, the rest with `network`; every collective's latency with
//! `latency_scale`.

use super::step::BF16_BYTES;
use super::terms::Comm;
use super::theta::Param;
use super::{Machine, Shape};
use crate::network::{Collective, Fabric, Group};
use crate::parallelism::{Layout, Recompute};
use crate::units::Bytes;

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

/// The groups of layout `l`.
pub(super) fn groups(l: &Layout) -> Groups {
    let (tp, cp, dp, ep) = (l.tp as u64, l.cp as u64, l.dp as u64, l.ep as u64);
    // Experts are drawn from the data-parallel ranks when EP divides them (stride tp·cp);
    // else from the context × data-parallel ranks when EP divides those (stride tp); else from
    // consecutive ranks, tensor-parallel ones included (EP divides tp·cp·dp).
    let ep_stride = if dp.is_multiple_of(ep) {
        tp * cp
    } else if (dp * cp).is_multiple_of(ep) {
        tp
    } else {
        1
    };
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
    let sp_div = if l.sequence_parallel { tp } else { 1.0 };
    let full = l.recompute == Recompute::Full;

    let act = Bytes::new(BF16_BYTES * t * d);
    let g = groups(l);
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
        + if full { TP_RECOMPUTE_EXTRA } else { 0.0 };
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

    let ep_group = g.ep;
    // Each token goes to (and comes back from) its `moe_active` experts.
    let a2a = Bytes::new(BF16_BYTES * t * d * s.moe_active / sp_div);
    let ep_count = EP_ALL_TO_ALLS + if full { EP_RECOMPUTE_EXTRA } else { 0.0 };
    let ep_layer = Comm::new(
        fab.time(Collective::AllToAll, a2a, ep_group),
        Param::Network,
    )
    .scaled(ep_count * s.moe_fraction);
    LayerComm {
        tp: tp_layer,
        cp: cp_layer,
        ep: ep_layer,
    }
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
    } = groups(l);
    let grad = Bytes::new(params * BF16_BYTES);
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
                + net(Collective::AllGather, grad, shard_group)
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
            let unit = |b: Bytes| {
                net(Collective::AllGather, b, shard_group).scaled(gathers)
                    + net(Collective::ReduceScatter, b, shard_group)
            };
            let layer = Bytes::new(s.layer_params_per_chip() * BF16_BYTES);
            let emb = Bytes::new(s.embedding_params / l.tp as f64 * BF16_BYTES);
            let per = unit(layer).scaled(s.layers_per_stage) + unit(emb);
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
                let g = groups(&l);
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

    /// Experts come from the data-parallel ranks when EP divides them, else from context ×
    /// data-parallel ranks, else from consecutive ranks.
    #[test]
    fn expert_groups_follow_the_data_parallel_ranks() {
        assert_eq!(
            groups(&with(4, 2, 8, 4, 0)).ep,
            Group { size: 4, stride: 8 }
        );
        assert_eq!(
            groups(&with(4, 2, 3, 2, 0)).ep,
            Group { size: 2, stride: 4 }
        );
        assert_eq!(
            groups(&with(4, 1, 6, 8, 0)).ep,
            Group { size: 8, stride: 1 }
        );
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
