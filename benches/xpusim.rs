//! Criterion benchmarks, one group per module: catalog loading, the step model (the hot path a
//! sweep calls millions of times), and the parallel layout search.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use xpusim::calibration::Calibration;
use xpusim::hardware::{Catalog, Precision};
use xpusim::parallelism::{Layout, Recompute};
use xpusim::perf::{evaluate, Machine, Shape};
use xpusim::sweep::{best_layout, candidates, SearchSpace};
use xpusim::workload::{preset, TrainingSetup};

fn catalog(c: &mut Criterion) {
    c.bench_function("catalog/builtin", |b| {
        b.iter(|| black_box(Catalog::builtin()))
    });
}

fn perf(c: &mut Criterion) {
    let cat = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let model = preset("llama3-405b").unwrap_or_else(|e| panic!("{e}"));
    let cluster = cat
        .cluster("h100-sxm", 16384)
        .unwrap_or_else(|e| panic!("{e}"));
    let setup =
        TrainingSetup::new(2048, 8192, 15.6e12, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let layout = Layout {
        tp: 8,
        pp: 16,
        dp: 128,
        cp: 1,
        ep: 1,
        microbatch: 1,
        virtual_stages: 4,
        recompute: Recompute::Full,
        sequence_parallel: true,
        zero: 1,
        zero_group: 0,
    };
    let machine = Machine::new(&cluster, Precision::Bf16).unwrap_or_else(|e| panic!("{e}"));
    let (_, eff) = cal.for_chip(&cluster.chip);
    let mut g = c.benchmark_group("perf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("evaluate+predict llama3-405b 16k h100", |b| {
        b.iter(|| {
            evaluate(
                &Shape::new(black_box(&model), &setup, black_box(&layout)),
                &machine,
            )
            .predict(&eff)
        })
    });
    g.finish();
}

fn sweep(c: &mut Criterion) {
    let cat = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let model = preset("llama3-405b").unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("sweep");
    g.sample_size(20);
    for (hw, chips, gbs) in [
        ("h100-sxm", 16384_u64, 2048_u64),
        ("trn3", 1_000_000, 16000),
    ] {
        let cluster = cat.cluster(hw, chips).unwrap_or_else(|e| panic!("{e}"));
        let setup = TrainingSetup::new(gbs, 8192, 15.6e12, Precision::Fp8)
            .unwrap_or_else(|e| panic!("{e}"));
        let n = candidates(&model, &cluster, &setup, &SearchSpace::default()).len() as u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(
            format!("best_layout llama3-405b {chips} {hw} ({n} layouts)"),
            |b| {
                b.iter(|| {
                    best_layout(
                        black_box(&model),
                        &cluster,
                        &setup,
                        &cal,
                        &SearchSpace::default(),
                    )
                })
            },
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
