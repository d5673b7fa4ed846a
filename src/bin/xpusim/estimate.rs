//! `xpusim estimate`: one training run from command-line flags.

use crate::args::EstimateArgs;
use crate::{calibration, emit, flagged};
use anyhow::{bail, Result};
use std::path::Path;
use xpusim::io::{read_input, OutputPath};
use xpusim::report::{self, Format, Row};
use xpusim::{
    assess,
    capacity::{best_chip_count, Goal},
    parse_models, preset, run_in, Answer, Catalog, ClusterRequest, Error, Job, LayoutChoice,
    LayoutRequest, Model, SearchSpace, SetupRequest,
};

/// Batch when neither `--global-batch` nor `--global-batch-tokens` is given.
const DEFAULT_GLOBAL_BATCH: i64 = 1024;

fn model(spec: &str) -> Result<Model> {
    let path = Path::new(spec);
    if path.is_file() || spec.ends_with(".toml") {
        let mut v = parse_models(spec, &read_input(path)?)?;
        if v.len() != 1 {
            bail!(
                "{spec}: define exactly one [[models]] entry, found {}",
                v.len()
            );
        }
        return Ok(v.remove(0));
    }
    preset(spec).map_err(|e| anyhow::anyhow!("--model: {e}"))
}

/// A library error as the command line reports it: request problems name their flags.
fn flag_errors(e: Error) -> anyhow::Error {
    match e {
        Error::Input { problems } => flagged(problems),
        e => e.into(),
    }
}

/// One estimate: its row, the answer, why the chip count was chosen, and the chip's group.
struct One {
    row: Row,
    answer: Answer,
    why: Option<String>,
    group: String,
}

pub fn run(catalog: &Catalog, a: &EstimateArgs) -> Result<()> {
    let output = match &a.output {
        Some(p) => Some(OutputPath::check(p, &[Path::new(&a.model)])?),
        None => None,
    };
    let model = model(&a.model)?;
    let counts: Vec<Option<i64>> = match &a.chips {
        Some(list) => list.0.iter().map(|&n| Some(n)).collect(),
        None => vec![None],
    };
    if counts.len() == 1 {
        let one = estimate_one(catalog, a, &model, counts[0])?;
        let text = match a.format {
            Format::Table => {
                let mut t = report::render(&[Ok(one.row.clone())], a.format)?;
                if let Some(w) = &one.why {
                    t.push_str(&format!("\nchip count: {w}\n"));
                }
                t.push_str(&report::estimate_details(
                    &one.row,
                    &one.answer.estimate,
                    one.answer.search.as_ref(),
                    &one.group,
                ));
                t
            }
            f => report::render(&[Ok(one.row)], f)?,
        };
        return emit(&text, output.as_ref());
    }
    // Several chip counts: one row each, in the order given; a count that cannot run says why.
    let mut failed = 0;
    let rows: Vec<report::Outcome> = counts
        .iter()
        .map(|&n| match estimate_one(catalog, a, &model, n) {
            Ok(one) => Ok(one.row),
            Err(e) => {
                failed += 1;
                Err((
                    a.hardware.clone(),
                    n.unwrap_or(0).max(0) as u64,
                    format!("{e:#}"),
                ))
            }
        })
        .collect();
    emit(&report::render(&rows, a.format)?, output.as_ref())?;
    if failed == rows.len() {
        bail!("--chips: no chip count could run (see the rows)");
    }
    if failed > 0 {
        return Err(crate::Partial(format!(
            "--chips: {failed} of {} chip counts could not run (see the rows)",
            rows.len()
        ))
        .into());
    }
    Ok(())
}

fn estimate_one(
    catalog: &Catalog,
    a: &EstimateArgs,
    model: &Model,
    chips: Option<i64>,
) -> Result<One> {
    let model = model.clone();
    let mut problems = Vec::new();
    let max = a.max_chips.map(|m| m.min(xpusim::limits::MAX_CHIPS));
    let cluster = ClusterRequest {
        hardware: a.hardware.clone(),
        // With --max-chips, the request is checked at the limit and the count is searched.
        chips: chips.or(max.and_then(|m| i64::try_from(m).ok())),
        scale_out_gbit_per_chip: a.scale_out_gbps,
        domain_chips: a.domain_chips,
    }
    .resolve("", catalog)
    .map_err(|p| problems.extend(p))
    .ok();
    let setup = SetupRequest {
        global_batch: a.global_batch.or(if a.global_batch_tokens.is_none() {
            Some(DEFAULT_GLOBAL_BATCH)
        } else {
            None
        }),
        global_batch_tokens: a.global_batch_tokens,
        seq_len: a.seq_len,
        tokens: Some(a.tokens),
        precision: Some(a.precision),
        software: a.software,
        attention: a.attention,
        tp_comm_overlap: a.no_tp_overlap.then_some(false),
        dp_comm_overlap: a.no_dp_overlap.then_some(false),
        hierarchical_collectives: a.flat_collectives.then_some(false),
        logarithmic_collectives: a.logarithmic_collectives.then_some(true),
        moe_dispatcher: a.moe_dispatcher,
        ep_comm_overlap: a.ep_overlap.then_some(true),
        fp8_param_gather: a.fp8_param_gather.then_some(true),
        expert_tensor_parallel: a.whole_experts.then_some(false),
        optimizer_states: a.optimizer_states,
        main_grads: a.main_grads,
        moe_load_imbalance: a.moe_load_imbalance,
        pipeline_split: a.pipeline_split,
        low_precision_activations: Some(!a.bf16_activations),
        offload_activations: a.offload_activations,
    }
    .resolve("", &model)
    .map_err(|p| problems.extend(p))
    .ok();
    let layout = LayoutRequest {
        tp: a.tp,
        pp: a.pp,
        dp: a.dp,
        cp: a.cp,
        ep: a.ep,
        microbatch: a.microbatch,
        virtual_stages: a.virtual_stages,
        recompute: a.recompute,
        recompute_modules: a.recompute_modules.clone(),
        recompute_layers: a.recompute_layers,
        sequence_parallel: None,
        zero: a.zero,
        zero_group: a.zero_group,
        allow_tp_scale_out: Some(a.allow_tp_scale_out),
        search_rest: Some(a.search_rest),
    }
    .resolve("")
    .map_err(|p| problems.extend(p))
    .ok();
    let economics = a
        .economics
        .request()
        .resolve("")
        .map_err(|p| problems.extend(p))
        .ok();
    let (Some(cluster), Some(setup), Some(layout), Some(economics)) =
        (cluster, setup, layout, economics)
    else {
        return Err(flagged(problems));
    };
    let cal = calibration(a.calibration.as_deref())?;
    let (chip, system) = (cluster.chip.clone(), cluster.system.clone());
    let job = Job::new(model, setup, cluster);
    let mut why = None;
    let answer = match max {
        Some(m) => {
            let (LayoutChoice::Fixed(pinned) | LayoutChoice::Search(pinned)) = layout;
            let goal = Goal {
                objective: a.objective,
                settings: &economics,
            };
            let (found, because) = best_chip_count(
                job.cluster(),
                m,
                job.model(),
                job.setup(),
                &pinned,
                &cal,
                goal,
            )
            .map_err(flag_errors)?;
            why = Some(because.why);
            Answer::from(found)
        }
        None => {
            let space = SearchSpace {
                runner_ups: a.top,
                ..Default::default()
            };
            run_in(&job, &layout, &cal, &space).map_err(flag_errors)?
        }
    };
    let e = &answer.estimate;
    let row = Row::new(&a.hardware, e).with_assessment(assess(e, &chip, &system, &economics));
    Ok(One {
        row,
        answer,
        why,
        group: chip.calibration_group.clone(),
    })
}
