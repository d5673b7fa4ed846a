//! Criterion benchmarks, one group per stage of the path: catalog loading, one estimate (the
//! step model plus assembling the result), and the parallel layout search.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use xpusim::prelude::*;

fn catalog(c: &mut Criterion) {
    let builtin = || Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    // Load, resolve and validate the whole built-in catalog (what `hardware list` needs).
    c.bench_function("catalog/builtin", |b| {
        b.iter(|| {
            let cat = builtin();
            black_box(cat.chips().len() + cat.systems().len())
        })
    });
    // What a one-chip command needs: the chip and its system, resolved alone.
    c.bench_function("catalog/one-chip", |b| {
        b.iter(|| black_box(builtin().resolve("h100-sxm").map(|(c, s)| (c.id, s.id))))
    });
    // The same chip derived from another (trn4 from trn3), so both are resolved.
    c.bench_function("catalog/one-derived-chip", |b| {
        b.iter(|| black_box(builtin().resolve("trn4").map(|(c, s)| (c.id, s.id))))
    });
    // The reference path: the built-in TOML parsed and resolved as a whole.
    c.bench_function("catalog/toml", |b| {
        b.iter(|| black_box(Catalog::builtin_from_toml().map(|c| c.chips().len())))
    });
}

fn job(cat: &Catalog, hw: &str, chips: i64, gbs: i64, precision: Precision) -> Job {
    let model = xpusim::preset("llama3-405b").unwrap_or_else(|e| panic!("{e}"));
    let cluster = ClusterRequest {
        hardware: hw.into(),
        chips: Some(chips),
        ..Default::default()
    }
    .resolve("", cat)
    .unwrap_or_else(|e| panic!("{e:?}"));
    let setup = SetupRequest {
        global_batch: Some(gbs),
        seq_len: Some(8192),
        tokens: Some(15.6e12),
        precision: Some(precision),
        ..Default::default()
    }
    .resolve("", &model)
    .unwrap_or_else(|e| panic!("{e:?}"));
    Job::new(model, setup, cluster)
}

fn perf(c: &mut Criterion) {
    let cat = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let job = job(&cat, "h100-sxm", 16384, 2048, Precision::Bf16);
    // Meta's Llama 3 layout (uneven interleaved stages: 126 layers on PP16 x v4).
    let choice = LayoutRequest {
        tp: Some(8),
        pp: Some(16),
        virtual_stages: Some(4),
        recompute: Some(Recompute::Full),
        ..Default::default()
    }
    .resolve("layout")
    .unwrap_or_else(|e| panic!("{e:?}"));
    let layout = run(&job, &choice, &cal)
        .unwrap_or_else(|e| panic!("{e}"))
        .estimate
        .layout;
    let mut g = c.benchmark_group("perf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("estimate llama3-405b 16k h100", |b| {
        b.iter(|| estimate(black_box(&job), black_box(&layout), &cal))
    });
    g.finish();
}

fn sweep(c: &mut Criterion) {
    let cat = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("sweep");
    g.sample_size(20);
    for (hw, chips, gbs) in [("h100-sxm", 16384, 2048), ("trn3", 1_000_000, 16000)] {
        let job = job(&cat, hw, chips, gbs, Precision::Fp8);
        let free = LayoutConstraints::default();
        let n = search(&job, &free, &cal).map(|s| s.considered).unwrap_or(0) as u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(
            format!("search llama3-405b {chips} {hw} ({n} layouts)"),
            |b| b.iter(|| search(black_box(&job), &free, &cal)),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = catalog, perf, sweep
}
criterion_main!(benches);
