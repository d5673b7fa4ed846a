//! Typed physical quantities.
//!
//! Every quantity with a unit that crosses the public API is one of these `#[repr(transparent)]`
//! newtypes over `f64` in SI base units (FLOP, FLOP/s, bytes, bytes/s, seconds, watts, joules,
//! US dollars). They are built with unit-named constructors and read with unit-named accessors;
//! there is no `From<f64>` and no `Deref`.
//!
//! Allowed operations: the same quantity adds and subtracts, scales by a dimensionless `f64`,
//! and divides by itself into a dimensionless ratio. The cross-unit operations are the table
//! below; anything else does not compile.
//!
//! | left | op | right | result |
//! |---|---|---|---|
//! | [`Flops`] | ÷ | [`FlopsPerSecond`] | [`Seconds`] |
//! | [`FlopsPerSecond`] | × | [`Seconds`] | [`Flops`] |
//! | [`Flops`] | ÷ | [`Seconds`] | [`FlopsPerSecond`] |
//! | [`Bytes`] | ÷ | [`BytesPerSecond`] | [`Seconds`] |
//! | [`BytesPerSecond`] | × | [`Seconds`] | [`Bytes`] |
//! | [`Bytes`] | ÷ | [`Seconds`] | [`BytesPerSecond`] |
//! | [`Watts`] | × | [`Seconds`] | [`Joules`] |
//! | [`Joules`] | ÷ | [`Seconds`] | [`Watts`] |
//!
//! FLOP counts are `f64`: a frontier run's 6e25 FLOPs overflows `u64`.
//!
//! ```
//! use xpusim::units::{Flops, FlopsPerSecond, Seconds};
//! let work = Flops::new(6.0e15);
//! let rate = FlopsPerSecond::from_tera(989.0);
//! let t: Seconds = work / rate;
//! assert!((t.seconds() - 6.0669).abs() < 1e-3);
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

macro_rules! quantity {
    ($(#[$doc:meta])* $name:ident, $getter:ident, $unit:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(transparent)]
        #[repr(transparent)]
        pub struct $name(f64);

        impl $name {
            /// Zero of this quantity.
            pub const ZERO: Self = Self(0.0);
            /// A value in the base unit (
            #[doc = $unit]
            /// ).
            #[must_use]
            pub const fn new(value: f64) -> Self {
                Self(value)
            }
            /// The value in the base unit (
            #[doc = $unit]
            /// ).
            #[must_use]
            pub const fn $getter(self) -> f64 {
                self.0
            }
            /// True when the value is finite (not NaN or infinite).
            #[must_use]
            pub fn is_finite(self) -> bool {
                self.0.is_finite()
            }
            /// The larger of two values.
            #[must_use]
            pub fn max(self, other: Self) -> Self {
                Self(self.0.max(other.0))
            }
            /// The smaller of two values.
            #[must_use]
            pub fn min(self, other: Self) -> Self {
                Self(self.0.min(other.0))
            }
        }

        impl Add for $name {
            type Output = Self;
            fn add(self, rhs: Self) -> Self {
                Self(self.0 + rhs.0)
            }
        }
        impl AddAssign for $name {
            fn add_assign(&mut self, rhs: Self) {
                self.0 += rhs.0;
            }
        }
        impl Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 - rhs.0)
            }
        }
        impl Mul<f64> for $name {
            type Output = Self;
            fn mul(self, rhs: f64) -> Self {
                Self(self.0 * rhs)
            }
        }
        impl Mul<$name> for f64 {
            type Output = $name;
            fn mul(self, rhs: $name) -> $name {
                $name(self * rhs.0)
            }
        }
        impl Div<f64> for $name {
            type Output = Self;
            fn div(self, rhs: f64) -> Self {
                Self(self.0 / rhs)
            }
        }
        impl Div for $name {
            type Output = f64;
            fn div(self, rhs: Self) -> f64 {
                self.0 / rhs.0
            }
        }
        impl Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                Self(iter.map(|q| q.0).sum())
            }
        }
        impl approx::AbsDiffEq for $name {
            type Epsilon = f64;
            fn default_epsilon() -> f64 {
                f64::EPSILON
            }
            fn abs_diff_eq(&self, other: &Self, epsilon: f64) -> bool {
                self.0.abs_diff_eq(&other.0, epsilon)
            }
        }
        impl approx::RelativeEq for $name {
            fn default_max_relative() -> f64 {
                f64::EPSILON
            }
            fn relative_eq(&self, other: &Self, epsilon: f64, max_relative: f64) -> bool {
                self.0.relative_eq(&other.0, epsilon, max_relative)
            }
        }
    };
}

quantity!(
    /// A count of floating-point operations.
    Flops, flops, "FLOP"
);
quantity!(
    /// A rate of floating-point operations.
    FlopsPerSecond, flops_per_second, "FLOP/s"
);
quantity!(
    /// A rate of transcendental evaluations (the exponentials of a softmax).
    ExpPerSecond, exp_per_second, "exp/s"
);
quantity!(
    /// An amount of memory or data.
    Bytes, bytes, "B"
);
quantity!(
    /// A data rate.
    BytesPerSecond, bytes_per_second, "B/s"
);
quantity!(
    /// A duration.
    Seconds, seconds, "s"
);
quantity!(
    /// A power.
    Watts, watts, "W"
);
quantity!(
    /// An energy.
    Joules, joules, "J"
);
quantity!(
    /// An amount of money in US dollars.
    Usd, usd, "USD"
);
quantity!(
    /// A price per chip-hour in US dollars.
    UsdPerChipHour, usd_per_chip_hour, "USD/chip-hour"
);

const TERA: f64 = 1e12;
const GIGA: f64 = 1e9;
const GIB: f64 = 1_073_741_824.0;

impl FlopsPerSecond {
    /// From TFLOP/s (1e12 FLOP/s).
    #[must_use]
    pub fn from_tera(tflops: f64) -> Self {
        Self(tflops * TERA)
    }
    /// In TFLOP/s.
    #[must_use]
    pub fn tera(self) -> f64 {
        self.0 / TERA
    }
}

impl Bytes {
    /// From decimal gigabytes (1e9 B).
    #[must_use]
    pub fn from_gb(gb: f64) -> Self {
        Self(gb * GIGA)
    }
    /// From binary gibibytes (2^30 B).
    #[must_use]
    pub fn from_gib(gib: f64) -> Self {
        Self(gib * GIB)
    }
    /// In decimal gigabytes (1e9 B).
    #[must_use]
    pub fn gb(self) -> f64 {
        self.0 / GIGA
    }
    /// In binary gibibytes (2^30 B).
    #[must_use]
    pub fn gib(self) -> f64 {
        self.0 / GIB
    }
}

impl BytesPerSecond {
    /// From decimal GB/s (1e9 B/s).
    #[must_use]
    pub fn from_gb_per_s(gbps: f64) -> Self {
        Self(gbps * GIGA)
    }
    /// From gigabits per second (1e9 bit/s).
    #[must_use]
    pub fn from_gbit_per_s(gbit: f64) -> Self {
        Self(gbit * GIGA / 8.0)
    }
    /// In decimal GB/s.
    #[must_use]
    pub fn gb_per_s(self) -> f64 {
        self.0 / GIGA
    }
    /// In gigabits per second.
    #[must_use]
    pub fn gbit_per_s(self) -> f64 {
        self.0 * 8.0 / GIGA
    }
}

/// Hours in a (Julian) year: 365.25 days x 24 hours.
pub const HOURS_PER_YEAR: f64 = 365.25 * 24.0;

impl Seconds {
    /// From microseconds.
    #[must_use]
    pub fn from_micros(us: f64) -> Self {
        Self(us * 1e-6)
    }
    /// From days of 86,400 s.
    ///
    /// ```
    /// assert_eq!(xpusim::units::Seconds::from_days(2.0).seconds(), 172_800.0);
    /// ```
    #[must_use]
    pub fn from_days(days: f64) -> Self {
        Self(days * 86_400.0)
    }
    /// In hours.
    #[must_use]
    pub fn hours(self) -> f64 {
        self.0 / 3600.0
    }
    /// In days.
    #[must_use]
    pub fn days(self) -> f64 {
        self.0 / 86_400.0
    }
}

impl Watts {
    /// In kilowatts.
    #[must_use]
    pub fn kilowatts(self) -> f64 {
        self.0 / 1e3
    }
}

impl Joules {
    /// From megawatt-hours (3.6e9 J).
    ///
    /// ```
    /// assert_eq!(xpusim::units::Joules::from_megawatt_hours(1.0).joules(), 3.6e9);
    /// ```
    #[must_use]
    pub fn from_megawatt_hours(mwh: f64) -> Self {
        Self(mwh * 3.6e9)
    }
    /// In megawatt-hours.
    #[must_use]
    pub fn megawatt_hours(self) -> f64 {
        self.0 / 3.6e9
    }
}

impl Div<FlopsPerSecond> for Flops {
    type Output = Seconds;
    fn div(self, rhs: FlopsPerSecond) -> Seconds {
        Seconds(self.0 / rhs.0)
    }
}
impl Mul<Seconds> for FlopsPerSecond {
    type Output = Flops;
    fn mul(self, rhs: Seconds) -> Flops {
        Flops(self.0 * rhs.0)
    }
}
impl Div<Seconds> for Flops {
    type Output = FlopsPerSecond;
    fn div(self, rhs: Seconds) -> FlopsPerSecond {
        FlopsPerSecond(self.0 / rhs.0)
    }
}
impl Div<BytesPerSecond> for Bytes {
    type Output = Seconds;
    fn div(self, rhs: BytesPerSecond) -> Seconds {
        Seconds(self.0 / rhs.0)
    }
}
impl Mul<Seconds> for BytesPerSecond {
    type Output = Bytes;
    fn mul(self, rhs: Seconds) -> Bytes {
        Bytes(self.0 * rhs.0)
    }
}
impl Div<Seconds> for Bytes {
    type Output = BytesPerSecond;
    fn div(self, rhs: Seconds) -> BytesPerSecond {
        BytesPerSecond(self.0 / rhs.0)
    }
}
impl Mul<Seconds> for Watts {
    type Output = Joules;
    fn mul(self, rhs: Seconds) -> Joules {
        Joules(self.0 * rhs.0)
    }
}
impl Div<Seconds> for Joules {
    type Output = Watts;
    fn div(self, rhs: Seconds) -> Watts {
        Watts(self.0 / rhs.0)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.4} s", self.0)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} GB", self.gb())
    }
}

impl fmt::Display for FlopsPerSecond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} TFLOP/s", self.tera())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn cross_unit_table_holds() {
        let t = Flops::new(1e15) / FlopsPerSecond::from_tera(500.0);
        assert_relative_eq!(t, Seconds::new(2.0), max_relative = 1e-12);
        assert_relative_eq!(
            FlopsPerSecond::from_tera(500.0) * t,
            Flops::new(1e15),
            max_relative = 1e-12
        );
        let e = Watts::new(700.0) * Seconds::new(3600.0);
        assert_relative_eq!(e.megawatt_hours(), 0.0007, max_relative = 1e-12);
        assert_relative_eq!(
            e / Seconds::new(3600.0),
            Watts::new(700.0),
            max_relative = 1e-12
        );
        let s = Bytes::from_gb(10.0) / BytesPerSecond::from_gb_per_s(5.0);
        assert_relative_eq!(s, Seconds::new(2.0), max_relative = 1e-12);
    }

    #[test]
    fn decimal_and_binary_bytes_differ() {
        assert_relative_eq!(
            Bytes::from_gib(1.0).gb(),
            1.073_741_824,
            max_relative = 1e-12
        );
        assert_relative_eq!(
            BytesPerSecond::from_gbit_per_s(400.0).gb_per_s(),
            50.0,
            max_relative = 1e-12
        );
    }
}
