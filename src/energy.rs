//! The facility: PUE and grid intensity, and the arithmetic of facility power, energy and
//! location-based carbon: `energy = chips × power per chip × time × PUE`.
//!
//! What a chip draws (idle to TDP with utilisation, plus host and network shares, or an all-in
//! system figure) is [`crate::economics`]'s; its values are checked where requests are resolved
//! ([`crate::EconomicsRequest::resolve`]).
//!
//! ```
//! use xpusim::Facility;
//! use xpusim::units::{Seconds, Watts};
//! let f = Facility::default();
//! let e = f.energy(Watts::new(700.0), 16_384, Seconds::new(54.0 * 86_400.0));
//! assert!((e.megawatt_hours() - 700.0 * 16_384.0 * 54.0 * 24.0 * 1.15 / 1e6).abs() < 1e-6);
//! ```

use crate::units::{Joules, Seconds, Watts};
use serde::Serialize;

/// A data centre: power usage effectiveness and grid carbon intensity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Facility {
    /// Power usage effectiveness (facility power / IT power), at least 1.
    pub pue: f64,
    /// Location-based grid intensity, kg CO2e per kWh.
    pub grid_kg_co2_per_kwh: f64,
}

impl Default for Facility {
    /// AWS's fleet PUE for 2024, 1.15 (aws.amazon.com/sustainability, official), and the 2022 US
    /// average grid intensity, 0.86 lb = 0.39 kg CO2/kWh (EIA FAQ 74, official).
    fn default() -> Self {
        Self {
            pue: 1.15,
            grid_kg_co2_per_kwh: 0.39,
        }
    }
}

impl Facility {
    /// Facility power of `chips` chips drawing `chip_power` each.
    #[must_use]
    pub fn power(&self, chip_power: Watts, chips: u64) -> Watts {
        chip_power * (chips as f64 * self.pue)
    }

    /// Facility energy of `chips` chips drawing `chip_power` for `time`.
    #[must_use]
    pub fn energy(&self, chip_power: Watts, chips: u64, time: Seconds) -> Joules {
        self.power(chip_power, chips) * time
    }

    /// How many chips drawing `chip_power` a facility `envelope` can power (IT load = envelope /
    /// PUE; hosts, network and storage share the IT load in reality, so this is an upper bound).
    #[must_use]
    pub fn chips_for_power(&self, envelope: Watts, chip_power: Watts) -> u64 {
        let n = envelope / (chip_power * self.pue);
        if n.is_finite() && n > 0.0 {
            n.floor() as u64
        } else {
            0
        }
    }

    /// Location-based emissions of `energy`, in tonnes CO2e.
    #[must_use]
    pub fn tonnes_co2(&self, energy: Joules) -> f64 {
        energy.megawatt_hours() * 1000.0 * self.grid_kg_co2_per_kwh / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn facility(pue: f64, grid: f64) -> Result<Facility, Vec<crate::error::Problem>> {
        crate::request::EconomicsRequest {
            pue: Some(pue),
            grid_kg_co2_per_kwh: Some(grid),
            ..Default::default()
        }
        .resolve("")
        .map(|s| s.facility)
    }

    #[test]
    fn energy_is_power_times_time() {
        let f = facility(1.1, 0.4).unwrap_or_else(|e| panic!("{e:?}"));
        let p = f.power(Watts::new(1000.0), 1000);
        assert_relative_eq!(p.watts(), 1.1e6, max_relative = 1e-12);
        let e = f.energy(Watts::new(1000.0), 1000, Seconds::new(3600.0));
        assert_relative_eq!(e.megawatt_hours(), 1.1, max_relative = 1e-12);
        assert_relative_eq!(f.tonnes_co2(e), 1.1 * 0.4, max_relative = 1e-12);
    }

    #[test]
    fn a_pue_below_one_is_refused() {
        assert!(facility(0.9, 0.4).is_err());
        assert!(facility(1.2, -1.0).is_err());
        assert!(facility(f64::NAN, 0.4).is_err());
    }
}
