//! 02 — The seed facts, reproduced from catalog data alone: Trainium3's "4.4x", the HBM of
//! Trainium3 / Ironwood / GB300, Trainium4's multiples, and a million-chip cluster's totals.
//!
//! Run: `cargo run --release --example 02_seed_claims`

use xpusim::hardware::{totals, Catalog, Precision};

fn main() -> Result<(), xpusim::Error> {
    let c = Catalog::builtin()?;
    let (trn2, trn3, trn4) = (c.chip("trn2")?, c.chip("trn3")?, c.chip("trn4")?);
    let us3 = totals(
        trn3,
        c.system("trn3-ultraserver-gen2")?.domain_chips.value,
        Precision::Fp8,
    )?;
    let us2 = totals(
        trn2,
        c.system("trn2-ultraserver")?.domain_chips.value,
        Precision::Fp8,
    )?;
    println!(
        "UltraServer FP8: Trn3 x144 = {:.1} PF, Trn2 x64 = {:.1} PF, ratio {:.2}x (the '4.4x')",
        us3.peak.flops_per_second() / 1e15,
        us2.peak.flops_per_second() / 1e15,
        us3.peak / us2.peak
    );
    for p in [Precision::Fp8, Precision::Bf16] {
        println!(
            "per chip {p}: Trn3 / Trn2 = {:.2}x",
            trn3.peak_flops(p)? / trn2.peak_flops(p)?
        );
    }
    for id in ["trn3", "ironwood", "gb300"] {
        let hbm = c
            .chip(id)?
            .hbm_capacity
            .as_ref()
            .map(|f| f.as_written.clone())
            .unwrap_or_default();
        println!("{id}: HBM {hbm}");
    }
    for p in [Precision::Fp4, Precision::Fp8] {
        let f = trn4.peak(p).map(|f| {
            (
                f.value.tera(),
                f.provenance.status.as_str(),
                f.provenance.derivation.clone(),
            )
        });
        println!(
            "trn4 {p}: {f:?} vs trn3 {:.0} TF",
            trn3.peak_flops(p)?.tera()
        );
    }
    let million = c.cluster("trn3", 1_000_000)?;
    let t = million.totals(Precision::Fp8)?;
    println!(
        "1,000,000 Trn3: {:.2} ZFLOP/s FP8, {:.1} PB HBM, {} UltraServers, {:.0} MW of chip power (derived TDP)",
        t.peak.flops_per_second() / 1e21,
        t.hbm_capacity.bytes() / 1e15,
        million.domains(),
        t.power.map_or(0.0, |w| w.watts() / 1e6)
    );
    Ok(())
}
