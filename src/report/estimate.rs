//! The human rendering of one estimate: the row, then where the step time, energy, cost and
//! memory go, and the runner-ups of a search.

use super::{human, table, Row};
use crate::plan::{Estimate, Search};
use std::fmt::Write;

/// The lines `xpusim estimate` prints under the result row.
#[must_use]
pub fn estimate_details(
    row: &Row,
    e: &Estimate,
    search: Option<&Search>,
    chip_group: &str,
) -> String {
    let mut s = String::new();
    let b = &row.breakdown;
    let how = match search {
        Some(x) => format!(
            "searched layout (fastest that fits, tight ones after, of {} valid layouts, {} fitting or tight)",
            x.considered, x.fitting
        ),
        None => "given layout".into(),
    };
    let _ = writeln!(
        s,
        "\n{} on {} x {} ({}), {how}",
        e.model, row.chips, row.chip, row.system
    );
    let _ = writeln!(
        s,
        "FLOPs per token: {:.4e} exact, {:.4e} by 6N ({:+.1}%)",
        row.flops_per_token,
        row.six_n_flops_per_token,
        100.0 * (row.six_n_flops_per_token / row.flops_per_token - 1.0)
    );
    let _ = writeln!(
        s,
        "step breakdown (s): matmul {:.4}  memory-bound {:.4}  kernel overhead {:.4}  (recompute {:.4})",
        b.matmul_s, b.memory_bound_s, b.kernel_overhead_s, b.recompute_s
    );
    let _ = writeln!(
        s,
        "  exposed comm: TP {:.4}  CP {:.4}  EP {:.4}  PP {:.4}  DP {:.4}  (scale-up {:.4}, scale-out {:.4}){}",
        b.tp_comm_s, b.cp_comm_s, b.ep_comm_s, b.pp_comm_s, b.dp_comm_s, b.scale_up_comm_s, b.scale_out_comm_s,
        if b.offload_s > 0.0 { format!("  host offload {:.4}", b.offload_s) } else { String::new() }
    );
    let _ = writeln!(
        s,
        "  bubble {:.4}  optimizer {:.4}  total {:.4}{}",
        b.bubble_s,
        b.optimizer_s,
        row.step_time_s,
        row.expected_error.map_or_else(String::new, |x| format!(
            "  (expected error ±{:.0}%: held-out studies of fit `{}`)",
            100.0 * x,
            row.calibration
        ))
    );
    let _ = writeln!(
        s,
        "bound by {} ({:.0}% of the step); calibration: {}{}",
        row.bound_by,
        100.0 * row.bound_share,
        row.calibration,
        if row.calibration_fallback {
            format!(
                " (stand-in: no measured run of group `{chip_group}` was fitted; expect errors above the fitted \
                 groups' 4-9% held-out error, up to the ~25% of a family never measured; see README)"
            )
        } else if !row.chip_measured {
            format!(
                " (no {} run was measured: the fit borrows its group's other chips; error band widened)",
                row.chip
            )
        } else {
            String::new()
        }
    );
    let x = &row.economics;
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "n/p".to_string(), f);
    let _ = writeln!(
        s,
        "energy: {} MWh, {} MW facility average at PUE {} ({} W per chip all-in, accelerator {} W at {:.0}% busy), {} t CO2e, {} tokens/kWh",
        opt(x.energy_mwh, &|v| format!("{v:.1}")),
        opt(x.avg_power_mw, &|v| format!("{v:.2}")),
        x.pue,
        opt(x.it_power_per_chip_w, &|v| format!("{v:.0}")),
        opt(x.chip_power_w, &|v| format!("{v:.0}")),
        100.0 * x.utilisation,
        opt(x.co2_t, &|v| format!("{v:.0}")),
        opt(x.tokens_per_kwh, &|v| format!("{v:.3e}")),
    );
    let _ = writeln!(
        s,
        "failures: {:.0} expected interruptions, checkpoint every {:.2} h, goodput {:.1}%: {:.2} days with failures",
        x.interruptions,
        x.checkpoint_interval_h,
        100.0 * x.goodput,
        x.effective_train_days
    );
    let _ = writeln!(
        s,
        "cost ({}): {}{}",
        x.pricing,
        match (x.cost_usd, &x.price_basis) {
            (Some(c), Some(b)) => format!(
                "${} ({} per million tokens; {b})",
                human(c),
                opt(x.cost_per_mtok_usd, &|v| format!("${v:.3}"))
            ),
            _ => "n/p (no price of this basis in the catalog; give --price or another --pricing)"
                .into(),
        },
        match (x.capital_usd, x.maintenance_usd, x.electricity_usd) {
            (Some(c), Some(m), Some(e)) => {
                format!(
                    "\n  owned: capital ${} + maintenance ${} + electricity ${}",
                    human(c),
                    human(m),
                    human(e)
                )
            }
            _ => String::new(),
        }
    );
    let m = &e.prediction.memory;
    let _ = writeln!(
        s,
        "memory per chip: {:.1} GB = weights {:.1} + gradients {:.1} + optimizer {:.1} + activations {:.1} + buffers {:.1}; {} ({:+.0}% of HBM free{})",
        m.total().gb(),
        m.weights.gb(),
        m.gradients.gb(),
        m.optimizer.gb(),
        m.activations.gb(),
        m.buffers.gb(),
        e.prediction.memory_band.as_str(),
        100.0 * e.prediction.memory_margin,
        if e.prediction.memory_band == crate::perf::MemoryBand::Tight {
            format!(
                "; over HBM by less than the memory model's error of {:.0}%, so it may run",
                100.0 * crate::perf::MEMORY_MODEL_ERROR
            )
        } else {
            String::new()
        }
    );
    if m.offloaded > crate::units::Bytes::ZERO {
        let _ = writeln!(
            s,
            "offloaded to host memory: {:.1} GB of activations per chip",
            m.offloaded.gb()
        );
    }
    if let Some(x) = search.filter(|x| !x.runner_ups.is_empty()) {
        let body: Vec<[String; 6]> = x
            .runner_ups
            .iter()
            .map(|r| {
                [
                    r.layout.to_string(),
                    format!("{:.3}", r.prediction.step_time.seconds()),
                    format!(
                        "{:+.1}%",
                        100.0 * (r.prediction.step_time / e.prediction.step_time - 1.0)
                    ),
                    format!("{:.1}%", 100.0 * r.prediction.mfu),
                    format!("{:.1}%", 100.0 * r.prediction.mfu_causal),
                    format!("{:.1}", r.prediction.memory.total().gb()),
                ]
            })
            .collect();
        let _ = writeln!(s, "\nrunner-ups:");
        s.push_str(&table(
            &[
                "layout",
                "step s",
                "vs best",
                "MFU s²",
                "MFU causal",
                "mem GB",
            ]
            .map(String::from),
            &body,
            false,
        ));
    }
    s
}
