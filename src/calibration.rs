//! Fitting the efficiency parameters to measured runs.
//!
//! The predicted step time is linear in θ (inverse efficiencies, kernel cost, exposure; see
//! [`crate::perf`]): `t̂_j = a_j · θ`. The fit minimises the relative error with a Gaussian prior
//! centred on [`Efficiency::PRIOR`] (ridge regression / maximum a posteriori):
//!
//! `Σ_j ((a_j·θ − t_j)/t_j)² / σ_r²  +  Σ_i ((θ_i − μ_i)/σ_i)²`
//!
//! solved by the normal equations with nalgebra's Cholesky factorisation; the parameters'
//! covariance is the inverse of the normal matrix. The squared residual is Huber's (runs more
//! than `HUBER_K` residual sigmas off count linearly), by iterative reweighting. The DP-overlap
//! regime depends on θ, so the linearisation is repeated until θ settles. Physical bounds (an efficiency cannot exceed 1,
//! exposure lies in [0, 1], a kernel cannot cost negative time) are enforced by fixing a parameter
//! that leaves its bound and refitting the rest.
//!
//! Parameters are fitted per calibration group (chips that share a software stack and
//! micro-architecture, e.g. `nvidia-hopper`), per family pooled (`nvidia`), and globally pooled.
//! A chip uses its group's fit, else its family's, else the global one, else the prior.
//! Each fit also records its held-out error (each study predicted by a fit made without it),
//! which estimates reports as the error to expect.

use crate::error::{parse_toml, read_file, Error, Result};
use crate::hardware::Chip;
use crate::perf::{Efficiency, StepTerms, Terms, PARAMS, PARAM_NAMES};
use crate::units::Seconds;
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Assumed relative noise of a published step time (run-to-run, framework version, unstated
/// settings): the weight of the data against the prior.
pub const RESIDUAL_SIGMA: f64 = 0.08;

/// Refits that settle a matmul format tied to its fitted sibling (see [`fit_group`]); the tie
/// converges geometrically, in a few.
const MAX_TIE_REFITS: usize = 20;

/// Huber's tuning constant (95% efficiency under Gaussian residuals; Huber 1964).
pub const HUBER_K: f64 = 1.345;

/// Lower and upper bounds of θ.
const BOUNDS: [(f64, f64); PARAMS] = [
    (1.0, 20.0),
    (1.0, 20.0),
    (1.0, 50.0),
    (0.0, 200.0),
    (1.0, 50.0),
    (0.0, 1.0),
    (0.0, 50.0),
    (0.0, 5000.0),
    (1.0, 20.0),
];

/// One measurement to fit: the step terms of a configuration and its measured step time.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The study it comes from (held out together in cross-validation).
    pub study: String,
    /// The chip's calibration group (e.g. `nvidia-hopper`).
    pub group: String,
    /// The chip's family (e.g. `nvidia`).
    pub family: String,
    /// The chip's id (`h100-sxm`): a fit records which chips it has seen.
    pub chip: String,
    /// The configuration's step terms (θ-independent).
    pub terms: StepTerms,
    /// The measured step time.
    pub measured: Seconds,
    /// Where the configuration sits in layout and scale (for the fit's envelope).
    pub extent: Extent,
}

/// The largest layout sizes and scale of a set of fitted runs: beyond them a prediction is an
/// extrapolation, and estimates say so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extent {
    /// Tensor parallel.
    pub tp: u64,
    /// Pipeline parallel.
    pub pp: u64,
    /// Context parallel.
    pub cp: u64,
    /// Expert parallel.
    pub ep: u64,
    /// Chips.
    pub chips: u64,
    /// Sequence length.
    pub seq_len: u64,
    /// Model FLOPs utilisation, in basis points: a run's measured MFU; in a fit's envelope the
    /// best measured MFU plus the fit's rms error (0: not recorded, as in older files).
    #[serde(default)]
    pub mfu_bp: u64,
}

/// A fraction in basis points, as [`Extent::mfu_bp`] holds it (0 when not a finite, positive
/// number).
pub(crate) fn basis_points(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        (x * 1e4).round().min(1e12) as u64
    } else {
        0
    }
}

impl Extent {
    /// The larger of each size.
    #[must_use]
    pub fn max(self, o: Extent) -> Extent {
        Extent {
            tp: self.tp.max(o.tp),
            pp: self.pp.max(o.pp),
            cp: self.cp.max(o.cp),
            ep: self.ep.max(o.ep),
            chips: self.chips.max(o.chips),
            seq_len: self.seq_len.max(o.seq_len),
            mfu_bp: self.mfu_bp.max(o.mfu_bp),
        }
    }

    /// What of `x` lies beyond this envelope, as `name value > largest fitted`.
    #[must_use]
    pub fn beyond(&self, x: &Extent) -> Vec<String> {
        [
            ("tp", x.tp, self.tp),
            ("pp", x.pp, self.pp),
            ("cp", x.cp, self.cp),
            ("ep", x.ep, self.ep),
            ("chips", x.chips, self.chips),
            ("seq", x.seq_len, self.seq_len),
        ]
        .into_iter()
        .filter(|(_, v, max)| v > max)
        .map(|(n, v, max)| format!("{n} {v} > {max}"))
        .chain((self.mfu_bp > 0 && x.mfu_bp > self.mfu_bp).then(|| {
            format!(
                "MFU {:.1}% > {:.1}% (best fitted + rms error)",
                x.mfu_bp as f64 / 100.0,
                self.mfu_bp as f64 / 100.0
            )
        }))
        .collect()
    }
}

/// The fit of one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFit {
    /// Runs fitted.
    pub runs: usize,
    /// Root-mean-square relative error of the fitted runs.
    pub rms_relative_error: f64,
    /// Largest absolute relative error.
    pub max_relative_error: f64,
    /// The fitted parameters.
    pub efficiency: Efficiency,
    /// One-sigma uncertainty of each θ component (`1/efficiency`, µs, exposure), by name.
    pub theta_sigma: BTreeMap<String, f64>,
    /// Parameters held at a physical bound.
    #[serde(default)]
    pub at_bound: Vec<String>,
    /// Root-mean-square relative error of this fit's runs when each study is predicted by a fit
    /// made without it: the error to expect on a new study (absent when the fit has one study).
    #[serde(default)]
    pub held_out_rms_error: Option<f64>,
    /// The largest layout sizes and scale among the fitted runs.
    #[serde(default)]
    pub envelope: Option<Extent>,
    /// Chips with a fitted run; another chip of the group borrows the fit unmeasured.
    #[serde(default)]
    pub chips: Vec<String>,
    /// Studies (validation files) the fitted runs come from.
    #[serde(default)]
    pub studies: usize,
}

/// A set of group fits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// File format version.
    pub schema_version: u32,
    /// What produced it.
    pub generated_by: String,
    /// The residual noise assumed in the fit.
    pub residual_sigma: f64,
    /// Fits by group, family or `global`.
    pub groups: BTreeMap<String, GroupFit>,
}

const SHIPPED: &str = include_str!("calibration.toml");

/// Studies a family fit needs before it stands in for a group without runs.
pub const MIN_FAMILY_STUDIES: usize = 2;
/// Runs a group fit needs before it is used for its chips; with fewer, the family's or the
/// global fit stands in (a single run, e.g. one MoE run for a whole generation, carries its
/// unmodelled costs into every prediction: B200 predicted from the one GB200 DeepSeek-V3 run
/// was 40% off).
pub const MIN_GROUP_RUNS: usize = 3;

impl Calibration {
    /// The calibration shipped with xpusim, fitted to the published runs in `tests/data/validation`.
    ///
    /// # Errors
    /// Only if the embedded file is broken, which the tests rule out.
    pub fn shipped() -> Result<Self> {
        parse_toml("<built-in>/calibration.toml", SHIPPED)
    }

    /// No fitted parameters: every chip uses [`Efficiency::PRIOR`].
    #[must_use]
    pub fn prior() -> Self {
        Self {
            schema_version: 1,
            generated_by: "prior".into(),
            residual_sigma: RESIDUAL_SIGMA,
            groups: BTreeMap::new(),
        }
    }

    /// Read a calibration file written by `xpusim calibrate`.
    ///
    /// # Errors
    /// I/O and parse errors naming the file and key.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_toml_str(&path.display().to_string(), &read_file(path)?)
    }

    /// Parse and check a calibration from TOML text (`file` names it in errors): schema version
    /// 1, every efficiency inside the bounds the fit enforces.
    ///
    /// ```
    /// let text = xpusim::Calibration::shipped()?.to_toml()?;
    /// assert!(xpusim::Calibration::from_toml_str("cal.toml", &text).is_ok());
    /// let bad = text.replacen("schema_version = 1", "schema_version = 2", 1);
    /// assert!(xpusim::Calibration::from_toml_str("cal.toml", &bad).is_err());
    /// # Ok::<(), xpusim::Error>(())
    /// ```
    ///
    /// # Errors
    /// Parse errors and every value out of range, naming `file` and the key.
    pub fn from_toml_str(file: &str, text: &str) -> Result<Self> {
        let c: Self = parse_toml(file, text)?;
        let mut problems = Vec::new();
        if c.schema_version != 1 {
            problems.push(crate::error::Problem::new(
                "schema_version",
                format!(
                    "unsupported version {}; this xpusim reads version 1",
                    c.schema_version
                ),
            ));
        }
        if !(c.residual_sigma.is_finite() && c.residual_sigma > 0.0 && c.residual_sigma < 10.0) {
            problems.push(crate::error::Problem::new(
                "residual_sigma",
                format!("must be in (0, 10), got {}", c.residual_sigma),
            ));
        }
        for (name, g) in &c.groups {
            let theta = g.efficiency.to_theta();
            for (i, (lo, hi)) in BOUNDS.iter().enumerate() {
                let t = theta[i];
                if !(t.is_finite() && t >= *lo && t <= *hi) {
                    let value = match PARAM_NAMES[i] {
                        "kernel_overhead_us" => g.efficiency.kernel_overhead_us,
                        "moe_fixed_us" => g.efficiency.moe_fixed_us,
                        "overlap_exposure" => g.efficiency.overlap_exposure,
                        "latency_scale" => g.efficiency.latency_scale,
                        _ => 1.0 / t,
                    };
                    let range = match PARAM_NAMES[i] {
                        "kernel_overhead_us" | "overlap_exposure" | "latency_scale"
                        | "moe_fixed_us" => {
                            format!("{lo} to {hi}")
                        }
                        _ => format!("{} to {}", 1.0 / hi, 1.0 / lo),
                    };
                    problems.push(crate::error::Problem::new(
                        format!("groups.{name}.efficiency.{}", PARAM_NAMES[i]),
                        format!("must be between {range}, got {value}"),
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(Error::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }

    /// TOML text of this calibration.
    ///
    /// # Errors
    /// Serialisation errors (not expected).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Fit {
            reason: e.to_string(),
        })
    }

    /// The parameters for a chip and the name of the fit used.
    #[must_use]
    pub fn for_chip(&self, chip: &Chip) -> (String, Efficiency) {
        self.for_group(&chip.calibration_group, &chip.family)
    }

    /// The efficiencies for a calibration group and family: the group's fit when it has at
    /// least [`MIN_GROUP_RUNS`] runs, else the family's when it rests on at least
    /// [`MIN_FAMILY_STUDIES`] studies, else the global one, else the
    /// prior; with the name of the fit used. A family fit from one study transfers worse than
    /// the global fit: TPU v5 predicted from the one TPU v6e study was 32% off, from the
    /// global fit 23%.
    #[must_use]
    pub fn for_group(&self, group: &str, family: &str) -> (String, Efficiency) {
        if let Some(g) = self.groups.get(group) {
            // Files written before studies were recorded say 0: trusted as before.
            if g.studies == 0 || g.runs >= MIN_GROUP_RUNS {
                return (group.to_string(), g.efficiency);
            }
        }
        if let Some(g) = self.groups.get(family) {
            // Files written before studies were recorded say 0: trusted as before.
            if g.studies == 0 || g.studies >= MIN_FAMILY_STUDIES {
                return (family.to_string(), g.efficiency);
            }
        }
        if let Some(g) = self.groups.get("global") {
            return ("global".to_string(), g.efficiency);
        }
        ("prior".to_string(), Efficiency::PRIOR)
    }
}

impl Calibration {
    /// The envelope of the fit named `group` (see [`GroupFit::envelope`]).
    #[must_use]
    pub fn envelope(&self, group: &str) -> Option<Extent> {
        self.groups.get(group).and_then(|g| g.envelope)
    }

    /// The held-out error of the fit named `group` (see [`GroupFit::held_out_rms_error`]).
    #[must_use]
    pub fn expected_error(&self, group: &str) -> Option<f64> {
        self.groups.get(group).and_then(|g| g.held_out_rms_error)
    }

    /// Whether the fit named `group` was made from runs of `chip` (fits written before chips were
    /// recorded say nothing, and count as measured).
    #[must_use]
    pub fn measured(&self, group: &str, chip: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.chips.is_empty() || g.chips.iter().any(|c| c == chip))
    }
}

/// Fit one set of runs.
///
/// # Errors
/// [`Error::Fit`] when there are no runs or the normal matrix is singular.
pub fn fit_group(runs: &[&Sample]) -> Result<GroupFit> {
    if runs.is_empty() {
        return Err(Error::Fit {
            reason: "no runs to fit".into(),
        });
    }
    let Solution {
        mut theta,
        mut fixed,
        mut cov,
    } = solve(runs, [None; PARAMS])?;
    // A matmul format no run informs keeps its prior only in proportion to its fitted sibling:
    // it moves from its prior by the same factor as the format the runs do inform. With no
    // low-precision run, FP8/FP4 matmuls reach PRIOR.matmul_low / PRIOR.matmul of the fitted
    // BF16 fraction (Trainium's FP8 prior of 65% above its fitted BF16 50% made FP8 faster than
    // BF16 on Trn1, whose two peaks are equal); with only FP8 runs, BF16 matmuls reach the
    // inverse ratio of the fitted FP8 fraction (Blackwell's published runs are FP8; its BF16
    // prior of 80% stood beside a fitted FP8 49%). The priors' ratio, 0.81, is the one Hopper,
    // the group fitted on both, shows (0.49 / 0.62).
    let any_low = runs.iter().any(|r| r.terms.low_precision_matmul());
    let any_bf16 = runs.iter().any(|r| !r.terms.low_precision_matmul());
    let index = |name: &str| PARAM_NAMES.iter().position(|n| *n == name);
    let prior = Efficiency::PRIOR;
    // The tie moves with the sibling it follows, so hold it and refit until both agree.
    let mut tied: Option<usize> = None;
    for _ in 0..MAX_TIE_REFITS {
        let fitted = Efficiency::from_theta(&theta);
        let target = match (any_bf16, any_low) {
            (true, false) => (
                "matmul_low",
                Efficiency {
                    matmul_low: prior.matmul_low * fitted.matmul / prior.matmul,
                    ..fitted
                },
            ),
            (false, true) => (
                "matmul",
                Efficiency {
                    matmul: (prior.matmul * fitted.matmul_low / prior.matmul_low).min(1.0),
                    ..fitted
                },
            ),
            _ => break,
        };
        let Some(i) = index(target.0) else { break };
        let v = target.1.to_theta()[i];
        if tied == Some(i) && (v - theta[i]).abs() <= 1e-12 * v.abs() {
            break;
        }
        tied = Some(i);
        let mut hold = [None; PARAMS];
        hold[i] = Some(v);
        Solution { theta, fixed, cov } = solve(runs, hold)?;
    }
    // The attention kernel's matmuls run no faster than the chip's BF16 GEMMs: its softmax,
    // masking and rescaling sit between them (FlashAttention-2/3 reach 50-75% of peak where
    // GEMMs reach 80%+). A fit that puts attention above the fitted BF16 fraction, which
    // happens where short sequences leave it barely informed, is held to it. Not where every
    // run prices the softmax's exponentials: the efficiency is then that of the serial
    // matmul-plus-exponential time, which a kernel that hides part of the exponentials beats
    // (FlashAttention-3 on H100: 661 TFLOP/s, 67% of BF16 peak, with exponentials that alone
    // take half the matmuls' time; Shah et al. 2024, Table 3).
    let fitted = Efficiency::from_theta(&theta);
    let softmax_priced = runs.iter().all(|r| r.terms.softmax_priced());
    if fitted.attention > fitted.matmul && !softmax_priced {
        theta = Efficiency {
            attention: fitted.matmul,
            ..fitted
        }
        .to_theta();
    }
    // Likewise the MoE fixed cost: without an MoE run its coefficient is zero in every row, so
    // the normal equations already return the prior; hold it there explicitly.
    if !runs.iter().any(|r| r.terms.has_moe_layers()) {
        theta = Efficiency {
            moe_fixed_us: Efficiency::PRIOR.moe_fixed_us,
            ..Efficiency::from_theta(&theta)
        }
        .to_theta();
    }
    let errors: Vec<f64> = runs
        .iter()
        .map(|r| r.terms.linear_at(&theta).at(&theta) / r.measured.seconds() - 1.0)
        .collect();
    let rms = (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt();
    let max = errors.iter().fold(0.0_f64, |m, e| m.max(e.abs()));
    Ok(GroupFit {
        runs: runs.len(),
        rms_relative_error: rms,
        max_relative_error: max,
        efficiency: Efficiency::from_theta(&theta),
        theta_sigma: PARAM_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let sigma = |i: usize| cov[(i, i)].max(0.0).sqrt();
                let value = match (fixed[i], tied) {
                    // A tied format is as uncertain, relatively, as the sibling it follows.
                    (Some(_), Some(t)) if t == i => {
                        let sibling = if *n == "matmul" {
                            index("matmul_low")
                        } else {
                            index("matmul")
                        };
                        sibling.map_or(0.0, |j| sigma(j) * theta[i] / theta[j])
                    }
                    (Some(_), _) => 0.0,
                    _ => sigma(i),
                };
                (n.to_string(), value)
            })
            .collect(),
        held_out_rms_error: None,
        // The best measured MFU, widened by the fit's rms error: a prediction above it is
        // beyond anything the family has shown.
        envelope: runs
            .iter()
            .map(|r| r.extent)
            .reduce(Extent::max)
            .map(|e| Extent {
                mfu_bp: (e.mfu_bp as f64 * (1.0 + rms)).round() as u64,
                ..e
            }),
        at_bound: PARAM_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| fixed[*i].is_some() && tied != Some(*i))
            .map(|(_, n)| n.to_string())
            .collect(),
        chips: runs
            .iter()
            .map(|r| r.chip.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        studies: runs
            .iter()
            .map(|r| r.study.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    })
}

/// A solution of the regularised least-squares fit.
struct Solution {
    /// The parameters.
    theta: [f64; PARAMS],
    /// The parameters held: those asked for and those the fit pushed to a bound.
    fixed: [Option<f64>; PARAMS],
    /// θ's covariance (the inverse of the normal matrix).
    cov: DMatrix<f64>,
}

/// The regularised least-squares fit of θ to `runs`, with the parameters in `fixed` held.
fn solve(runs: &[&Sample], fixed: [Option<f64>; PARAMS]) -> Result<Solution> {
    let prior = Efficiency::PRIOR.to_theta();
    let sigma_p = Efficiency::PRIOR_SIGMA;
    let w = 1.0 / (RESIDUAL_SIGMA * RESIDUAL_SIGMA);
    let mut theta = prior;
    let mut fixed = fixed;
    let mut cov = DMatrix::<f64>::zeros(PARAMS, PARAMS);
    for _ in 0..50 {
        let mut lhs = DMatrix::<f64>::zeros(PARAMS, PARAMS);
        let mut rhs = DVector::<f64>::zeros(PARAMS);
        for r in runs {
            let a = r.terms.linear_at(&theta).0;
            let t = r.measured.seconds();
            // Huber weight (iteratively reweighted least squares): a run whose relative error
            // exceeds HUBER_K residual sigmas counts linearly, not quadratically, so one
            // atypical study (a different software stack) cannot drag a family's fit.
            let residual = Terms(a).at(&theta) / t - 1.0;
            let limit = HUBER_K * RESIDUAL_SIGMA;
            let huber = if residual.abs() <= limit {
                1.0
            } else {
                limit / residual.abs()
            };
            let w = w * huber;
            // Fixed parameters move to the right-hand side.
            let mut row = [0.0; PARAMS];
            let mut target = 1.0;
            for i in 0..PARAMS {
                match fixed[i] {
                    Some(v) => target -= a[i] / t * v,
                    None => row[i] = a[i] / t,
                }
            }
            for i in 0..PARAMS {
                rhs[i] += w * row[i] * target;
                for j in 0..PARAMS {
                    lhs[(i, j)] += w * row[i] * row[j];
                }
            }
        }
        for i in 0..PARAMS {
            match fixed[i] {
                Some(v) => {
                    lhs[(i, i)] = 1.0;
                    rhs[i] = v;
                    for j in 0..PARAMS {
                        if j != i {
                            lhs[(i, j)] = 0.0;
                            lhs[(j, i)] = 0.0;
                        }
                    }
                }
                None => {
                    let p = 1.0 / (sigma_p[i] * sigma_p[i]);
                    lhs[(i, i)] += p;
                    rhs[i] += p * prior[i];
                }
            }
        }
        let chol = lhs.clone().cholesky().ok_or_else(|| Error::Fit {
            reason: "normal matrix is not positive definite".into(),
        })?;
        let sol = chol.solve(&rhs);
        cov = chol.inverse();
        let mut next = [0.0; PARAMS];
        let mut newly_fixed = false;
        for i in 0..PARAMS {
            next[i] = sol[i];
            let (lo, hi) = BOUNDS[i];
            if fixed[i].is_none() && (sol[i] < lo || sol[i] > hi) {
                fixed[i] = Some(sol[i].clamp(lo, hi));
                next[i] = sol[i].clamp(lo, hi);
                newly_fixed = true;
            }
        }
        let change = next
            .iter()
            .zip(&theta)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-9))
            .fold(0.0, f64::max);
        theta = next;
        if !newly_fixed && change < 1e-10 {
            break;
        }
    }
    Ok(Solution { theta, fixed, cov })
}

/// Fit every calibration group, family and the global pool present in `runs`.
///
/// # Errors
/// [`Error::Fit`] when there are no runs.
pub fn fit(runs: &[Sample], generated_by: &str) -> Result<Calibration> {
    let mut cal = fit_groups(runs, generated_by)?;
    // Leave-one-study-out: predict each study with the groups fitted without it.
    let mut studies: Vec<&str> = Vec::new();
    for r in runs {
        if !studies.contains(&r.study.as_str()) {
            studies.push(&r.study);
        }
    }
    let mut errors: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if studies.len() > 1 {
        for study in &studies {
            let train: Vec<Sample> = runs.iter().filter(|r| r.study != *study).cloned().collect();
            let held = fit_groups(&train, "held-out")?;
            for r in runs.iter().filter(|r| r.study == *study) {
                let (_, eff) = held.for_group(&r.group, &r.family);
                let e = r.terms.breakdown(&eff.to_theta()).step / r.measured - 1.0;
                for key in [r.group.as_str(), r.family.as_str(), "global"] {
                    errors.entry(key.to_string()).or_default().push(e);
                }
            }
        }
    }
    for (key, g) in &mut cal.groups {
        let studies_in_fit = runs
            .iter()
            .filter(|r| key == "global" || r.group == *key || r.family == *key)
            .map(|r| r.study.as_str())
            .fold(Vec::new(), |mut v: Vec<&str>, f| {
                if !v.contains(&f) {
                    v.push(f);
                }
                v
            });
        g.held_out_rms_error = match errors.get(key) {
            Some(e) if studies_in_fit.len() > 1 => {
                Some((e.iter().map(|x| x * x).sum::<f64>() / e.len() as f64).sqrt())
            }
            _ => None,
        };
    }
    Ok(cal)
}

/// Fit every group, family and the global pool (no cross-validation).
fn fit_groups(runs: &[Sample], generated_by: &str) -> Result<Calibration> {
    if runs.is_empty() {
        return Err(Error::Fit {
            reason: "no runs to fit".into(),
        });
    }
    let mut keys: Vec<String> = Vec::new();
    for r in runs {
        for k in [&r.group, &r.family] {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let mut groups = BTreeMap::new();
    for k in keys {
        let sel: Vec<&Sample> = runs
            .iter()
            .filter(|r| r.group == k || r.family == k)
            .collect();
        groups.insert(k, fit_group(&sel)?);
    }
    let all: Vec<&Sample> = runs.iter().collect();
    groups.insert("global".into(), fit_group(&all)?);
    Ok(Calibration {
        schema_version: 1,
        generated_by: generated_by.to_string(),
        residual_sigma: RESIDUAL_SIGMA,
        groups,
    })
}
