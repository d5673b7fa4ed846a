//! The one entry to the model: a validated [`Job`] is estimated with a given layout
//! ([`estimate`]) or searched for the best layout ([`search`]); both give an [`Estimate`].
//! [`run`] does whichever a resolved [`LayoutChoice`] asks for.
//!
//! ```
//! use xpusim::prelude::*;
//! let catalog = Catalog::builtin()?;
//! let model = xpusim::preset("llama3-8b")?;
//! let cluster = ClusterRequest { hardware: "h100".into(), chips: Some(64), ..Default::default() }
//!     .resolve("", &catalog).map_err(|problems| Error::Input { problems })?;
//! let setup = SetupRequest { global_batch: Some(512), tokens: Some(1e12), ..Default::default() }
//!     .resolve("", &model).map_err(|problems| Error::Input { problems })?;
//! let job = Job::new(model, setup, cluster);
//! let found = search(&job, &LayoutConstraints::default(), &Calibration::shipped()?)?;
//! assert!(found.best.prediction.fits_memory);
//! assert!(found.runner_ups.iter().all(|r| r.prediction.step_time >= found.best.prediction.step_time));
//! // The same layout, estimated directly, gives the same answer.
//! let again = estimate(&job, &found.best.layout, &Calibration::shipped()?)?;
//! assert_eq!(again.prediction.step_time, found.best.prediction.step_time);
//! # Ok::<(), xpusim::Error>(())
//! ```

use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::hardware::Cluster;
use crate::parallelism::{Layout, LayoutConstraints};
use crate::perf::{
    evaluate, memory_band, step_if_fits, Efficiency, Machine, MemoryBand, Prediction, Shape,
};
use crate::request::LayoutChoice;
use crate::sweep::{candidates, SearchSpace};
use crate::units::{Bytes, Flops, Seconds};
use crate::workload::{Model, TrainingSetup};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Runner-ups a search keeps by default ([`SearchSpace::runner_ups`]).
pub const RUNNER_UPS: usize = 5;

/// A validated training job: the model, the setup and the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    model: Model,
    setup: TrainingSetup,
    cluster: Cluster,
}

impl Job {
    /// A job from its validated parts.
    #[must_use]
    pub fn new(model: Model, setup: TrainingSetup, cluster: Cluster) -> Self {
        Self {
            model,
            setup,
            cluster,
        }
    }
    /// The model.
    #[must_use]
    pub fn model(&self) -> &Model {
        &self.model
    }
    /// The training setup.
    #[must_use]
    pub fn setup(&self) -> &TrainingSetup {
        &self.setup
    }
    /// The cluster.
    #[must_use]
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

/// Whether a configuration can run: infeasibility is a result, not an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Feasibility {
    /// Fits in memory.
    Feasible,
    /// Does not fit; the reason says by how much.
    Infeasible(String),
}

/// The estimate of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Chip id.
    pub chip: String,
    /// System id.
    pub system: String,
    /// Chips.
    pub chips: u64,
    /// Model id.
    pub model: String,
    /// Layout.
    pub layout: Layout,
    /// Calibration fit used.
    pub calibration_group: String,
    /// Whether that fit is not the chip's own group (a family, global or prior stand-in).
    pub calibration_fallback: bool,
    /// Whether the fit saw a run of this chip (false: it borrows a sibling's, e.g. GB300 from
    /// B200 runs, and the expected error is widened to at least 25%).
    pub chip_measured: bool,
    /// Relative step-time error to expect (rms over the fit's studies, each predicted without
    /// itself), when the calibration knows it.
    pub expected_error: Option<f64>,
    /// Efficiency parameters applied.
    pub efficiency: Efficiency,
    /// What of this configuration lies beyond every run the fit was made from (`cp 8 > 4`):
    /// the prediction extrapolates there. Empty inside the envelope.
    #[serde(default)]
    pub extrapolation: Vec<String>,
    /// Memory feasibility.
    pub feasibility: Feasibility,
    /// Step prediction.
    pub prediction: Prediction,
    /// Optimizer steps to train the tokens.
    pub steps: f64,
    /// Wall-clock time to train (no failures).
    pub train_time: Seconds,
    /// Chip-hours.
    pub chip_hours: f64,
    /// Model FLOPs per token (exact count).
    pub flops_per_token: Flops,
    /// The 6·N approximation per token, for comparison.
    pub six_n_flops_per_token: Flops,
}

/// The result of a layout search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Search {
    /// The fastest layout that fits.
    pub best: Estimate,
    /// The next fastest layouts that fit, fastest first (at most [`SearchSpace::runner_ups`]).
    pub runner_ups: Vec<Estimate>,
    /// Valid layouts evaluated.
    pub considered: usize,
    /// Of those, layouts whose memory is accepted: they fit, or are tight (ranked after those that
    /// fit).
    pub fitting: usize,
}

/// What [`run`] did: an estimate, with the search's record when the layout was searched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The estimate (the search's best when searched).
    pub estimate: Estimate,
    /// The search, when the layout was searched.
    pub search: Option<Search>,
}

/// Step-time error to expect on a chip no fitted run measured: the held-out error of a chip
/// family predicted by fits that never saw it (`validate --holdout`, each family one study:
/// TPU v5 23.4% and Trainium 25.8% when this was set; 19.7% and 26.0% with today's model).
pub const UNMEASURED_CHIP_ERROR: f64 = 0.25;

/// The calibration's efficiencies for the job's chip, and what they are.
struct Fit {
    envelope: Option<crate::calibration::Extent>,
    group: String,
    fallback: bool,
    measured: bool,
    expected_error: Option<f64>,
    efficiency: Efficiency,
}

fn fit_for(cluster: &Cluster, calibration: &Calibration) -> Fit {
    let (group, efficiency) = calibration.for_chip(&cluster.chip);
    let fallback = group != cluster.chip.calibration_group;
    let measured = !fallback && calibration.measured(&group, &cluster.chip.id);
    let expected_error = calibration.expected_error(&group);
    Fit {
        envelope: calibration.envelope(&group),
        fallback,
        measured,
        expected_error: if measured {
            expected_error
        } else {
            Some(expected_error.map_or(UNMEASURED_CHIP_ERROR, |e| e.max(UNMEASURED_CHIP_ERROR)))
        },
        group,
        efficiency,
    }
}

fn assemble(
    job: &Job,
    layout: Layout,
    prediction: Prediction,
    fit: &Fit,
    machine: &Machine,
) -> Estimate {
    let Job {
        model,
        setup,
        cluster,
    } = job;
    let m = &prediction.memory;
    let host_full = m.offloaded > crate::units::Bytes::ZERO
        && machine.host_memory.is_none_or(|h| m.offloaded > h);
    let feasibility = if prediction.fits_memory {
        Feasibility::Feasible
    } else if host_full {
        Feasibility::Infeasible(format!(
            "offloads {:.1} GB of activations per chip but {} has {:.1} GB of host memory per chip",
            m.offloaded.gb(),
            cluster.system.id,
            machine.host_memory.map_or(0.0, |h| h.gb())
        ))
    } else {
        Feasibility::Infeasible(format!(
            "needs {:.1} GB per chip (weights {:.1}, gradients {:.1}, optimizer {:.1}, activations {:.1}, buffers {:.1}) but {} has {:.1} GB of HBM",
            m.total().gb(),
            m.weights.gb(),
            m.gradients.gb(),
            m.optimizer.gb(),
            m.activations.gb(),
            m.buffers.gb(),
            cluster.chip.id,
            machine.hbm_capacity.gb()
        ))
    };
    let steps = setup.tokens / setup.tokens_per_step();
    let train_time = prediction.step_time * steps;
    Estimate {
        chip: cluster.chip.id.clone(),
        system: cluster.system.id.clone(),
        chips: cluster.chips,
        model: model.id.clone(),
        layout,
        calibration_group: fit.group.clone(),
        calibration_fallback: fit.fallback,
        chip_measured: fit.measured,
        expected_error: fit.expected_error,
        efficiency: fit.efficiency,
        extrapolation: fit.envelope.map_or_else(Vec::new, |env| {
            env.beyond(&crate::calibration::Extent {
                tp: layout.tp.into(),
                pp: layout.pp.into(),
                cp: layout.cp.into(),
                ep: layout.ep.into(),
                chips: cluster.chips,
                seq_len: setup.seq_len,
                mfu_bp: crate::calibration::basis_points(prediction.mfu),
            })
        }),
        feasibility,
        prediction,
        steps,
        train_time,
        chip_hours: train_time.hours() * cluster.chips as f64,
        flops_per_token: model.training_flops_per_token(setup.seq_len),
        six_n_flops_per_token: model.six_n_flops_per_token(),
    }
}

fn machine(job: &Job) -> Result<Machine> {
    let m = Machine::new(&job.cluster, job.setup.precision)
        .map_err(|e| Error::input("precision", e.to_string()))?;
    if job.setup.offload_activations() > 0.0
        && (m.host_bandwidth.is_none() || m.host_memory.is_none())
    {
        return Err(Error::input(
            "offload_activations",
            format!(
                "system `{}` publishes no host-memory and host-link figures to offload to; add \
                 host_memory_per_chip and host_link_bandwidth to it in a catalog file",
                job.cluster.system.id
            ),
        ));
    }
    Ok(m)
}

/// Estimate the job with one layout (checked against the job first).
///
/// # Errors
/// [`Error::Input`] listing every rule the layout breaks on this job (a tensor-parallel group
/// spanning scale-up domains is allowed here: the layout was made by the caller), or a number
/// format the chip lacks.
pub fn estimate(job: &Job, layout: &Layout, calibration: &Calibration) -> Result<Estimate> {
    let problems = layout.check(&job.model, &job.cluster, &job.setup, true, "layout");
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    let machine = machine(job)?;
    let fit = fit_for(&job.cluster, calibration);
    let prediction =
        evaluate(&Shape::new(&job.model, &job.setup, layout), &machine).predict(&fit.efficiency);
    Ok(assemble(job, *layout, prediction, &fit, &machine))
}

/// Search every valid layout that agrees with `pinned` (in parallel; deterministic at any thread
/// count) and return the fastest that fits in memory, with its runner-ups.
///
/// Besides the candidates of the search space, each full-recompute layout that fits
/// where the same layout keeping every activation does not gets a sibling recomputing only the
/// fewest layers per pipeline chunk that fit as well (Megatron's block method; found by
/// bisection on the memory model), unless `pinned` fixes `recompute_layers`.
///
/// # Errors
/// [`Error::Input`] when no layout is valid or none fits (saying by how much the smallest misses).
pub fn search(job: &Job, pinned: &LayoutConstraints, calibration: &Calibration) -> Result<Search> {
    search_in(job, pinned, calibration, &SearchSpace::default())
}

/// [`search`] within explicit limits.
///
/// # Errors
/// As [`search`].
pub fn search_in(
    job: &Job,
    pinned: &LayoutConstraints,
    calibration: &Calibration,
    space: &SearchSpace,
) -> Result<Search> {
    let layouts = candidates(&job.model, &job.cluster, &job.setup, pinned, space);
    if layouts.is_empty() {
        return Err(Error::input(
            "layout",
            format!(
                "no valid layout of {} chips for {} with a global batch of {} sequences{} (dp x microbatch must divide the batch; try another batch or chip count)",
                job.cluster.chips,
                job.model.id,
                job.setup.global_batch,
                if *pinned == LayoutConstraints::default() { "" } else { " and the pinned knobs" }
            ),
        ));
    }
    let machine = machine(job)?;
    let fit = fit_for(&job.cluster, calibration);
    // The model- and setup-dependent part of the step inputs is computed once; each candidate
    // only places its layout.
    let base = Shape::unplaced(&job.model, &job.setup);
    let theta = fit.efficiency.to_theta();
    // Rank by step time without building full predictions; only the winners get one.
    let mut ranked: Vec<(Bytes, MemoryBand, Option<f64>)> = layouts
        .par_iter()
        .map(|l| step_if_fits(&base.place(l), &machine, &theta))
        .collect();
    // Full recompute of a block of layers: where keeping every activation does not fit as well
    // as full recompute does, the fewest recomputed layers per chunk that do (the fastest such
    // block: recompute time grows and memory falls with the block), after every other candidate.
    let mut layouts = layouts;
    if pinned.recompute_layers.is_none() {
        let bands: Vec<MemoryBand> = ranked.iter().map(|r| r.1).collect();
        let blocks = block_layouts(job, &base, &machine, &layouts, &bands);
        let block_ranks: Vec<(Bytes, MemoryBand, Option<f64>)> = blocks
            .par_iter()
            .map(|l| step_if_fits(&base.place(l), &machine, &theta))
            .collect();
        layouts.extend(blocks);
        ranked.extend(block_ranks);
    }
    // Feasible layouts, those that fit before the tight ones (over HBM by less than the
    // memory model's error), each by step time; ties keep the candidates' order (a stable sort).
    let mut order: Vec<(usize, MemoryBand, f64)> = ranked
        .iter()
        .enumerate()
        .filter_map(|(i, (_, band, s))| s.map(|s| (i, *band, s)))
        .collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)));
    let Some(&(best, ..)) = order.first() else {
        let least = ranked
            .iter()
            .map(|(m, ..)| m.gb())
            .fold(f64::INFINITY, f64::min);
        return Err(Error::input(
            "layout",
            format!(
                "none of {} layouts fits in memory: the smallest needs {least:.1} GB per chip, {} has {:.1} GB",
                layouts.len(),
                job.cluster.chip.id,
                machine.hbm_capacity.gb()
            ),
        ));
    };
    let make = |i: usize| {
        let p = evaluate(&base.place(&layouts[i]), &machine).predict(&fit.efficiency);
        assemble(job, layouts[i], p, &fit, &machine)
    };
    Ok(Search {
        best: make(best),
        runner_ups: order
            .iter()
            .skip(1)
            .take(space.runner_ups)
            .map(|&(i, ..)| make(i))
            .collect(),
        considered: layouts.len(),
        fitting: order.len(),
    })
}

/// The block-recompute layouts a search adds to its candidates `layouts` (of memory bands
/// `bands`): [`smallest_block`] of each, in the candidates' order.
fn block_layouts(
    job: &Job,
    base: &Shape,
    machine: &Machine,
    layouts: &[Layout],
    bands: &[MemoryBand],
) -> Vec<Layout> {
    layouts
        .par_iter()
        .zip(bands)
        .filter_map(|(l, band)| smallest_block(l, *band, job, base, machine))
        .collect()
}

/// For a full-recompute candidate whose memory band is feasible and better than that of the
/// same layout keeping every activation, the block layout recomputing the fewest layers per
/// pipeline chunk (1 to one fewer than the largest chunk) whose band is as good as full
/// recompute's, found by bisection on the memory model alone (memory falls as the block grows).
/// `None` for any other candidate, or when no such block exists.
fn smallest_block(
    l: &Layout,
    full_band: MemoryBand,
    job: &Job,
    base: &Shape,
    machine: &Machine,
) -> Option<Layout> {
    use crate::parallelism::{max_chunk_layers, Recompute};
    if l.recompute != Recompute::Full || l.recompute_layers.is_some() || !full_band.feasible() {
        return None;
    }
    let band_of = |r: Recompute, n: Option<u32>| {
        let mut b = *l;
        b.recompute = r;
        b.recompute_layers = n;
        (b, memory_band(&base.place(&b), machine))
    };
    if band_of(Recompute::None, None).1 <= full_band {
        return None;
    }
    let most = max_chunk_layers(u64::from(job.model.layers), l, &job.setup);
    let top = u32::try_from(most.saturating_sub(1)).ok()?;
    if top == 0 {
        return None;
    }
    let (fits_top, band_top) = band_of(Recompute::Full, Some(top));
    if band_top > full_band {
        return None;
    }
    // Invariant: `hi` is as good as full recompute; below `lo` it is not known to be.
    let (mut lo, mut hi, mut best) = (1u32, top, fits_top);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (b, band) = band_of(Recompute::Full, Some(mid));
        if band <= full_band {
            hi = mid;
            best = b;
        } else {
            lo = mid + 1;
        }
    }
    Some(best)
}

impl From<Search> for Answer {
    /// A search's answer: its best estimate, with the search kept beside it.
    fn from(s: Search) -> Self {
        Self {
            estimate: s.best.clone(),
            search: Some(s),
        }
    }
}

/// Estimate the job as the resolved layout request asks: place a fixed layout, or search.
///
/// # Errors
/// As [`estimate`] and [`search`]; a fixed layout's problems are keyed under `layout.`.
pub fn run(job: &Job, choice: &LayoutChoice, calibration: &Calibration) -> Result<Answer> {
    run_in(job, choice, calibration, &SearchSpace::default())
}

/// [`run`] with a search's limits (how many runner-ups, which knobs).
///
/// # Errors
/// As [`run`].
pub fn run_in(
    job: &Job,
    choice: &LayoutChoice,
    calibration: &Calibration,
    space: &SearchSpace,
) -> Result<Answer> {
    match choice {
        LayoutChoice::Fixed(c) => {
            let layout = LayoutChoice::fixed(c, "layout", &job.model, &job.cluster, &job.setup)?;
            Ok(Answer {
                estimate: estimate(job, &layout, calibration)?,
                search: None,
            })
        }
        LayoutChoice::Search(c) => search_in(job, c, calibration, space).map(Answer::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;
    use crate::request::{ClusterRequest, SetupRequest};

    /// Every candidate layout of the full search space for `job`.
    fn every_layout(job: &Job) -> Vec<Layout> {
        candidates(
            &job.model,
            &job.cluster,
            &job.setup,
            &LayoutConstraints::default(),
            &SearchSpace::default(),
        )
    }

    /// The job of preset `model` on `chips` of `hardware` at a global batch of `gbs`
    /// sequences, everything else at its default.
    fn job(model: &str, hardware: &str, chips: i64, gbs: i64) -> Job {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = crate::workload::preset(model).unwrap_or_else(|e| panic!("{e}"));
        let cluster = ClusterRequest {
            hardware: hardware.into(),
            chips: Some(chips),
            ..Default::default()
        }
        .resolve("", &catalog)
        .unwrap_or_else(|e| panic!("{e:?}"));
        let setup = SetupRequest {
            global_batch: Some(gbs),
            tokens: Some(1e12),
            ..Default::default()
        }
        .resolve("", &model)
        .unwrap_or_else(|e| panic!("{e:?}"));
        Job::new(model, setup, cluster)
    }

    /// The software era changes results: GPT-3 175B on 1,024 A100 (Narayanan et al. 2021's
    /// layout) is predicted markedly slower on the 2021 Megatron-LM stack than on the 2024 one,
    /// and the 2025 stack's logarithmic collectives are never slower than the 2024 rings.
    #[test]
    fn the_software_era_moves_the_prediction() {
        use crate::workload::SoftwareEra;
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
        let model = crate::workload::preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"));
        let cluster = ClusterRequest {
            hardware: "a100-80gb".into(),
            chips: Some(1024),
            ..Default::default()
        }
        .resolve("", &catalog)
        .unwrap_or_else(|e| panic!("{e:?}"));
        let layout = Layout {
            tp: 8,
            pp: 8,
            microbatch: 1,
            recompute: crate::parallelism::Recompute::Full,
            recompute_modules: crate::parallelism::RecomputeModules::EMPTY,
            recompute_layers: None,
            ..Layout::data_parallel(16)
        };
        let step = |era| {
            let setup = SetupRequest {
                global_batch: Some(1536),
                tokens: Some(1e12),
                software: Some(era),
                ..Default::default()
            }
            .resolve("", &model)
            .unwrap_or_else(|e| panic!("{e:?}"));
            let job = Job::new(model.clone(), setup, cluster.clone());
            estimate(&job, &layout, &cal)
                .unwrap_or_else(|e| panic!("{e}"))
                .prediction
                .step_time
                .seconds()
        };
        let (old, modern, next) = (
            step(SoftwareEra::Megatron2021),
            step(SoftwareEra::Mcore2024),
            step(SoftwareEra::Mcore2025),
        );
        assert!(old > 1.1 * modern, "2021 {old} s vs 2024 {modern} s");
        assert!(next <= modern, "2025 {next} s vs 2024 {modern} s");
    }

    /// The search ranks with [`step_if_fits`]; its winner is the fastest full prediction that
    /// fits, with the same step time bit for bit, and its runner-ups follow in order.
    #[test]
    fn ranking_shortcut_equals_full_predictions() {
        let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
        for (preset, hw, chips, gbs) in [
            ("llama3-70b", "h100", 256_i64, 512_i64),
            ("mixtral-8x7b", "trn2", 128, 256),
        ] {
            let job = job(preset, hw, chips, gbs);
            let s =
                search(&job, &LayoutConstraints::default(), &cal).unwrap_or_else(|e| panic!("{e}"));
            let mut all = every_layout(&job);
            // With the block-recompute layouts the search adds.
            let base = Shape::unplaced(&job.model, &job.setup);
            let m = machine(&job).unwrap_or_else(|e| panic!("{e}"));
            let bands: Vec<MemoryBand> = all
                .iter()
                .map(|l| memory_band(&base.place(l), &m))
                .collect();
            let blocks = block_layouts(&job, &base, &m, &all, &bands);
            assert_eq!(s.considered, all.len() + blocks.len(), "{preset}");
            all.extend(blocks);
            let mut full: Vec<(MemoryBand, f64)> = all
                .iter()
                .filter_map(|l| {
                    let p = estimate(&job, l, &cal).ok()?.prediction;
                    p.fits_memory
                        .then_some((p.memory_band, p.step_time.seconds()))
                })
                .collect();
            full.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let full: Vec<f64> = full.into_iter().map(|(_, s)| s).collect();
            let got: Vec<f64> = std::iter::once(&s.best)
                .chain(&s.runner_ups)
                .map(|e| e.prediction.step_time.seconds())
                .collect();
            assert_eq!(s.fitting, full.len(), "{preset}");
            assert_eq!(got, full[..got.len()].to_vec(), "{preset}");
        }
    }

    /// The block the search adds is the smallest that fits as well as full recompute: one
    /// layer fewer does not, and no block is added where keeping every activation fits.
    #[test]
    fn the_added_block_is_the_smallest_that_fits() {
        use crate::parallelism::Recompute;
        let job = job("llama3-405b", "h100-sxm", 1024, 512);
        let all = every_layout(&job);
        let base = Shape::unplaced(&job.model, &job.setup);
        let m = machine(&job).unwrap_or_else(|e| panic!("{e}"));
        let band = |l: &Layout| memory_band(&base.place(l), &m);
        let mut added = 0;
        for l in all.iter().filter(|l| l.recompute == Recompute::Full) {
            let none = Layout {
                recompute: Recompute::None,
                ..*l
            };
            match smallest_block(l, band(l), &job, &base, &m) {
                Some(b) => {
                    added += 1;
                    let n = b.recompute_layers.unwrap_or_else(|| panic!("a block"));
                    assert!(band(&b) <= band(l) && band(&none) > band(l), "{b}");
                    let fewer = Layout {
                        recompute_layers: Some(n - 1),
                        ..b
                    };
                    assert!(n == 1 || band(&fewer) > band(l), "{b}");
                }
                None => assert!(
                    !band(l).feasible() || band(&none) <= band(l) || {
                        // Or not even the largest block short of every layer fits as well.
                        let most = crate::parallelism::max_chunk_layers(
                            u64::from(job.model.layers),
                            l,
                            &job.setup,
                        );
                        most <= 1
                            || band(&Layout {
                                recompute_layers: u32::try_from(most - 1).ok(),
                                ..*l
                            }) > band(l)
                    }
                ),
            }
        }
        assert!(added > 0);
    }

    /// The configurations the property below evaluates.
    const CONFIGURATIONS: usize = 1_000_000;

    /// 10^6 random valid configurations (presets x chips x cluster sizes x batches x sequence
    /// lengths of 1K to 128K x attention kernels x every candidate layout) give finite, positive
    /// results and never more executed FLOP/s per chip than the peak: HFU at most 1, and the
    /// causal MFU at most the HFU, while the full-square MFU passes 1 at long context.
    #[test]
    fn a_million_random_configurations_stay_finite_and_below_peak() {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
        let presets = crate::workload::presets().unwrap_or_else(|e| panic!("{e}"));
        let chips = [
            "h100",
            "a100-80gb",
            "gb300",
            "tpu-v5p",
            "ironwood",
            "trn2",
            "trn3",
            "trn1",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut seen, mut widest) = (0, 0.0_f64);
        while seen < CONFIGURATIONS {
            let model = presets[next(presets.len())].clone();
            let hw = chips[next(chips.len())];
            let n = 1i64 << next(15);
            let Ok(cluster) = (ClusterRequest {
                hardware: hw.into(),
                chips: Some(n * [1, 3, 9][next(3)]),
                ..Default::default()
            })
            .resolve("", &catalog) else {
                continue;
            };
            let Ok(setup) = (SetupRequest {
                global_batch: Some(n * (1 << next(4))),
                seq_len: Some(1 << (10 + next(8))),
                tokens: Some(1e12),
                precision: Some(
                    [
                        crate::hardware::Precision::Bf16,
                        crate::hardware::Precision::Fp8,
                    ][next(2)],
                ),
                attention: Some(
                    [
                        crate::workload::AttentionKernel::Flash,
                        crate::workload::AttentionKernel::Unfused,
                    ][next(2)],
                ),
                // Alternated without drawing, so the sample of the other knobs is unchanged.
                pipeline_split: Some(
                    [
                        crate::workload::PipelineSplit::Even,
                        crate::workload::PipelineSplit::OneFewerAtEnds,
                    ][seen % 2],
                ),
                ..Default::default()
            })
            .resolve("", &model) else {
                continue;
            };
            let job = Job::new(model, setup, cluster);
            let Ok(machine) = machine(&job) else { continue };
            let fit = fit_for(&job.cluster, &cal);
            let layouts = every_layout(&job);
            let base = Shape::unplaced(&job.model, &job.setup);
            for l in &layouts {
                let p = evaluate(&base.place(l), &machine).predict(&fit.efficiency);
                widest = widest.max(p.mfu / p.mfu_causal);
                let what = || format!("{} {hw} x{} {l}", job.model.id, job.cluster.chips);
                assert!(
                    p.step_time.seconds().is_finite() && p.step_time.seconds() > 0.0,
                    "{}",
                    what()
                );
                assert!(
                    p.tokens_per_second.is_finite() && p.tokens_per_second > 0.0,
                    "{}",
                    what()
                );
                assert!(p.memory.total().bytes().is_finite(), "{}", what());
                // Full-square MFU may pass 1 at long context with flash attention; the executed
                // (HFU) and causal conventions may not.
                assert!(p.hfu > 0.0 && p.hfu <= 1.0, "{}: HFU {}", what(), p.hfu);
                assert!(
                    p.mfu_causal > 0.0 && p.mfu_causal <= p.hfu + 1e-12,
                    "{}",
                    what()
                );
                assert!(p.bound_share.is_finite(), "{}", what());
            }
            seen += layouts.len();
        }
        // The sample reaches long contexts, where the full-square convention counts far more
        // attention than the causal one (up to twice as much).
        assert!(widest > 1.5, "largest full-square / causal MFU {widest}");
    }
}
