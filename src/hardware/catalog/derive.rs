//! Derived figures: `[[chips.derive]]` rules that compute a chip's figure from another chip's
//! (Trainium4 from Trainium3, say). Factors are checked, and so is every derived value: a chain of
//! derivations can never produce an infinite, subnormal or absurd figure.

use super::super::figure::Source;
use super::super::limits::{SaneRange, DERIVE_FACTOR};
use super::super::{Chip, Figure, Link, Provenance};
use super::schema::{DeriveField, DeriveFile, DeriveRule};
use super::Catalog;
use crate::error::{Error, Problem, Result};
use std::collections::BTreeMap;

/// A derivation waiting for its base figure.
pub(super) struct PendingDerive {
    /// Id of the target chip (not an index: an override removes chips).
    pub target: String,
    /// The file it comes from.
    pub file: String,
    /// Its key, `chips[x].derive[field]`.
    pub at: String,
    pub spec: DeriveFile,
    pub source: Source,
}

impl Catalog {
    /// Apply every pending derivation; they may chain (a user chip from trn4, itself from
    /// trn3), so they are resolved in passes until none makes progress.
    pub(super) fn resolve_derivations(&mut self, pending: Vec<PendingDerive>) -> Result<()> {
        let mut pending = pending;
        let mut errors: BTreeMap<String, Vec<Problem>> = BTreeMap::new();
        loop {
            let before = pending.len();
            let mut waiting: Vec<PendingDerive> = Vec::new();
            for d in pending {
                let Some(base) = self.chips.iter().position(|c| c.id == d.spec.from) else {
                    errors.entry(d.file.clone()).or_default().push(Problem::new(
                        format!("{}.from", d.at),
                        format!("unknown chip `{}`", d.spec.from),
                    ));
                    continue;
                };
                let base_pending = waiting
                    .iter()
                    .any(|o| o.target == d.spec.from && o.spec.field == d.spec.field);
                if base_pending {
                    waiting.push(d);
                    continue;
                }
                match self.apply_derive(&d, base) {
                    Ok(true) => {}
                    Ok(false) => waiting.push(d),
                    Err(p) => errors.entry(d.file.clone()).or_default().push(p),
                }
            }
            if waiting.is_empty() {
                break;
            }
            if waiting.len() == before {
                for d in waiting {
                    errors.entry(d.file.clone()).or_default().push(Problem::new(
                        format!("{}.from", d.at),
                        format!(
                            "`{}.{}` is missing or derived in a cycle",
                            d.spec.from,
                            d.spec.field.as_str()
                        ),
                    ));
                }
                break;
            }
            pending = waiting;
        }
        match errors.into_iter().next() {
            None => Ok(()),
            Some((file, problems)) => Err(Error::Invalid { file, problems }),
        }
    }

    /// Apply one derivation. `Ok(false)`: the base figure is not there yet (try again later).
    fn apply_derive(
        &mut self,
        d: &PendingDerive,
        base: usize,
    ) -> std::result::Result<bool, Problem> {
        let s = &d.spec;
        let factor = DERIVE_FACTOR.check(s.factor, format_args!("{}.factor", d.at))?;
        let sane = s.field.kind().range();
        // The derived value (and range ends) must stay in the field's sane range.
        let out = |v: f64| -> std::result::Result<f64, Problem> {
            sane.check(v, format_args!("{}.factor", d.at))
                .map_err(|p| Problem::new(p.key, format!("the derived value {}", p.reason)))
        };
        let prov = |derivation: String| Provenance {
            source: d.source.clone(),
            status: s.status,
            note: s.note.clone(),
            derivation: Some(derivation),
            alternatives: Vec::new(),
        };
        let Some(t) = self.chips.iter().position(|c| c.id == d.target) else {
            return Err(Problem::new(
                d.at.clone(),
                format!(
                    "chip `{}` was replaced before its derivation applied",
                    d.target
                ),
            ));
        };
        // The base chip read and the target written; a chip derived from itself is read from a
        // copy.
        let copy;
        let (from, target): (&Chip, &mut Chip) = match base.cmp(&t) {
            std::cmp::Ordering::Less => {
                let (head, tail) = self.chips.split_at_mut(t);
                (&head[base], &mut tail[0])
            }
            std::cmp::Ordering::Greater => {
                let (head, tail) = self.chips.split_at_mut(base);
                (&tail[0], &mut head[t])
            }
            std::cmp::Ordering::Equal => {
                copy = self.chips[base].clone();
                (&copy, &mut self.chips[t])
            }
        };
        let desc = format!("{factor} x {}.{}", s.from, s.field.as_str());
        // "144 GiB" scaled by 2 reads "288 GiB".
        let written = |base: &str| -> String {
            match base.split_once(' ') {
                Some((n, unit)) => match n.parse::<f64>() {
                    Ok(x) => format!("{} {unit}", x * factor),
                    Err(_) => desc.clone(),
                },
                None => desc.clone(),
            }
        };
        macro_rules! scale {
            ($base:expr, $slot:expr, $si:ident) => {{
                let Some(b) = $base.as_ref() else {
                    return Ok(false);
                };
                let value = b.value * factor;
                out(value.$si())?;
                let range = match b.range {
                    Some((lo, hi)) => {
                        out((lo * factor).$si())?;
                        out((hi * factor).$si())?;
                        Some((lo * factor, hi * factor))
                    }
                    None => None,
                };
                $slot = Some(Figure {
                    value,
                    as_written: written(&b.as_written),
                    range,
                    provenance: prov(desc.clone()),
                });
            }};
        }
        macro_rules! scale_link {
            ($base:expr, $slot:expr) => {{
                let Some(b) = $base.as_ref() else {
                    return Ok(false);
                };
                let value = b.bandwidth.value * factor;
                out(value.bytes_per_second())?;
                $slot = Some(Link {
                    bandwidth: Figure {
                        value,
                        as_written: written(&b.bandwidth.as_written),
                        range: None,
                        provenance: prov(desc.clone()),
                    },
                    direction: b.direction,
                });
            }};
        }
        match (s.rule, s.field) {
            (DeriveRule::Scale, f) if f.precision().is_some() => {
                let i = f.precision().map_or(0, |p| p.index());
                scale!(from.peaks[i], target.peaks[i], flops_per_second);
            }
            (DeriveRule::Scale, DeriveField::HbmCapacity) => {
                scale!(from.hbm_capacity, target.hbm_capacity, bytes)
            }
            (DeriveRule::Scale, DeriveField::HbmBandwidth) => {
                scale!(from.hbm_bandwidth, target.hbm_bandwidth, bytes_per_second)
            }
            (DeriveRule::Scale, DeriveField::Sram) => scale!(from.sram, target.sram, bytes),
            (DeriveRule::Scale, DeriveField::Tdp) => scale!(from.tdp, target.tdp, watts),
            (DeriveRule::Scale, DeriveField::ScaleUpBandwidth) => {
                scale_link!(from.scale_up, target.scale_up)
            }
            (DeriveRule::Scale, DeriveField::ScaleOutBandwidth) => {
                scale_link!(from.scale_out, target.scale_out)
            }
            (DeriveRule::PerfPerWatt, DeriveField::Tdp) => {
                return perf_per_watt(d, from, target, factor, sane, prov);
            }
            (rule, f) => {
                return Err(Problem::new(
                    format!("{}.field", d.at),
                    format!("cannot derive `{}` with rule {rule:?}; scale takes peak_*, hbm_capacity, hbm_bandwidth, sram, tdp, scale_up_bandwidth, scale_out_bandwidth; perf-per-watt takes tdp", f.as_str()),
                ))
            }
        }
        Ok(true)
    }
}

/// `target.tdp = from.tdp x (target peak / from peak) / factor`, in the rule's format.
fn perf_per_watt(
    d: &PendingDerive,
    from: &Chip,
    target: &mut Chip,
    factor: f64,
    sane: &SaneRange,
    prov: impl Fn(String) -> Provenance,
) -> std::result::Result<bool, Problem> {
    let s = &d.spec;
    let Some(fmt) = s.format else {
        return Err(Problem::new(
            format!("{}.format", d.at),
            "the perf-per-watt rule needs `format` (e.g. \"fp8\")",
        ));
    };
    let (Some(bp), Some(bt)) = (from.tdp.as_ref(), from.peak(fmt)) else {
        return Ok(false);
    };
    let Some(own) = target.peak(fmt) else {
        return Ok(false);
    };
    let ratio = own.value / bt.value;
    let value = bp.value * ratio / factor;
    sane.check(value.watts(), format_args!("{}.factor", d.at))
        .map_err(|p| Problem::new(p.key, format!("the derived value {}", p.reason)))?;
    let derivation = format!(
        "{}.tdp x ({}.peak_{fmt} / {}.peak_{fmt}) / {} = {:.0} W x {:.3} / {}",
        s.from,
        target.id,
        s.from,
        factor,
        bp.value.watts(),
        ratio,
        factor
    );
    target.tdp = Some(Figure {
        value,
        as_written: format!("{:.0} W", value.watts()),
        range: bp
            .range
            .map(|(lo, hi)| (lo * ratio / factor, hi * ratio / factor)),
        provenance: prov(derivation),
    });
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{keys, user, with_chip_extra};
    use crate::hardware::Precision;

    fn derive(field: &str, factor: &str) -> String {
        with_chip_extra(&format!(
            "[[chips.derive]]\nfield = \"{field}\"\nfrom = \"trn3\"\nrule = \"scale\"\nfactor = {factor}\nsource = \"A\"\nstatus = \"projection\"\n"
        ))
    }

    #[test]
    fn a_good_derivation_applies() {
        let c = user(&derive("peak_fp8", "2.0")).unwrap_or_else(|e| panic!("{e}"));
        let x = c.chip("acme-x1").unwrap_or_else(|e| panic!("{e}"));
        approx::assert_relative_eq!(
            x.peak_flops(Precision::Fp8)
                .map(|f| f.tera())
                .unwrap_or_default(),
            2.0 * 2517.0,
            max_relative = 1e-12
        );
    }

    #[test]
    fn bad_factors_are_refused_by_key() {
        for bad in ["0.0", "-2.0", "nan", "inf", "1e-300", "5000.0"] {
            let k = keys(user(&derive("peak_fp8", bad)));
            assert!(
                k.contains(&"chips[acme-x1].derive[peak_fp8].factor".to_string()),
                "factor {bad}: {k:?}"
            );
        }
    }

    #[test]
    fn a_derived_value_out_of_range_is_refused() {
        // 1000 x trn3's 2.5 PFLOP/s is in range; 1000 x trn3's 144 GiB is over 10 TB.
        let k = keys(user(&derive("hbm_capacity", "1000.0")));
        assert!(
            k.contains(&"chips[acme-x1].derive[hbm_capacity].factor".to_string()),
            "{k:?}"
        );
    }

    #[test]
    fn an_unknown_field_or_base_is_refused() {
        let k = keys(user(&derive("peak_fp6", "2.0")));
        assert!(
            k.iter()
                .any(|k| k.contains("derive") && k.contains("field")),
            "{k:?}"
        );
        let k = keys(user(
            &derive("peak_fp8", "2.0").replace("from = \"trn3\"", "from = \"trn9\""),
        ));
        assert!(
            k.contains(&"chips[acme-x1].derive[peak_fp8].from".to_string()),
            "{k:?}"
        );
    }
}
