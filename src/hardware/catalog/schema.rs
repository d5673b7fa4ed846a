//! The catalog file schema: what a TOML file may hold, before any value is checked. Every
//! enum-like key is a serde enum, so an unknown value is a parse error listing the allowed ones.

use super::super::figure::Source;
use super::super::limits::Kind;
use super::super::resolver::{FigureFile, Number, TextFigureFile};
use super::super::{Precision, Status};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The only file format version understood.
pub(super) const SCHEMA_VERSION: u32 = 1;

/// One catalog file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogFile {
    pub schema_version: u32,
    pub family: String,
    pub vendor: String,
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    #[serde(default)]
    pub chips: Vec<ChipFile>,
    #[serde(default)]
    pub systems: Vec<SystemFile>,
}

/// One `[[chips]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChipFile {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub calibration_group: String,
    pub default_system: Option<String>,
    #[serde(default, rename = "override")]
    pub replace: bool,
    pub release: Option<TextFigureFile>,
    pub process_node: Option<TextFigureFile>,
    pub peak_fp32: Option<FigureFile>,
    pub peak_tf32: Option<FigureFile>,
    pub peak_bf16: Option<FigureFile>,
    pub peak_fp8: Option<FigureFile>,
    pub peak_fp4: Option<FigureFile>,
    pub hbm_capacity: Option<FigureFile>,
    pub hbm_bandwidth: Option<FigureFile>,
    pub sram: Option<FigureFile>,
    /// Output tiles computed at once: streaming multiprocessors, or systolic arrays.
    pub matrix_units: Option<FigureFile>,
    /// The side of each systolic array (TPU MXU, Trainium tensor engine); absent on GPUs.
    pub systolic_array: Option<FigureFile>,
    /// Softmax exponentials per second of the special-function units.
    pub softmax_exp_rate: Option<FigureFile>,
    pub scale_up_bandwidth: Option<FigureFile>,
    pub scale_out_bandwidth: Option<FigureFile>,
    pub tdp: Option<FigureFile>,
    pub typical_power: Option<FigureFile>,
    /// Power drawn when the chip is powered but idle.
    pub idle_power: Option<FigureFile>,
    /// Capital cost of one chip with its share of the server or board (no scale-out network).
    pub purchase: Option<FigureFile>,
    #[serde(default)]
    pub prices: Vec<PriceFile>,
    #[serde(default)]
    pub derive: Vec<DeriveFile>,
    #[serde(default)]
    pub claims: Vec<ClaimFile>,
}

/// What a price is for.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum PriceKind {
    OnDemand,
    CapacityBlock,
    #[serde(rename = "reserved-1y")]
    Reserved1y,
    #[serde(rename = "reserved-3y")]
    Reserved3y,
    Spot,
    Purchase,
}

impl PriceKind {
    /// The kebab-case name, as kept in [`super::Price::kind`].
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::OnDemand => "on-demand",
            Self::CapacityBlock => "capacity-block",
            Self::Reserved1y => "reserved-1y",
            Self::Reserved3y => "reserved-3y",
            Self::Spot => "spot",
            Self::Purchase => "purchase",
        }
    }
}

/// One `[[chips.prices]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PriceFile {
    pub kind: PriceKind,
    pub value: Number,
    pub unit: String,
    pub date: String,
    pub region: Option<String>,
    pub instance: Option<String>,
    pub source: String,
    pub status: Status,
    pub note: Option<String>,
    /// Uncertainty band `[low, high]` in `unit`, for non-official prices.
    pub range: Option<[Number; 2]>,
}

/// One `[[chips.derive]]` entry: a figure computed from another chip's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeriveFile {
    pub field: DeriveField,
    pub from: String,
    pub rule: DeriveRule,
    pub factor: f64,
    pub format: Option<Precision>,
    pub source: String,
    pub status: Status,
    pub note: Option<String>,
}

/// How a derived figure is computed.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum DeriveRule {
    /// `factor x from.field`.
    Scale,
    /// `from.tdp x (own peak / from peak) / factor`, in `format`.
    PerfPerWatt,
}

/// The chip figures a derivation may compute (named as the chip keys, hence snake_case).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum DeriveField {
    PeakFp32,
    PeakTf32,
    PeakBf16,
    PeakFp8,
    PeakFp4,
    HbmCapacity,
    HbmBandwidth,
    Sram,
    Tdp,
    ScaleUpBandwidth,
    ScaleOutBandwidth,
}

impl DeriveField {
    /// The key as written in files.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::PeakFp32 => "peak_fp32",
            Self::PeakTf32 => "peak_tf32",
            Self::PeakBf16 => "peak_bf16",
            Self::PeakFp8 => "peak_fp8",
            Self::PeakFp4 => "peak_fp4",
            Self::HbmCapacity => "hbm_capacity",
            Self::HbmBandwidth => "hbm_bandwidth",
            Self::Sram => "sram",
            Self::Tdp => "tdp",
            Self::ScaleUpBandwidth => "scale_up_bandwidth",
            Self::ScaleOutBandwidth => "scale_out_bandwidth",
        }
    }

    /// The quantity of the field, whose sane range a derived value must respect.
    pub(super) fn kind(self) -> Kind {
        match self {
            Self::PeakFp32 | Self::PeakTf32 | Self::PeakBf16 | Self::PeakFp8 | Self::PeakFp4 => {
                Kind::FlopRate
            }
            Self::HbmCapacity | Self::Sram => Kind::Memory,
            Self::HbmBandwidth | Self::ScaleUpBandwidth | Self::ScaleOutBandwidth => {
                Kind::Bandwidth
            }
            Self::Tdp => Kind::Power,
        }
    }

    /// The format of a peak field.
    pub(super) fn precision(self) -> Option<Precision> {
        match self {
            Self::PeakFp32 => Some(Precision::Fp32),
            Self::PeakTf32 => Some(Precision::Tf32),
            Self::PeakBf16 => Some(Precision::Bf16),
            Self::PeakFp8 => Some(Precision::Fp8),
            Self::PeakFp4 => Some(Precision::Fp4),
            _ => None,
        }
    }
}

/// One `[[chips.claims]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClaimFile {
    pub text: String,
    pub source: String,
    pub status: Status,
    pub reading: String,
}

/// One `[[systems]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SystemFile {
    pub id: String,
    pub name: String,
    pub chip: String,
    #[serde(default, rename = "override")]
    pub replace: bool,
    pub domain_chips: FigureFile,
    pub scale_up_bandwidth: Option<FigureFile>,
    pub scale_out_bandwidth: Option<FigureFile>,
    pub scale_up_latency: FigureFile,
    pub scale_out_latency: FigureFile,
    /// Dimensions of the scale-up torus (TPU pods, Trainium servers); absent for a switched
    /// domain (NVSwitch, NeuronSwitch), where every chip reaches every other in one hop.
    pub scale_up_torus_dims: Option<FigureFile>,
    /// Host (CPU) memory per accelerator, the target of activation offload.
    pub host_memory_per_chip: Option<FigureFile>,
    /// Accelerator-to-host link per accelerator (PCIe, NVLink-C2C), with its direction.
    pub host_link_bandwidth: Option<FigureFile>,
    /// Host power (CPUs, memory, NICs, fans, storage) per accelerator.
    pub host_power_per_chip: Option<FigureFile>,
    /// Scale-out switch power per accelerator.
    pub network_power_per_chip: Option<FigureFile>,
    /// Scale-out network capital cost (NICs, switches, optics) per accelerator.
    pub network_capex_per_chip: Option<FigureFile>,
    /// Published power of the whole system (server, rack or pod), a check figure.
    pub system_power: Option<FigureFile>,
    /// The chip's power figure already includes host and network (and possibly facility) power.
    #[serde(default)]
    pub power_all_in: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        crate::error::parse_toml::<T>("t.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn enum_keys_refuse_unknown_values_and_list_the_allowed_ones() {
        #[derive(Debug, Deserialize)]
        struct P {
            #[allow(dead_code)]
            kind: PriceKind,
        }
        let msg = parse::<P>("kind = \"lease\"").err().unwrap_or_default();
        assert!(
            msg.contains("kind") && msg.contains("lease") && msg.contains("reserved-1y"),
            "{msg}"
        );
        assert!(parse::<P>("kind = \"reserved-3y\"").is_ok());
        #[derive(Debug, Deserialize)]
        struct D {
            #[allow(dead_code)]
            field: DeriveField,
        }
        let msg = parse::<D>("field = \"peak_fp6\"").err().unwrap_or_default();
        assert!(msg.contains("field") && msg.contains("peak_fp8"), "{msg}");
    }

    #[test]
    fn derive_fields_name_themselves() {
        let d: DeriveField = toml::Value::String("scale_out_bandwidth".into())
            .try_into()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.as_str(), "scale_out_bandwidth");
        assert_eq!(d.kind(), Kind::Bandwidth);
        assert_eq!(DeriveField::PeakFp4.precision(), Some(Precision::Fp4));
    }
}
