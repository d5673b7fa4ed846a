//! 01 — How long does GPT-3 175B take on 1,024 A100s? One estimate through the library API,
//! with the step-time breakdown that explains the answer.
//!
//! Run: `cargo run --release --example 01_time_to_train`

use xpusim::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Catalog::builtin()?;
    let model = xpusim::preset("gpt3-175b")?;
    // Every request is plain named fields, resolved once into a validated value (or every
    // problem at once, each with its key).
    let cluster = ClusterRequest {
        hardware: "a100-80gb".into(),
        chips: Some(1024),
        ..Default::default()
    }
    .resolve("", &catalog)
    .map_err(|problems| Error::Input { problems })?;
    let setup = SetupRequest {
        global_batch: Some(1536),
        seq_len: Some(2048),
        tokens: Some(300e9),
        ..Default::default()
    }
    .resolve("", &model)
    .map_err(|problems| Error::Input { problems })?;
    // Megatron-LM's layout (Narayanan et al. 2021): TP8 x PP8, interleaved, selective recompute.
    let layout = LayoutRequest {
        tp: Some(8),
        pp: Some(8),
        virtual_stages: Some(2),
        recompute: Some(Recompute::Selective),
        ..Default::default()
    }
    .resolve("layout")
    .map_err(|problems| Error::Input { problems })?;
    let job = Job::new(model, setup, cluster);
    let e = run(&job, &layout, &Calibration::shipped()?)?.estimate;
    let layout = e.layout;
    let p = &e.prediction;
    println!("{} on {} x {}: {layout}", e.model, e.chips, e.chip);
    println!(
        "step {:.2} s, {:.0} tokens/s, MFU {:.1}%, {:.1} days, {:.3e} chip-hours",
        p.step_time.seconds(),
        p.tokens_per_second,
        100.0 * p.mfu,
        e.train_time.days(),
        e.chip_hours
    );
    let b = &e.prediction.breakdown;
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
