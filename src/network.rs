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
//! collective across the `r = n/k` domains over scale-out with `S/k` bytes per chip (each chip
//! uses its own share of the scale-out bandwidth), then an all-gather inside the domain. Its
//! latency is that of its phases: `k−1` scale-up steps per domain phase, and across the domains
//! the fewer of a ring's `r−1` and the logarithmic algorithms' `⌈log2 r⌉` (tree all-reduce;
//! recursive halving/doubling or NCCL's PAT for reduce-scatter and all-gather) scale-out steps,
//! so that data parallelism over thousands of replicas is not charged `n−1` scale-out latencies.
//!
//! A scale-up domain that is a `d`-dimensional torus (TPU pods, Trainium servers) runs its
//! collectives dimension by dimension (Jouppi et al., ISCA 2023, on TPU v4; Dally and Towles,
//! *Principles and Practices of Interconnection Networks*, 2004, ch. 3): a group of `n` ranks
//! spans axes of about `n^(1/d)` ranks each, a reduce-scatter or all-gather takes `Σ (aᵢ−1)`
//! ring steps instead of `n−1`, and with every axis busy at once on its share of the data the
//! bandwidth term is the switched one at the chip's aggregate link bandwidth. An all-to-all is
//! bisection-bound instead: each byte crosses on average `Σ aᵢ/4` links (a bidirectional ring of
//! even length `a` has mean distance `a/4`, `(a²−1)/4a` when odd), so its bandwidth time is that
//! many times `S / B` rather than `(n−1)/n · S / B`.

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
    /// Hierarchical collectives cross the domains with logarithmic algorithms (tree all-reduce,
    /// PAT or recursive halving/doubling reduce-scatter and all-gather) instead of a ring over
    /// every rank.
    pub logarithmic: bool,
    /// Dimensions of the scale-up torus; 0 for a switched domain (every chip one hop from
    /// every other).
    pub torus_dims: u64,
}

/// The most torus dimensions modelled (the catalog accepts 1 to 6).
const MAX_TORUS_DIMS: usize = 6;

/// Ring lengths of the axes a group of `n` ranks spans on a `dims`-dimensional torus: `n` split
/// as evenly as the axes allow, largest first (512 on a 3-D torus: 8 × 8 × 8; 6: 2 × 2 × 2,
/// the last axis partly used). Unused axes have length 1.
fn torus_axes(n: u64, dims: u64) -> [u64; MAX_TORUS_DIMS] {
    let dims = (dims as usize).clamp(1, MAX_TORUS_DIMS);
    let mut axes = [1; MAX_TORUS_DIMS];
    let mut rest = n.max(1);
    for (i, axis) in axes.iter_mut().take(dims).enumerate() {
        let left = (dims - i) as f64;
        // The smallest whole length whose `left`-th power covers what is left.
        let mut a = (rest as f64).powf(1.0 / left).round().max(1.0) as u64;
        while a.saturating_pow(left as u32) < rest {
            a += 1;
        }
        *axis = a;
        rest = rest.div_ceil(a);
    }
    axes
}

/// Mean distance between two ranks on a bidirectional ring of `a` ranks (self included).
fn ring_mean_distance(a: u64) -> f64 {
    let even = a.is_multiple_of(2);
    let a = a as f64;
    if even {
        a / 4.0
    } else {
        (a * a - 1.0) / (4.0 * a)
    }
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

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Where the members of the worst-placed group of a kind sit: `domains` scale-up domains
/// touched, `per_domain` members in each (rounded down when the split is uneven).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Members of the group in one scale-up domain.
    pub per_domain: u64,
    /// Scale-up domains the group touches.
    pub domains: u64,
}

impl Fabric {
    /// How the worst-placed group of this kind sits on the domains.
    ///
    /// Groups of one kind tile the rank order: group `(q, i)` holds ranks
    /// `q·size·stride + i + j·stride` for `j < size`, `i < stride`. Domains are consecutive blocks
    /// of [`Fabric::domain_chips`] ranks. A group whose stride reaches the domain size has every
    /// member in its own domain; otherwise it touches every domain between its first and last
    /// member, and a group can straddle a domain boundary even when it is no larger than a
    /// domain (stride 4, size 2, domains of 8: ranks 4 and 8). Collectives are synchronous, so the
    /// group that touches the most domains sets the time.
    #[must_use]
    pub fn placement(&self, group: Group) -> Placement {
        let n = group.size.max(1);
        let s = group.stride.max(1);
        let d = self.domain_chips.max(1);
        if n == 1 {
            return Placement {
                per_domain: 1,
                domains: 1,
            };
        }
        if s >= d {
            return Placement {
                per_domain: 1,
                domains: n,
            };
        }
        // The largest offset inside its domain that a group's first member can have: group
        // blocks start at multiples of `size·stride`, which reach every multiple of
        // gcd(block, d) modulo d, and the first member adds up to `stride − 1`.
        let block = n.saturating_mul(s);
        let g = gcd(block % d, d);
        let first = (d - g).saturating_add(s - 1).min(d - 1);
        let span = (n - 1).saturating_mul(s);
        let domains = (first.saturating_add(span) / d + 1).min(n);
        Placement {
            per_domain: (n / domains).max(1),
            domains,
        }
    }

    /// Whether neighbours `stride` ranks apart at positions `p` and `p + 1` of a chain cross a
    /// domain boundary for some offset `i < stride`: the pair of ranks `p·stride + i` and
    /// `(p+1)·stride + i` sits in two domains when a multiple of the domain size falls in
    /// `(p·stride, (p+2)·stride − 1]`.
    fn neighbours_cross(&self, stride: u64, p: u64) -> bool {
        let d = self.domain_chips.max(1);
        let lo = p.saturating_mul(stride);
        let hi = lo
            .saturating_add(stride.saturating_mul(2))
            .saturating_sub(1);
        hi / d > lo / d
    }

    /// Fraction of a pipeline's chunk boundaries that cross the scale-out network.
    ///
    /// `stages` stages `stride` ranks apart (pipeline outermost in rank order), each holding
    /// `chunks` model chunks (interleaved 1F1B): per micro-batch, boundary `p → p+1` is crossed
    /// `chunks` times and the wrap-around from the last stage to the first `chunks − 1` times.
    #[must_use]
    pub fn pipeline_crossing_fraction(&self, stride: u64, stages: u64, chunks: u64) -> f64 {
        let (pp, v) = (stages, chunks.max(1));
        if pp <= 1 {
            return 0.0;
        }
        let d = self.domain_chips.max(1);
        let stride = stride.max(1);
        let boundaries = (pp * v - 1) as f64;
        if stride >= d {
            return 1.0;
        }
        if pp.saturating_mul(stride) <= d {
            return 0.0;
        }
        // The interior boundaries' crossings repeat with period d / gcd(stride, d) in p.
        let period = d / gcd(stride, d);
        let interior = pp - 1;
        let count = |range: std::ops::Range<u64>| {
            range.filter(|&p| self.neighbours_cross(stride, p)).count() as u64
        };
        let crossing = if interior <= period {
            count(0..interior)
        } else {
            count(0..period) * (interior / period) + count(0..interior % period)
        };
        // The wrap-around joins rank i to rank (pp−1)·stride + i: it crosses once the pipeline
        // leaves one domain.
        let wrap = v - 1;
        (crossing * v + wrap) as f64 / boundaries
    }

    /// One point-to-point transfer of `bytes` inside a domain (`crosses` false) or across two.
    #[must_use]
    pub fn point_to_point(&self, bytes: Bytes, crosses: bool) -> CommTime {
        let (volume, steps) = volume_and_steps(Collective::PointToPoint, 2, bytes.bytes());
        let volume = Bytes::new(volume);
        if crosses {
            CommTime {
                scale_out: volume / self.scale_out,
                scale_out_latency: self.scale_out_latency * steps,
                ..CommTime::default()
            }
        } else {
            CommTime {
                scale_up: volume / self.scale_up,
                scale_up_latency: self.scale_up_latency * steps,
                ..CommTime::default()
            }
        }
    }

    /// Bandwidth time of the two phases of a hierarchical `op` over `n` ranks, `k` in each of
    /// `r` domains, `s` bytes per rank: (scale-up, scale-out).
    fn phases(&self, op: Collective, n: u64, k: u64, r: u64, s: f64) -> (Seconds, Seconds) {
        let shard = s / k as f64;
        match op {
            Collective::AllReduce => (
                self.up(Collective::ReduceScatter, k, s) + self.up(Collective::AllGather, k, s),
                self.out(Collective::AllReduce, r, shard),
            ),
            Collective::ReduceScatter | Collective::AllGather => {
                (self.up(op, k, s), self.out(op, r, shard))
            }
            Collective::AllToAll => {
                // Of the (n-1)/n of the buffer that leaves a rank, (k-1)/n stays in the domain,
                // crossing `hops(k)` scale-up links on average.
                let nf = n as f64;
                (
                    Bytes::new(s * (k as f64 - 1.0) / nf * self.hops(k)) / self.scale_up,
                    Bytes::new(s * (nf - k as f64) / nf) / self.scale_out,
                )
            }
            Collective::PointToPoint => (Seconds::ZERO, self.out(Collective::PointToPoint, 2, s)),
        }
    }

    /// Bandwidth time of `op` over `n` ranks on `bytes` per rank, on scale-up links.
    fn up(&self, op: Collective, n: u64, bytes: f64) -> Seconds {
        let volume = volume_and_steps(op, n, bytes).0;
        let volume = if op == Collective::AllToAll {
            volume * self.hops(n)
        } else {
            volume
        };
        Bytes::new(volume) / self.scale_up
    }

    /// Mean scale-up links a byte crosses to reach another member of a group of `n` in one
    /// domain: 1 when switched; on a torus the mean distance over the group's axes (see the
    /// module docs), which bounds all-to-all traffic by the torus's bisection.
    fn hops(&self, n: u64) -> f64 {
        if self.torus_dims == 0 || n <= 1 {
            return 1.0;
        }
        let mean: f64 = torus_axes(n, self.torus_dims)
            .iter()
            .map(|&a| ring_mean_distance(a))
            .sum();
        // Over the n−1 other ranks, not the n the mean includes.
        (mean * n as f64 / (n as f64 - 1.0)).max(1.0)
    }

    /// Sequential steps of `op` over `n` ranks inside one domain: the switched formula, or on a
    /// torus a ring per axis (`Σ (aᵢ−1)`, twice for an all-reduce unless a tree is shorter).
    fn domain_steps(&self, op: Collective, n: u64) -> f64 {
        let (_, steps) = volume_and_steps(op, n, 1.0);
        if self.torus_dims == 0 || n <= 1 {
            return steps;
        }
        let axis_steps: f64 = torus_axes(n, self.torus_dims)
            .iter()
            .map(|&a| a as f64 - 1.0)
            .sum();
        match op {
            Collective::AllReduce => (2.0 * axis_steps).min(steps),
            Collective::ReduceScatter | Collective::AllGather | Collective::AllToAll => {
                axis_steps.min(steps)
            }
            Collective::PointToPoint => steps,
        }
    }

    /// The same on the scale-out network.
    fn out(&self, op: Collective, n: u64, bytes: f64) -> Seconds {
        Bytes::new(volume_and_steps(op, n, bytes).0) / self.scale_out
    }

    /// Time of `op` on `bytes` per rank over `group`.
    ///
    /// Bandwidth: inside one domain the flat formula on scale-up links; across domains
    /// hierarchically (the scale-out phase carries `S/k` per chip, every chip on its own share of
    /// the network), or, when [`Fabric::hierarchical`] is false, the whole buffer on scale-out.
    /// Latency: a ring's `n−1` steps (a tree's `2⌈log2 n⌉` for all-reduce) each cost the latency
    /// of the slowest link in the group — scale-out once the group leaves its domain; with
    /// [`Fabric::logarithmic`], each phase of a hierarchical collective pays its own steps
    /// (`k−1` in a domain, the fewer of `r−1` and `⌈log2 r⌉` across domains).
    #[must_use]
    pub fn time(&self, op: Collective, bytes: Bytes, group: Group) -> CommTime {
        let n = group.size;
        let s = bytes.bytes();
        if n <= 1 || s <= 0.0 {
            return CommTime::default();
        }
        let Placement {
            per_domain: k,
            domains: r,
        } = self.placement(group);
        let (_, steps) = volume_and_steps(op, n, s);
        if r == 1 {
            return CommTime {
                scale_up: self.up(op, n, s),
                scale_up_latency: self.scale_up_latency * self.domain_steps(op, n),
                ..CommTime::default()
            };
        }
        if k == 1 || !self.hierarchical {
            // One rank per domain (data parallelism across tensor-parallel domains) or a flat
            // collective: every step leaves the domain.
            let steps = if self.logarithmic {
                inter_steps(op, n)
            } else {
                steps
            };
            return CommTime {
                scale_out: self.out(op, n, s),
                scale_out_latency: self.scale_out_latency * steps,
                ..CommTime::default()
            };
        }
        if !self.logarithmic {
            // NCCL's rings before PAT: the bandwidth is hierarchical, but the ring runs through
            // every rank, each of its steps gated by the slowest (scale-out) hop.
            let (up, out) = self.phases(op, n, k, r, s);
            return CommTime {
                scale_up: up,
                scale_out: out,
                scale_up_latency: Seconds::ZERO,
                scale_out_latency: self.scale_out_latency * steps,
            };
        }
        let (up, out) = self.phases(op, n, k, r, s);
        // Latency of the two phases: the steps inside a domain over its `k` members at
        // scale-up latency (twice for an all-reduce: reduce-scatter, then all-gather), and the
        // steps across the `r` domains at scale-out latency. All-to-all and point-to-point
        // exchange directly with every peer: their steps all leave the domain.
        let inside = self.domain_steps(Collective::ReduceScatter, k);
        let (up_steps, out_steps) = match op {
            Collective::AllReduce => (2.0 * inside, inter_steps(op, r)),
            Collective::ReduceScatter | Collective::AllGather => (inside, inter_steps(op, r)),
            Collective::AllToAll | Collective::PointToPoint => (0.0, steps),
        };
        CommTime {
            scale_up: up,
            scale_out: out,
            scale_up_latency: self.scale_up_latency * up_steps,
            scale_out_latency: self.scale_out_latency * out_steps,
        }
    }
}

/// Sequential steps of one phase of a hierarchical collective over `n` ranks: a ring's `n-1`,
/// or, across domains, the logarithmic algorithms libraries pick for small shares at many ranks
/// whichever is fewer: a double binary tree for all-reduce (NCCL 2.4), recursive halving and
/// doubling for reduce-scatter and all-gather (Thakur, Rabenseifner and Gropp 2005; NCCL 2.23's
/// PAT, one rank per node as in this phase), `⌈log2 n⌉` steps each way.
fn inter_steps(op: Collective, n: u64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let ring = n as f64 - 1.0;
    match op {
        Collective::AllReduce => (2.0 * ring).min(2.0 * log2_ceil(n)),
        Collective::ReduceScatter | Collective::AllGather => ring.min(log2_ceil(n)),
        Collective::AllToAll => ring,
        Collective::PointToPoint => 1.0,
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
            logarithmic: false,
            torus_dims: 0,
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
    fn a_hierarchical_collective_pays_each_phase_its_own_latency() {
        let f = Fabric {
            scale_up_latency: Seconds::from_micros(2.0),
            scale_out_latency: Seconds::from_micros(10.0),
            logarithmic: true,
            ..fabric()
        };
        let time = |f: Fabric, op, size| f.time(op, Bytes::new(1.0e6), Group { size, stride: 1 });
        let (up, out) = (2e-6, 10e-6);
        let latency = |t: CommTime| (t.scale_up_latency.seconds(), t.scale_out_latency.seconds());
        // 512 ranks, 8 per domain, 64 domains: 7 ring steps inside a domain, then 6 (log2 64,
        // recursive doubling) across domains, not 511 inter-domain hops.
        let (u, o) = latency(time(f, Collective::AllGather, 512));
        assert_relative_eq!(o, 6.0 * out, max_relative = 1e-12);
        assert_relative_eq!(u, 7.0 * up, max_relative = 1e-12);
        // An all-reduce: a reduce-scatter and an all-gather in the domain, a tree across.
        let (u, o) = latency(time(f, Collective::AllReduce, 512));
        assert_relative_eq!(o, 12.0 * out, max_relative = 1e-12);
        assert_relative_eq!(u, 14.0 * up, max_relative = 1e-12);
        // With rings (the libraries of the published runs), or without hierarchical
        // collectives, the ring's every step pays a scale-out latency.
        let ring = Fabric {
            logarithmic: false,
            ..f
        };
        let (_, o) = latency(time(ring, Collective::AllGather, 512));
        assert_relative_eq!(o, 511.0 * out, max_relative = 1e-12);
        let flat = Fabric {
            hierarchical: false,
            ..ring
        };
        let (_, o) = latency(time(flat, Collective::AllGather, 512));
        assert_relative_eq!(o, 511.0 * out, max_relative = 1e-12);
        // Inside one domain: 7 steps of scale-up latency.
        let (u, _) = latency(time(f, Collective::AllGather, 8));
        assert_relative_eq!(u, 7.0 * up, max_relative = 1e-12);
        // A flat all-reduce uses a tree when that is shorter: 2 x log2(512) = 18 steps.
        let (_, o) = latency(time(flat, Collective::AllReduce, 512));
        assert_relative_eq!(o, 18.0 * out, max_relative = 1e-12);
    }

    /// A group on a torus splits into near-equal axes.
    #[test]
    fn torus_axes_split_the_group_evenly() {
        assert_eq!(torus_axes(512, 3)[..3], [8, 8, 8]);
        assert_eq!(torus_axes(256, 2)[..2], [16, 16]);
        assert_eq!(torus_axes(6, 3)[..3], [2, 2, 2]);
        assert_eq!(torus_axes(2, 2)[..2], [2, 1]);
        assert_eq!(torus_axes(1, 3)[..3], [1, 1, 1]);
        // Every split covers the group.
        for n in 1..2000 {
            for d in 1..=6 {
                let covered: u64 = torus_axes(n, d).iter().product();
                assert!(covered >= n, "{n} on {d} dims");
            }
        }
        assert_relative_eq!(ring_mean_distance(8), 2.0);
        assert_relative_eq!(ring_mean_distance(3), 8.0 / 12.0);
    }

    /// On a torus, ring collectives take a ring per axis (`Σ (aᵢ−1)` steps) at the same
    /// bandwidth; an all-to-all crosses `Σ aᵢ/4` links per byte.
    #[test]
    fn a_torus_runs_collectives_axis_by_axis() {
        let switched = Fabric {
            domain_chips: 4096,
            scale_up_latency: Seconds::from_micros(2.0),
            ..fabric()
        };
        let torus = Fabric {
            torus_dims: 3,
            ..switched
        };
        let b = Bytes::from_gb(1.0);
        let g = Group {
            size: 512,
            stride: 1,
        };
        let (s, t) = (
            switched.time(Collective::AllGather, b, g),
            torus.time(Collective::AllGather, b, g),
        );
        assert_relative_eq!(
            s.scale_up_latency.seconds(),
            511.0 * 2e-6,
            max_relative = 1e-12
        );
        assert_relative_eq!(
            t.scale_up_latency.seconds(),
            21.0 * 2e-6,
            max_relative = 1e-12
        );
        assert_relative_eq!(
            t.scale_up.seconds(),
            s.scale_up.seconds(),
            max_relative = 1e-12
        );
        // All-reduce: a reduce-scatter and an all-gather per axis, or a tree when shorter.
        let ar = torus.time(Collective::AllReduce, b, g);
        assert_relative_eq!(
            ar.scale_up_latency.seconds(),
            18.0 * 2e-6,
            max_relative = 1e-12
        );
        let small = torus.time(Collective::AllReduce, b, Group { size: 8, stride: 1 });
        assert_relative_eq!(
            small.scale_up_latency.seconds(),
            6.0 * 2e-6,
            max_relative = 1e-12
        );
        // All-to-all over 8 x 8 x 8: mean distance 6 links over 511/512 of the ranks.
        let (s, t) = (
            switched.time(Collective::AllToAll, b, g),
            torus.time(Collective::AllToAll, b, g),
        );
        assert_relative_eq!(
            t.scale_up.seconds() / s.scale_up.seconds(),
            6.0 * 512.0 / 511.0,
            max_relative = 1e-12
        );
        // Two ranks: the same as a switch.
        let pair = Group { size: 2, stride: 1 };
        assert_eq!(
            torus.time(Collective::AllToAll, b, pair),
            switched.time(Collective::AllToAll, b, pair)
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

    /// Groups that fit one domain stay there; strided or straddling ones touch several.
    #[test]
    fn placement_counts_the_domains_of_the_worst_group() {
        let f = fabric();
        let at = |size, stride| f.placement(Group { size, stride });
        let p = |per_domain, domains| Placement {
            per_domain,
            domains,
        };
        assert_eq!(at(8, 1), p(8, 1));
        assert_eq!(at(2, 4), p(2, 1));
        assert_eq!(at(4, 2), p(4, 1));
        assert_eq!(at(64, 1), p(8, 8));
        assert_eq!(at(4, 8), p(1, 4));
        assert_eq!(at(16, 2), p(4, 4));
        // Blocks of 12 do not align with domains of 8: the group at ranks 8, 12, 16 straddles.
        assert_eq!(at(3, 4), p(1, 2));
        // NVL72 with groups of 16: the group at ranks 64..80 spans two domains.
        let nvl = Fabric {
            domain_chips: 72,
            ..fabric()
        };
        assert_eq!(nvl.placement(Group { size: 8, stride: 1 }).domains, 1);
        assert_eq!(
            nvl.placement(Group {
                size: 16,
                stride: 1
            })
            .domains,
            2
        );
        assert_eq!(nvl.placement(Group { size: 9, stride: 8 }).domains, 1);
        assert_eq!(
            nvl.placement(Group {
                size: 18,
                stride: 8
            })
            .domains,
            2
        );
    }

    /// Stage boundaries cross the scale-out network when stages sit in different domains.
    #[test]
    fn pipeline_crossings() {
        let f = fabric();
        // All stages in one domain.
        assert_relative_eq!(f.pipeline_crossing_fraction(1, 8, 1), 0.0);
        assert_relative_eq!(f.pipeline_crossing_fraction(2, 4, 3), 0.0);
        // A stage per domain or more.
        assert_relative_eq!(f.pipeline_crossing_fraction(8, 16, 1), 1.0);
        assert_relative_eq!(f.pipeline_crossing_fraction(32, 4, 2), 1.0);
        // Two stages per domain: every other boundary crosses (7 of 15); with two chunks the
        // 15 interior boundaries are crossed twice and the wrap-around once: 15 of 31.
        assert_relative_eq!(f.pipeline_crossing_fraction(4, 16, 1), 7.0 / 15.0);
        assert_relative_eq!(f.pipeline_crossing_fraction(4, 16, 2), 15.0 / 31.0);
        // Stages of 3 ranks straddle domains of 8: boundaries 1, 2, 4 (ranks 3..9, 6..12,
        // 12..18) of 0..5 cross; the period of 8 stages is used past it.
        let direct: u64 = (0..5).filter(|&p| f.neighbours_cross(3, p)).count() as u64;
        assert_eq!(direct, 3);
        let long = f.pipeline_crossing_fraction(3, 1000, 1);
        let brute = (0..999).filter(|&p| f.neighbours_cross(3, p)).count() as f64 / 999.0;
        assert_relative_eq!(long, brute, max_relative = 1e-12);
    }

    /// A point-to-point transfer is priced on one level only.
    #[test]
    fn point_to_point_levels() {
        let f = fabric();
        let b = Bytes::from_gb(1.0);
        let inside = f.point_to_point(b, false);
        let across = f.point_to_point(b, true);
        assert_relative_eq!(inside.scale_up.seconds(), 1.0 / 450.0, max_relative = 1e-12);
        assert_relative_eq!(inside.scale_out.seconds(), 0.0);
        assert_relative_eq!(across.scale_out.seconds(), 1.0 / 50.0, max_relative = 1e-12);
        assert_relative_eq!(across.scale_up.seconds(), 0.0);
    }
}
