//! Times as linear forms in θ, and communication split by network level.

use super::theta::{Param, PARAMS};
use crate::network::CommTime;
use std::ops::{Add, AddAssign, Mul};

/// A time as a linear function of θ: `Σ coef[i] · θ[i]` seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Terms(pub [f64; PARAMS]);

impl Terms {
    /// `v` seconds at θ = 1 of parameter `p`, nothing else.
    pub(super) fn one(p: Param, v: f64) -> Self {
        let mut t = [0.0; PARAMS];
        t[p.index()] = v;
        Self(t)
    }
    /// The coefficient of parameter `p`.
    pub(super) fn get(&self, p: Param) -> f64 {
        self.0[p.index()]
    }
    /// Evaluate at θ.
    #[must_use]
    pub fn at(&self, theta: &[f64; PARAMS]) -> f64 {
        self.0.iter().zip(theta).map(|(a, b)| a * b).sum()
    }
}
impl Add for Terms {
    type Output = Self;
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}
impl AddAssign for Terms {
    fn add_assign(&mut self, o: Self) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}
impl Mul<f64> for Terms {
    type Output = Self;
    fn mul(mut self, k: f64) -> Self {
        for a in &mut self.0 {
            *a *= k;
        }
        self
    }
}

/// Communication terms split by network level.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Comm {
    /// On scale-up links.
    pub(super) up: Terms,
    /// On the scale-out network.
    pub(super) out: Terms,
}
impl Comm {
    /// Bandwidth time priced with `param`, latency with the latency scale.
    pub(super) fn new(t: CommTime, param: Param) -> Self {
        Self {
            up: Terms::one(param, t.scale_up.seconds())
                + Terms::one(Param::Latency, t.scale_up_latency.seconds()),
            out: Terms::one(param, t.scale_out.seconds())
                + Terms::one(Param::Latency, t.scale_out_latency.seconds()),
        }
    }
    /// Both levels.
    pub(super) fn total(&self) -> Terms {
        self.up + self.out
    }
    /// `k` times the traffic.
    pub(super) fn scaled(self, k: f64) -> Self {
        Self {
            up: self.up * k,
            out: self.out * k,
        }
    }
}
impl Add for Comm {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            up: self.up + o.up,
            out: self.out + o.out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Seconds;
    use approx::assert_relative_eq;

    /// Addition and scaling act coefficient-wise, and evaluation is linear in both.
    #[test]
    fn terms_are_linear_forms() {
        let theta = [1.25, 1.5, 2.0, 4.0, 1.4, 0.3, 1.0, 60.0, 1.5];
        let a = Terms::one(Param::Matmul, 2.0) + Terms::one(Param::Kernel, 1e-6);
        let b = Terms::one(Param::Matmul, 1.0) + Terms::one(Param::Memory, 3.0);
        let sum = a + b;
        assert_relative_eq!(sum.get(Param::Matmul), 3.0);
        assert_relative_eq!(sum.get(Param::Memory), 3.0);
        assert_relative_eq!(sum.get(Param::Kernel), 1e-6);
        assert_relative_eq!(a.at(&theta), 2.0 * 1.25 + 4e-6);
        assert_relative_eq!(sum.at(&theta), a.at(&theta) + b.at(&theta));
        assert_relative_eq!((a * 2.5).at(&theta), 2.5 * a.at(&theta));
        let mut c = a;
        c += b;
        assert_eq!(c, sum);
        assert_relative_eq!(Terms::default().at(&theta), 0.0);
    }

    /// Latency goes to the latency scale; bandwidth to the chosen parameter, by level.
    #[test]
    fn comm_prices_bandwidth_and_latency() {
        let t = CommTime {
            scale_up: Seconds::new(2.0),
            scale_out: Seconds::new(3.0),
            scale_up_latency: Seconds::new(0.5),
            scale_out_latency: Seconds::new(0.25),
        };
        let c = Comm::new(t, Param::Overlap).scaled(2.0);
        assert_relative_eq!(c.up.get(Param::Overlap), 4.0);
        assert_relative_eq!(c.up.get(Param::Latency), 1.0);
        assert_relative_eq!(c.out.get(Param::Overlap), 6.0);
        assert_relative_eq!(c.out.get(Param::Latency), 0.5);
        assert_relative_eq!((c + c).total().get(Param::Overlap), 20.0);
    }
}
