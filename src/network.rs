//! Collectives over the two-level network: scale-up domains joined by a scale-out fabric.
//!
//! Cost model: alpha–beta (Hockney). A ring step moves `S/n` bytes at the per-direction link
//! bandwidth and pays one latency `α`. For a group of `n` ranks:
//!
//! | collective | bandwidth term | latency term |
//! |---|---|---|
//! | all-reduce | `2 (n-1)/n · S / B` | `α · min(2(n-1), 2⌈log2 n⌉)` (ring or tree, whichever is cheaper) |
//! | reduce-scatter, all-gather | `(n-1)/n · S / B` | `α · (n-1)` (ring; NCCL before 2.23 has no logarithmic algorithm) |
//! | all-to-all | `(n-1)/n · S / B` | `α · (n-1)` |
//! | point-to-point | `S / B` | `α` |
//!
//! `S` is the full buffer per rank (the all-reduce input, the all-gather output). A group whose
//! members span several domains runs hierarchically (Thakur et al. 2005; NCCL's tree/ring
//! hybrids): a reduce-scatter among the `k` members inside a domain over scale-up links, the
//! collective across the `n/k` domains over scale-out with `S/k` bytes per chip (each chip uses
//! its own share of the scale-out bandwidth), then an all-gather inside the domain.

use crate::units::{Bytes, BytesPerSecond, Seconds};

/// The collective operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collective {
    /// Sum across the group, result everywhere.
    AllReduce,
    /// Sum across the group, each rank keeps a shard.
    ReduceScatter,
    /// Each rank's shard gathered everywhere.
    AllGather,
    /// Each rank sends a distinct shard to every other rank.
    AllToAll,
    /// One rank sends to one other.
    PointToPoint,
}

/// The two network levels as seen by one chip: per-direction bandwidth and step latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fabric {
    /// Chips per scale-up domain.
    pub domain_chips: u64,
    /// Scale-up bandwidth per chip, one direction.
    pub scale_up: BytesPerSecond,
    /// Scale-up step latency.
    pub scale_up_latency: Seconds,
    /// Scale-out bandwidth per chip, one direction.
    pub scale_out: BytesPerSecond,
    /// Scale-out step latency.
    pub scale_out_latency: Seconds,
    /// Whether collectives that span domains aggregate inside the domain first (NCCL multi-rail
    /// rings and trees, XLA, MiCS). When false, each chip's full share crosses the scale-out
    /// network at its own bandwidth, as in DeepSpeed ZeRO-3 before MiCS (Zhang et al., VLDB 2022).
    pub hierarchical: bool,
}

/// Where a communication group sits in the rank order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// Ranks in the group.
    pub size: u64,
    /// Distance in rank order between consecutive members (product of inner layout sizes).
    pub stride: u64,
}

/// Time of one collective, split by network level and into bandwidth and latency parts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommTime {
    /// Bandwidth time on scale-up links.
    pub scale_up: Seconds,
    /// Bandwidth time on the scale-out network.
    pub scale_out: Seconds,
    /// Latency (α) time of steps on scale-up links.
    pub scale_up_latency: Seconds,
    /// Latency (α) time of steps that cross the scale-out network.
    pub scale_out_latency: Seconds,
}

impl CommTime {
    /// Total.
    #[must_use]
    #[cfg(test)]
    pub fn total(&self) -> Seconds {
        self.scale_up + self.scale_out + self.scale_up_latency + self.scale_out_latency
    }
}

impl std::ops::Add for CommTime {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            scale_up: self.scale_up + o.scale_up,
            scale_out: self.scale_out + o.scale_out,
            scale_up_latency: self.scale_up_latency + o.scale_up_latency,
            scale_out_latency: self.scale_out_latency + o.scale_out_latency,
        }
    }
}

fn log2_ceil(n: u64) -> f64 {
    (64 - (n.max(1) - 1).leading_zeros()) as f64
}

/// Bytes each rank moves in `op` over `n` ranks, and the number of sequential steps.
fn volume_and_steps(op: Collective, n: u64, bytes: f64) -> (f64, f64) {
    if n <= 1 || bytes <= 0.0 {
        return (0.0, 0.0);
    }
    let nf = n as f64;
    let frac = (nf - 1.0) / nf;
    match op {
        Collective::AllReduce => (
            2.0 * frac * bytes,
            (2.0 * (nf - 1.0)).min(2.0 * log2_ceil(n)),
        ),
        Collective::ReduceScatter | Collective::AllGather | Collective::AllToAll => {
            (frac * bytes, nf - 1.0)
        }
        Collective::PointToPoint => (bytes, 1.0),
    }
}

impl Fabric {
    /// Members of `group` that share one scale-up domain.
    #[must_use]
    pub fn members_per_domain(&self, group: Group) -> u64 {
        if group.stride >= self.domain_chips {
            1
        } else {
            (self.domain_chips / group.stride.max(1)).clamp(1, group.size.max(1))
        }
    }

    /// Time of `op` on `bytes` per rank over `group`.
    ///
    /// Bandwidth: inside one domain the flat formula on scale-up links; across domains
    /// hierarchically (the scale-out phase carries `S/k` per chip, every chip on its own share of
    /// the network), or, when [`Fabric::hierarchical`] is false, the whole buffer on scale-out.
    /// Latency: a ring's `n−1` steps (a tree's `2⌈log2 n⌉` for all-reduce) each cost the latency
    /// of the slowest link in the group — scale-out once the group leaves its domain.
    #[must_use]
    pub fn time(&self, op: Collective, bytes: Bytes, group: Group) -> CommTime {
        let n = group.size;
        let s = bytes.bytes();
        if n <= 1 || s <= 0.0 {
            return CommTime::default();
        }
        let k = self.members_per_domain(group);
        let r = n.div_ceil(k);
        let (_, steps) = volume_and_steps(op, n, s);
        let up_bw = |op, n, b| Bytes::new(volume_and_steps(op, n, b).0) / self.scale_up;
        let out_bw = |op, n, b| Bytes::new(volume_and_steps(op, n, b).0) / self.scale_out;
        if r == 1 {
            return CommTime {
                scale_up: up_bw(op, n, s),
                scale_up_latency: self.scale_up_latency * steps,
                ..CommTime::default()
            };
        }
        let latency = self.scale_out_latency * steps;
        if k == 1 || !self.hierarchical {
            return CommTime {
                scale_out: out_bw(op, n, s),
                scale_out_latency: latency,
                ..CommTime::default()
            };
        }
        let shard = s / k as f64;
        let (up, out) = match op {
            Collective::AllReduce => (
                up_bw(Collective::ReduceScatter, k, s) + up_bw(Collective::AllGather, k, s),
                out_bw(Collective::AllReduce, r, shard),
            ),
            Collective::ReduceScatter | Collective::AllGather => {
                (up_bw(op, k, s), out_bw(op, r, shard))
            }
            Collective::AllToAll => {
                // Of the (n-1)/n of the buffer that leaves a rank, (k-1)/n stays in the domain.
                let nf = n as f64;
                (
                    Bytes::new(s * (k as f64 - 1.0) / nf) / self.scale_up,
                    Bytes::new(s * (nf - k as f64) / nf) / self.scale_out,
                )
            }
            Collective::PointToPoint => (Seconds::ZERO, out_bw(Collective::PointToPoint, 2, s)),
        };
        CommTime {
            scale_up: up,
            scale_out: out,
            scale_up_latency: Seconds::ZERO,
            scale_out_latency: latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn fabric() -> Fabric {
        Fabric {
            domain_chips: 8,
            scale_up: BytesPerSecond::from_gb_per_s(450.0),
            scale_up_latency: Seconds::ZERO,
            scale_out: BytesPerSecond::from_gb_per_s(50.0),
            scale_out_latency: Seconds::ZERO,
            hierarchical: true,
        }
    }

    #[test]
    fn ring_all_reduce_inside_a_domain_is_textbook() {
        let t = fabric().time(
            Collective::AllReduce,
            Bytes::from_gb(1.0),
            Group { size: 8, stride: 1 },
        );
        assert_relative_eq!(
            t.scale_up.seconds(),
            2.0 * 7.0 / 8.0 / 450.0,
            max_relative = 1e-12
        );
        assert_relative_eq!(t.scale_out.seconds(), 0.0);
    }

    #[test]
    fn hierarchical_all_reduce_splits_levels() {
        // 64 ranks, 8 per domain: RS+AG over 8 on NVLink, AR over 8 domains with 1/8 of the data.
        let t = fabric().time(
            Collective::AllReduce,
            Bytes::from_gb(1.0),
            Group {
                size: 64,
                stride: 1,
            },
        );
        assert_relative_eq!(
            t.scale_up.seconds(),
            2.0 * 7.0 / 8.0 / 450.0,
            max_relative = 1e-12
        );
        assert_relative_eq!(
            t.scale_out.seconds(),
            2.0 * 7.0 / 8.0 * 0.125 / 50.0,
            max_relative = 1e-12
        );
    }

    #[test]
    fn strided_group_goes_out_of_the_domain() {
        let t = fabric().time(
            Collective::AllGather,
            Bytes::from_gb(1.0),
            Group { size: 4, stride: 8 },
        );
        assert_relative_eq!(t.scale_out.seconds(), 0.75 / 50.0, max_relative = 1e-12);
        assert_relative_eq!(t.scale_up.seconds(), 0.0);
    }

    #[test]
    fn a_ring_across_domains_pays_the_scale_out_latency_at_every_step() {
        let f = Fabric {
            scale_up_latency: Seconds::from_micros(2.0),
            scale_out_latency: Seconds::from_micros(10.0),
            ..fabric()
        };
        // 512 ranks, 8 per domain: 511 ring steps, each gated by an inter-domain hop.
        let t = f.time(
            Collective::AllGather,
            Bytes::new(1.0e6),
            Group {
                size: 512,
                stride: 1,
            },
        );
        assert_relative_eq!(
            t.scale_out_latency.seconds(),
            511.0 * 10e-6,
            max_relative = 1e-12
        );
        assert_relative_eq!(t.scale_up_latency.seconds(), 0.0);
        // Inside one domain: 7 steps of scale-up latency.
        let t = f.time(
            Collective::AllGather,
            Bytes::new(1.0e6),
            Group { size: 8, stride: 1 },
        );
        assert_relative_eq!(
            t.scale_up_latency.seconds(),
            7.0 * 2e-6,
            max_relative = 1e-12
        );
        // All-reduce uses a tree when that is shorter: 2 x log2(512) = 18 steps.
        let t = f.time(
            Collective::AllReduce,
            Bytes::new(1.0e6),
            Group {
                size: 512,
                stride: 1,
            },
        );
        assert_relative_eq!(
            t.scale_out_latency.seconds(),
            18.0 * 10e-6,
            max_relative = 1e-12
        );
    }

    #[test]
    fn flat_collectives_put_the_whole_buffer_on_scale_out() {
        let f = Fabric {
            hierarchical: false,
            ..fabric()
        };
        let t = f.time(
            Collective::AllGather,
            Bytes::from_gb(1.0),
            Group {
                size: 64,
                stride: 1,
            },
        );
        assert_relative_eq!(
            t.scale_out.seconds(),
            63.0 / 64.0 / 50.0,
            max_relative = 1e-12
        );
    }

    #[test]
    fn all_reduce_is_reduce_scatter_plus_all_gather() {
        let f = fabric();
        let g = Group {
            size: 16,
            stride: 2,
        };
        let b = Bytes::from_gb(3.0);
        let ar = f.time(Collective::AllReduce, b, g).total();
        let two = f.time(Collective::ReduceScatter, b, g).total()
            + f.time(Collective::AllGather, b, g).total();
        assert_relative_eq!(ar.seconds(), two.seconds(), max_relative = 1e-12);
    }
}
