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
use crate::parallelism::Recompute;
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
        ..m.fabric
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
    let tp_group = Group {
        size: l.tp as u64,
        stride: 1,
    };
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

    let cp_group = Group {
        size: l.cp as u64,
        stride: l.tp as u64,
    };
    // Each rank ends up with the K/V of all `cp` sequence shards.
    let kv_full = Bytes::new(BF16_BYTES * KV_TENSORS * t * l.cp as f64 * s.kv_width / tp);
    let cp_layer = Comm::new(
        fab.time(Collective::AllGather, kv_full, cp_group),
        Param::Overlap,
    )
    .scaled(CP_KV_GATHERS);

    // Experts are drawn from the data-parallel ranks when EP divides them, else from the
    // innermost ranks.
    let ep_stride = if l.dp.is_multiple_of(l.ep) {
        l.tp as u64 * l.cp as u64
    } else {
        1
    };
    let ep_group = Group {
        size: l.ep as u64,
        stride: ep_stride,
    };
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
    let pp_stride = l.tp as u64 * l.cp as u64 * l.dp as u64;
    let pp_bytes = Bytes::new(BF16_BYTES * t * s.d_model / l.tp as f64);
    let pair = Group {
        size: 2,
        stride: pp_stride,
    };
    Comm::new(
        fabric(s, m).time(Collective::PointToPoint, pp_bytes, pair),
        Param::Overlap,
    )
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
    let dp_group = Group {
        size: l.dp as u64 * l.cp as u64,
        stride: l.tp as u64,
    };
    let grad = Bytes::new(params * BF16_BYTES);
    let zg = l.zero_group_size() as u64;
    let shard_group = Group {
        size: zg,
        stride: l.tp as u64,
    };
    let replica_group = Group {
        size: (l.dp as u64 * l.cp as u64) / zg,
        stride: l.tp as u64 * zg,
    };
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
}
