//! Layout search and parameter sweeps, parallel with rayon.
//!
//! Candidates are generated in a fixed order, evaluated with `par_iter` and collected in input
//! order, then reduced sequentially, so results are bitwise identical at any thread count.

use crate::calibration::Calibration;
use crate::error::{Error, Result};
use crate::hardware::Cluster;
use crate::parallelism::{Layout, Recompute};
use crate::perf::{evaluate, Efficiency, Machine, Prediction, Shape};
use crate::workload::{AttentionKernel, Model, TrainingSetup};
use rayon::prelude::*;

/// Limits of the layout search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSpace {
    /// Micro-batch sizes tried.
    pub microbatches: Vec<u32>,
    /// Recompute policies tried.
    pub recompute: Vec<Recompute>,
    /// ZeRO stages tried.
    pub zero: Vec<u8>,
    /// Largest context-parallel size tried.
    pub max_cp: u32,
    /// Largest number of interleaved stages tried.
    pub max_virtual: u32,
}

impl Default for SearchSpace {
    fn default() -> Self {
        Self {
            microbatches: vec![1, 2, 4],
            recompute: vec![Recompute::None, Recompute::Selective, Recompute::Full],
            zero: vec![1, 3],
            max_cp: 8,
            max_virtual: 4,
        }
    }
}

/// The layouts the search considers for this cluster, model and setup (all valid), in a fixed order.
#[must_use]
pub fn candidates(
    model: &Model,
    cluster: &Cluster,
    setup: &TrainingSetup,
    space: &SearchSpace,
) -> Vec<Layout> {
    let chips = cluster.chips;
    let divides = |a: u64, b: u64| a != 0 && b % a == 0;
    let pow2 = |max: u64| (0..).map(|i| 1u64 << i).take_while(move |x| *x <= max);
    let mut out = Vec::new();
    let experts = model.moe.as_ref().map_or(1, |m| m.experts as u64);
    for tp in pow2(cluster.domain_chips.min(64)) {
        if !divides(tp, chips) || !divides(tp, cluster.domain_chips) || model.heads as u64 % tp != 0
        {
            continue;
        }
        for pp in 1..=(model.layers as u64).min(chips / tp) {
            if !divides(tp * pp, chips) {
                continue;
            }
            for cp in pow2(space.max_cp as u64) {
                if !divides(tp * pp * cp, chips) || setup.seq_len % cp != 0 {
                    continue;
                }
                let dp = chips / (tp * pp * cp);
                if dp > setup.global_batch {
                    continue;
                }
                for v in pow2(space.max_virtual as u64) {
                    if v > 1 && (pp == 1 || model.layers as u64 % (pp * v) != 0) {
                        continue;
                    }
                    for &mb in &space.microbatches {
                        let per = dp * mb as u64;
                        if setup.global_batch % per != 0 {
                            continue;
                        }
                        if v > 1 && (setup.global_batch / per) % pp != 0 {
                            continue;
                        }
                        for ep in pow2(experts) {
                            if !divides(ep, experts) || !divides(ep, dp * cp * tp) {
                                continue;
                            }
                            for &rc in &space.recompute {
                                // With fused attention, selective recompute recomputes nothing.
                                if rc == Recompute::Selective
                                    && setup.attention == AttentionKernel::Flash
                                {
                                    continue;
                                }
                                for &zero in &space.zero {
                                    let l = Layout {
                                        tp: tp as u32,
                                        pp: pp as u32,
                                        dp: dp as u32,
                                        cp: cp as u32,
                                        ep: ep as u32,
                                        microbatch: mb,
                                        virtual_stages: v as u32,
                                        recompute: rc,
                                        sequence_parallel: tp > 1,
                                        zero,
                                        zero_group: 0,
                                    };
                                    if l.validate(model, cluster, setup, false).is_ok() {
                                        out.push(l);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Evaluate candidates in parallel; results in the candidates' order.
#[must_use]
pub fn evaluate_all(
    model: &Model,
    setup: &TrainingSetup,
    machine: &Machine,
    eff: &Efficiency,
    layouts: &[Layout],
) -> Vec<Prediction> {
    layouts
        .par_iter()
        .map(|l| evaluate(&Shape::new(model, setup, l), machine).predict(eff))
        .collect()
}

/// The fastest layout that fits in memory.
///
/// # Errors
/// [`Error::Input`] when no layout is valid or none fits.
pub fn best_layout(
    model: &Model,
    cluster: &Cluster,
    setup: &TrainingSetup,
    calibration: &Calibration,
    space: &SearchSpace,
) -> Result<(Layout, Prediction, usize)> {
    let layouts = candidates(model, cluster, setup, space);
    if layouts.is_empty() {
        return Err(Error::input(
            "layout",
            format!(
                "no valid layout of {} chips for {} with a global batch of {} sequences (dp x microbatch must divide the batch; try another batch or chip count)",
                cluster.chips, model.id, setup.global_batch
            ),
        ));
    }
    let machine = Machine::new(cluster, setup.precision)?;
    let (_, eff) = calibration.for_chip(&cluster.chip);
    let preds = evaluate_all(model, setup, &machine, &eff, &layouts);
    let mut best: Option<usize> = None;
    for (i, p) in preds.iter().enumerate() {
        if !p.fits_memory || !p.step_time.is_finite() {
            continue;
        }
        match best {
            Some(b) if preds[b].step_time <= p.step_time => {}
            _ => best = Some(i),
        }
    }
    match best {
        Some(b) => Ok((layouts[b], preds[b], layouts.len())),
        None => {
            let least = preds
                .iter()
                .map(|p| p.memory.total())
                .fold(f64::INFINITY, |m, b| m.min(b.gb()));
            Err(Error::input(
                "layout",
                format!(
                    "none of {} layouts fits in memory: the smallest needs {least:.1} GB per chip, {} has {:.1} GB",
                    layouts.len(),
                    cluster.chip.id,
                    machine.hbm_capacity.gb()
                ),
            ))
        }
    }
}
