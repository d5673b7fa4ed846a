//! 04 — The deployments and deals of the seed facts, as derived quantities: Project Rainier's
//! ~500,000 Trainium2 on a 2.2 GW campus, the 1,000,000-chip plans, and what USD 38 billion over
//! seven years buys in NVIDIA GPU-hours.
//!
//! Run: `cargo run --release --example 04_seed_deployments`

use xpusim::hardware::{totals, Catalog, Precision};
use xpusim::units::{Usd, Watts};
use xpusim::{catalog_price, chip_hours_for_budget, Facility};

fn main() -> Result<(), xpusim::Error> {
    let c = Catalog::builtin()?;
    let aws = Facility::default(); // PUE 1.15 (AWS 2024)
    let trn2 = c.chip("trn2")?;
    let tdp = trn2.tdp.as_ref().map_or(Watts::ZERO, |f| f.value);

    // Project Rainier: about 500,000 Trainium2 (Global Economic); campus 2.2 GW (Edaily).
    let rainier = totals(trn2, 500_000, Precision::Fp8)?;
    println!(
        "500,000 Trn2: {:.2} ZFLOP/s FP8 dense, {:.1} PB HBM, {:.0} MW at chip TDP x PUE {}",
        rainier.peak.flops_per_second() / 1e21,
        rainier.hbm_capacity.bytes() / 1e15,
        aws.power(tdp, 500_000).watts() / 1e6,
        aws.pue
    );
    let campus = Watts::new(2.2e9);
    println!(
        "a 2.2 GW campus powers at most {} Trn2 at chip TDP (hosts, network and storage share the load in reality)",
        aws.chips_for_power(campus, tdp)
    );
    for id in ["trn2", "trn3"] {
        let t = totals(c.chip(id)?, 1_000_000, Precision::Fp8)?;
        println!(
            "1,000,000 {id}: {:.2} ZFLOP/s FP8 dense",
            t.peak.flops_per_second() / 1e21
        );
    }

    // OpenAI-AWS: USD 38 billion over 7 years for NVIDIA GPUs (The Verge via tistory; ZDNet Korea).
    for id in ["h100-sxm", "b200"] {
        if let Some(p) = catalog_price(c.chip(id)?, "on-demand") {
            let (hours, chips) = chip_hours_for_budget(Usd::new(38e9), p.per_chip_hour, 7.0);
            println!(
                "USD 38B at {id} on-demand ${:.2}/h ({}): {:.2e} GPU-hours = {:.0} GPUs busy for 7 years",
                p.per_chip_hour.usd_per_chip_hour(),
                p.date,
                hours,
                chips
            );
        }
    }
    Ok(())
}
