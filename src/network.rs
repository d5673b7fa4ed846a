//! Collectives over the two-level network: scale-up domains joined by a scale-out fabric.
//!
//! Cost model: alpha–beta (Hockney). A ring step moves `S/n` bytes at the per-direction link
//! bandwidth and pays one latency `α`. For a group of `n` ranks:
//!
//! | collective | bandwidth term | latency term |
//! |---|---|---|
//! | all-reduce | `2 (n-1)/n · S / B` | `α · min(2(n-1), 2⌈log2 n⌉)` (ring or tree, whichever is cheaper) |
//! | reduce-scatter, all-gather | `(n-1)/n · S / B` | `α · (n-1)` (ring) |
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

/// Time of one collective, split by network level.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CommTime {
    /// Time on scale-up links.
    pub scale_up: Seconds,
    /// Time on the scale-out network.
    pub scale_out: Seconds,
}

impl CommTime {
    /// Total.
    #[must_use]
    pub fn total(&self) -> Seconds {
        self.scale_up + self.scale_out
    }

    /// Scaled by `k` (repetitions).
    #[must_use]
    pub fn times(self, k: f64) -> Self {
        Self {
            scale_up: self.scale_up * k,
            scale_out: self.scale_out * k,
        }
    }
}

impl std::ops::Add for CommTime {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            scale_up: self.scale_up + o.scale_up,
            scale_out: self.scale_out + o.scale_out,
        }
    }
}

fn log2_ceil(n: u64) -> f64 {
    (64 - (n.max(1) - 1).leading_zeros()) as f64
}

/// One flat collective over `n` ranks on one level.
fn flat(op: Collective, n: u64, bytes: f64, bw: BytesPerSecond, alpha: Seconds) -> Seconds {
    if n <= 1 || bytes <= 0.0 {
        return Seconds::ZERO;
    }
    let nf = n as f64;
    let frac = (nf - 1.0) / nf;
    let (volume, steps) = match op {
        Collective::AllReduce => (
            2.0 * frac * bytes,
            (2.0 * (nf - 1.0)).min(2.0 * log2_ceil(n)),
        ),
        Collective::ReduceScatter | Collective::AllGather => (frac * bytes, nf - 1.0),
        Collective::AllToAll => (frac * bytes, nf - 1.0),
        Collective::PointToPoint => (bytes, 1.0),
    };
    Bytes::new(volume) / bw + alpha * steps
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
    #[must_use]
    pub fn time(&self, op: Collective, bytes: Bytes, group: Group) -> CommTime {
        let n = group.size;
        let s = bytes.bytes();
        if n <= 1 || s <= 0.0 {
            return CommTime::default();
        }
        let k = self.members_per_domain(group);
        let r = n.div_ceil(k);
        let up = |op, n, b| flat(op, n, b, self.scale_up, self.scale_up_latency);
        let out = |op, n, b| flat(op, n, b, self.scale_out, self.scale_out_latency);
        if r == 1 {
            return CommTime {
                scale_up: up(op, n, s),
                scale_out: Seconds::ZERO,
            };
        }
        if k == 1 || !self.hierarchical {
            return CommTime {
                scale_up: Seconds::ZERO,
                scale_out: out(op, n, s),
            };
        }
        match op {
            Collective::AllReduce => CommTime {
                scale_up: up(Collective::ReduceScatter, k, s) + up(Collective::AllGather, k, s),
                scale_out: out(Collective::AllReduce, r, s / k as f64),
            },
            Collective::ReduceScatter => CommTime {
                scale_up: up(Collective::ReduceScatter, k, s),
                scale_out: out(Collective::ReduceScatter, r, s / k as f64),
            },
            Collective::AllGather => CommTime {
                scale_up: up(Collective::AllGather, k, s),
                scale_out: out(Collective::AllGather, r, s / k as f64),
            },
            Collective::AllToAll => {
                // Of the (n-1)/n of the buffer that leaves a rank, (k-1)/n stays in the domain.
                let nf = n as f64;
                let inside = s * (k as f64 - 1.0) / nf;
                let outside = s * (nf - k as f64) / nf;
                CommTime {
                    scale_up: Bytes::new(inside) / self.scale_up
                        + self.scale_up_latency * (k as f64 - 1.0),
                    scale_out: Bytes::new(outside) / self.scale_out
                        + self.scale_out_latency * (r as f64 - 1.0),
                }
            }
            Collective::PointToPoint => CommTime {
                scale_up: Seconds::ZERO,
                scale_out: out(Collective::PointToPoint, 2, s),
            },
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
