//! 01 — How long does GPT-3 175B take on 1,024 A100s? One estimate through the library API,
//! with the step-time breakdown that explains the answer.
//!
//! Run: `cargo run --release --example 01_time_to_train`

use xpusim::calibration::Calibration;
use xpusim::hardware::{Catalog, Precision};
use xpusim::parallelism::{Layout, Recompute};
use xpusim::perf::estimate;
use xpusim::workload::{preset, TrainingSetup};

fn main() -> Result<(), xpusim::Error> {
    let catalog = Catalog::builtin()?;
    let cluster = catalog.cluster("a100-80gb", 1024)?;
    let model = preset("gpt3-175b")?;
    // 300B tokens in batches of 1,536 sequences of 2,048 tokens, BF16.
    let setup = TrainingSetup::new(1536, 2048, 300e9, Precision::Bf16)?;
    let layout = Layout {
        tp: 8,
        pp: 8,
        dp: 16,
        cp: 1,
        ep: 1,
        microbatch: 1,
        virtual_stages: 2,
        recompute: Recompute::Selective,
        sequence_parallel: true,
        zero: 1,
        zero_group: 0,
    };
    let e = estimate(&model, &layout, &cluster, &setup, &Calibration::shipped()?)?;
    let p = &e.prediction;
    println!("{} on {} x {}: {layout}", model.id, e.chips, e.chip);
    println!(
        "step {:.2} s, {:.0} tokens/s, MFU {:.1}%, {:.1} days, {:.3e} chip-hours",
        p.step_time.seconds(),
        p.tokens_per_second,
        100.0 * p.mfu,
        e.train_time.days(),
        e.chip_hours
    );
    let b = e.breakdown();
    println!(
        "where the step goes: matmul {:.2} s, memory-bound {:.2} s, TP {:.2} s, PP {:.2} s, DP {:.2} s, bubble {:.2} s",
        b.matmul.seconds(),
        b.memory_bound.seconds(),
        b.tp_comm.seconds(),
        b.pp_comm.seconds(),
        b.dp_comm.seconds(),
        b.bubble.seconds()
    );
    println!(
        "bound by {} ({:.0}%), memory {:.1} GB per chip",
        p.bound_by.as_str(),
        100.0 * p.bound_share,
        p.memory.total().gb()
    );
    Ok(())
}
