//! Accelerators, their scale-up systems and clusters built from them.
//!
//! A [`Chip`] holds per-chip figures, each a [`Figure`] with provenance. A [`System`] is a
//! scale-up domain (an UltraServer, an NVL72 rack, a TPU pod) of one chip kind. A [`Cluster`] is
//! any number of chips of one system joined by a scale-out network; its totals are derived.

mod catalog;
mod figure;
pub mod limits;
mod resolver;

pub use catalog::{Catalog, Claim, Price};
pub use figure::{Alternative, Direction, Figure, Link, Provenance, Source, SourceKind, Status};

use crate::error::{Error, Result};
use crate::units::{Bytes, BytesPerSecond, ExpPerSecond, FlopsPerSecond, Seconds, Usd, Watts};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A number format a chip computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    /// IEEE single precision (vector units).
    Fp32,
    /// TensorFloat-32 on matrix units.
    Tf32,
    /// BF16 / FP16 on matrix units.
    Bf16,
    /// FP8 (E4M3/E5M2, MXFP8, cFP8).
    Fp8,
    /// FP4 (NVFP4, MXFP4).
    Fp4,
}

impl Precision {
    /// All formats, narrowest last.
    pub const ALL: [Precision; 5] = [
        Precision::Fp32,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp8,
        Precision::Fp4,
    ];

    /// The lowercase name used in files and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Tf32 => "tf32",
            Self::Bf16 => "bf16",
            Self::Fp8 => "fp8",
            Self::Fp4 => "fp4",
        }
    }

    /// Bytes per element of a tensor stored in this format.
    #[must_use]
    pub const fn bytes(self) -> f64 {
        match self {
            Self::Fp32 | Self::Tf32 => 4.0,
            Self::Bf16 => 2.0,
            Self::Fp8 => 1.0,
            Self::Fp4 => 0.5,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accelerator chip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chip {
    /// Lowercase kebab-case id (`trn3`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Family (catalog file stem): `trainium`, `tpu`, `nvidia` or a user family.
    pub family: String,
    /// Vendor.
    pub vendor: String,
    /// Other names accepted on the command line.
    pub aliases: Vec<String>,
    /// Which fitted efficiency parameters apply.
    pub calibration_group: String,
    /// The system used when only the chip is named.
    pub default_system: Option<String>,
    /// Release date or window.
    pub release: Option<Figure<String>>,
    /// Process node.
    pub process_node: Option<Figure<String>>,
    /// Dense peak FLOP/s per format, indexed by [`Precision`].
    pub peaks: [Option<Figure<FlopsPerSecond>>; 5],
    /// HBM capacity.
    pub hbm_capacity: Option<Figure<Bytes>>,
    /// HBM bandwidth.
    pub hbm_bandwidth: Option<Figure<BytesPerSecond>>,
    /// On-chip SRAM.
    pub sram: Option<Figure<Bytes>>,
    /// Output tiles computed at once (streaming multiprocessors, systolic arrays).
    pub matrix_units: Option<Figure<u64>>,
    /// Side of each systolic array; `None` on GPUs.
    pub systolic_array: Option<Figure<u64>>,
    /// Softmax exponentials per second of the special-function units (attention's softmax
    /// runs there, beside the tensor cores); `None` where no figure is published.
    pub softmax_exp_rate: Option<Figure<ExpPerSecond>>,
    /// Scale-up link bandwidth per chip.
    pub scale_up: Option<Link>,
    /// Scale-out network bandwidth per chip.
    pub scale_out: Option<Link>,
    /// Thermal design power (or the best public power figure).
    pub tdp: Option<Figure<Watts>>,
    /// Typical or measured mean power.
    pub typical_power: Option<Figure<Watts>>,
    /// Power drawn when powered on but idle (between jobs, waiting on a failed peer).
    pub idle_power: Option<Figure<Watts>>,
    /// Capital cost of one chip including its share of the server or board (CPUs, memory,
    /// chassis, scale-up switches), excluding the scale-out network (see
    /// [`System::network_capex_per_chip`]).
    pub purchase: Option<Figure<Usd>>,
    /// Prices, each with its date.
    pub prices: Vec<Price>,
    /// Vendor and press claims kept verbatim, with how xpusim reads them.
    pub claims: Vec<Claim>,
}

impl Chip {
    /// The dense peak figure of a format, if the chip has it.
    #[must_use]
    pub fn peak(&self, precision: Precision) -> Option<&Figure<FlopsPerSecond>> {
        self.peaks[precision.index()].as_ref()
    }

    /// Dense peak FLOP/s in `precision`.
    ///
    /// # Errors
    /// [`Error::Input`] when the chip has no published figure for that format.
    pub fn peak_flops(&self, precision: Precision) -> Result<FlopsPerSecond> {
        self.peak(precision).map(|f| f.value).ok_or_else(|| {
            let have = Precision::ALL
                .iter()
                .filter(|p| self.peak(**p).is_some())
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Error::input(
                "precision",
                format!(
                    "chip `{}` has no {precision} figure in the catalog (it has: {have})",
                    self.id
                ),
            )
        })
    }
}

/// A scale-up domain: chips of one kind joined by the fast network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct System {
    /// Lowercase kebab-case id (`trn3-ultraserver-gen2`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The chip id.
    pub chip: String,
    /// Chips in one scale-up domain.
    pub domain_chips: Figure<u64>,
    /// Scale-up bandwidth per chip inside this domain (the chip's own figure unless overridden).
    pub scale_up: Link,
    /// Scale-out bandwidth per chip (the chip's own figure unless overridden).
    pub scale_out: Link,
    /// Latency of one scale-up collective step.
    pub scale_up_latency: Figure<Seconds>,
    /// Latency of one scale-out collective step.
    pub scale_out_latency: Figure<Seconds>,
    /// Dimensions of the scale-up torus; `None` for a switched domain.
    pub scale_up_torus_dims: Option<Figure<u64>>,
    /// Host (CPU) memory per accelerator; `None` when not published.
    pub host_memory_per_chip: Option<Figure<Bytes>>,
    /// Accelerator-to-host link per accelerator; `None` when not published.
    pub host_link: Option<Link>,
    /// Host power per accelerator: CPUs, memory, NICs, fans, storage, scale-up switches, power
    /// conversion (`None` when [`System::power_all_in`]).
    pub host_power_per_chip: Option<Figure<Watts>>,
    /// Scale-out switch power per accelerator (`None` when [`System::power_all_in`]).
    pub network_power_per_chip: Option<Figure<Watts>>,
    /// Scale-out network capital cost per accelerator: NICs, switches, optics, cables.
    pub network_capex_per_chip: Option<Figure<Usd>>,
    /// Published power of the whole system (server, rack, pod), kept as a check figure.
    pub system_power: Option<Figure<Watts>>,
    /// The chip's power figure already covers host and network power: add nothing to it.
    pub power_all_in: bool,
}

impl System {
    /// Power per chip with its host and network shares, at chip power `chip_power` (its TDP
    /// when busy, its idle power between jobs). For an all-in system the chip figure already
    /// includes them and is returned unchanged. `None` when a share is missing.
    ///
    /// ```
    /// use xpusim::hardware::Catalog;
    /// let c = Catalog::builtin()?;
    /// let s = c.system("hgx-h100")?;
    /// let w = s.power_per_chip(xpusim::units::Watts::new(700.0)).map(|w| w.watts());
    /// assert!(w.is_some_and(|w| w > 700.0));
    /// # Ok::<(), xpusim::Error>(())
    /// ```
    #[must_use]
    pub fn power_per_chip(&self, chip_power: Watts) -> Option<Watts> {
        if self.power_all_in {
            return Some(chip_power);
        }
        let host = self.host_power_per_chip.as_ref()?.value;
        let net = self.network_power_per_chip.as_ref()?.value;
        Some(Watts::new(chip_power.watts() + host.watts() + net.watts()))
    }
}

/// The totals of a group of chips (a domain or a cluster), derived from per-chip figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Totals {
    /// Number of chips.
    pub chips: u64,
    /// Dense peak in the format asked for.
    pub peak: FlopsPerSecond,
    /// HBM capacity.
    pub hbm_capacity: Bytes,
    /// HBM bandwidth.
    pub hbm_bandwidth: BytesPerSecond,
    /// Chip power (TDP) when the chip has a figure.
    pub power: Option<Watts>,
}

/// A cluster: `chips` chips of one system, in domains of `domain_chips`, joined by a scale-out network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    /// The chip.
    pub chip: Chip,
    /// The scale-up system.
    pub system: System,
    /// Total chips (1 to millions).
    pub chips: u64,
    /// Chips per scale-up domain actually used (at most the system's domain).
    pub domain_chips: u64,
    /// Scale-out bandwidth per chip, per direction.
    pub scale_out_per_chip: BytesPerSecond,
    /// Scale-up bandwidth per chip, per direction.
    pub scale_up_per_chip: BytesPerSecond,
}

impl Cluster {
    /// Build a cluster of `chips` chips of `system`.
    ///
    /// # Errors
    /// [`Error::Input`] for zero chips or more than [`limits::MAX_CLUSTER_CHIPS`].
    pub fn new(chip: Chip, system: System, chips: u64) -> Result<Self> {
        if chips == 0 {
            return Err(Error::input("chips", "a cluster needs at least one chip"));
        }
        if chips > limits::MAX_CLUSTER_CHIPS {
            return Err(Error::input(
                "chips",
                format!(
                    "{chips} chips is more than the {} a cluster may have",
                    limits::MAX_CLUSTER_CHIPS
                ),
            ));
        }
        let domain_chips = system.domain_chips.value.min(chips);
        Ok(Self {
            scale_out_per_chip: system.scale_out.per_direction(),
            scale_up_per_chip: system.scale_up.per_direction(),
            chip,
            system,
            chips,
            domain_chips,
        })
    }

    /// Use scale-up domains of `n` chips (a TPU slice smaller than the pod, say).
    ///
    /// # Errors
    /// [`Error::Input`] when `n` is zero or larger than the system's domain.
    pub fn with_domain_chips(mut self, n: u64) -> Result<Self> {
        if n == 0 || n > self.system.domain_chips.value {
            return Err(Error::input(
                "domain_chips",
                format!(
                    "must be between 1 and the {} domain of {} chips, got {n}",
                    self.system.id, self.system.domain_chips.value
                ),
            ));
        }
        self.domain_chips = n.min(self.chips);
        Ok(self)
    }

    /// Replace the scale-out bandwidth per chip (per direction), e.g. a site's own fabric.
    ///
    /// # Errors
    /// [`Error::Input`] for a non-positive or non-finite bandwidth.
    pub fn with_scale_out(mut self, per_chip: BytesPerSecond) -> Result<Self> {
        if !(per_chip.is_finite() && per_chip.bytes_per_second() > 0.0) {
            return Err(Error::input(
                "scale_out",
                "scale-out bandwidth must be positive and finite",
            ));
        }
        self.scale_out_per_chip = per_chip;
        Ok(self)
    }

    /// Number of scale-up domains (the last one may be partly filled).
    #[must_use]
    pub fn domains(&self) -> u64 {
        self.chips.div_ceil(self.domain_chips)
    }

    /// Derived totals in `precision`.
    ///
    /// # Errors
    /// [`Error::Input`] when the chip lacks the format or its HBM figures.
    pub fn totals(&self, precision: Precision) -> Result<Totals> {
        totals(&self.chip, self.chips, precision)
    }
}

/// Totals of `chips` chips: every figure multiplied by the count (derived, not typed in).
///
/// The products are floating point: with figures inside [`limits`] and any `u64` count they stay
/// finite (at most about 2e38), so nothing wraps or overflows.
///
/// # Errors
/// [`Error::Input`] when the chip lacks the format or its HBM figures.
pub fn totals(chip: &Chip, chips: u64, precision: Precision) -> Result<Totals> {
    // Exact up to 2^53 chips; beyond, the nearest double, which is all a total needs.
    #[allow(clippy::cast_precision_loss)]
    let n = chips as f64;
    let hbm = chip.hbm_capacity.as_ref().ok_or_else(|| {
        Error::input(
            "hardware",
            format!("chip `{}` has no HBM capacity figure", chip.id),
        )
    })?;
    let bw = chip.hbm_bandwidth.as_ref().ok_or_else(|| {
        Error::input(
            "hardware",
            format!("chip `{}` has no HBM bandwidth figure", chip.id),
        )
    })?;
    Ok(Totals {
        chips,
        peak: chip.peak_flops(precision)? * n,
        hbm_capacity: hbm.value * n,
        hbm_bandwidth: bw.value * n,
        power: chip.tdp.as_ref().map(|p| p.value * n),
    })
}
