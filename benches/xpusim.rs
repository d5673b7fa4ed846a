//! Criterion benchmarks, one group per stage of the path: catalog loading, one estimate (the
//! step model plus assembling the result), and the parallel layout search.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use xpusim::prelude::*;
use xpusim::Objective;

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
    job_of("llama3-405b", None, cat, hw, chips, gbs, precision)
}

fn job_of(
    preset: &str,
    seq_len: Option<i64>,
    cat: &Catalog,
    hw: &str,
    chips: i64,
    gbs: i64,
    precision: Precision,
) -> Job {
    let model = xpusim::preset(preset).unwrap_or_else(|e| panic!("{e}"));
    let cluster = ClusterRequest {
        hardware: hw.into(),
        chips: Some(chips),
        ..Default::default()
    }
    .resolve("", cat)
    .unwrap_or_else(|e| panic!("{e:?}"));
    let setup = SetupRequest {
        global_batch: Some(gbs),
        seq_len: seq_len.or(Some(8192)),
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
    let mut g = c.benchmark_group("search");
    g.sample_size(10);
    // The full default space (Calculon's knobs: ZeRO 0-3, micro-batch up to the per-replica
    // batch, interleaving to 16, sequence parallelism on and off), best + runner-ups.
    for (preset, seq, hw, chips, gbs, precision) in [
        (
            "megatron-1t",
            Some(2048),
            "a100-80gb",
            3072,
            3072,
            Precision::Bf16,
        ),
        ("llama3-405b", None, "h100-sxm", 1024, 2048, Precision::Fp8),
        ("llama3-405b", None, "h100-sxm", 16384, 2048, Precision::Fp8),
        (
            "llama3-405b",
            None,
            "h100-sxm",
            65536,
            16384,
            Precision::Fp8,
        ),
        (
            "llama3-405b",
            None,
            "trn3",
            1_048_576,
            16384,
            Precision::Fp8,
        ),
    ] {
        let job = job_of(preset, seq, &cat, hw, chips, gbs, precision);
        let free = LayoutConstraints::default();
        let n = search(&job, &free, &cal).map(|s| s.considered).unwrap_or(0) as u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("{preset} {chips} {hw} ({n} layouts)"), |b| {
            b.iter(|| search(black_box(&job), &free, &cal))
        });
    }
    g.finish();
}

/// Planning: the best chip count up to a million, and a whole scenario.
fn plan(c: &mut Criterion) {
    let cat = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let cal = Calibration::shipped().unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    let job = job(&cat, "trn3", 1_000_000, 16000, Precision::Fp8);
    let settings = EconomicsRequest::default()
        .resolve("")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let goal = xpusim::capacity::Goal {
        objective: Objective::Time,
        settings: &settings,
    };
    g.bench_function("max-chips 1000000 trn3 llama3-405b", |b| {
        b.iter(|| {
            xpusim::capacity::best_chip_count(
                job.cluster(),
                1_000_000,
                job.model(),
                job.setup(),
                &LayoutConstraints::default(),
                &cal,
                goal,
            )
        })
    });
    let path = "scenarios/trn3-ultraserver-scaling.toml";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let (text, cat, cal) = (&text, &cat, &cal);
    let scenario = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        move |b: &mut criterion::Bencher| {
            b.iter(|| {
                pool.install(|| {
                    let s = Scenario::parse(path, text, cat).unwrap_or_else(|e| panic!("{e}"));
                    s.run(cal, &EconomicsRequest::default()).len()
                })
            })
        }
    };
    // End to end (parse, every case, the last one a best-count search up to a million), and
    // the same on one thread: the ratio is the sweep's parallel speed-up.
    g.bench_function(
        "scenario trn3-ultraserver-scaling (all threads)",
        scenario(0),
    );
    g.bench_function("scenario trn3-ultraserver-scaling (1 thread)", scenario(1));
    g.bench_function("scenario trn3-ultraserver-scaling (2 threads)", scenario(2));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = catalog, perf, sweep, plan
}
criterion_main!(benches);
