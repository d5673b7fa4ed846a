//! The command-line tool as a user runs it: the README's commands, JSON output, bad input.

use crate::{stderr, stdout, xpusim};
use std::process::Command;

#[test]
fn hardware_list_prints_every_chip() {
    let o = xpusim(&["hardware", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for id in crate::SEED_CHIPS {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} not listed:\n{out}"
        );
    }
}

#[test]
fn hardware_show_json_has_source_and_status_for_each_figure() {
    let o = xpusim(&["hardware", "show", "trn3", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
    let chip = &v["chip"];
    for fig in [
        &chip["hbm_capacity"],
        &chip["hbm_bandwidth"],
        &chip["tdp"],
        &chip["peaks"][3],
    ] {
        assert!(fig["provenance"]["source"]["key"].is_string(), "{fig}");
        assert!(fig["provenance"]["status"].is_string(), "{fig}");
    }
    assert_eq!(chip["tdp"]["provenance"]["status"], "derived");
    assert!(v["domain_totals"].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn aliases_resolve() {
    for alias in ["ironwood", "trillium", "trainium3"] {
        let o = xpusim(&["hardware", "show", alias]);
        assert!(o.status.success(), "{alias}: {}", stderr(&o));
    }
}

#[test]
fn estimate_json_has_the_documented_keys() {
    let o = xpusim(&[
        "estimate",
        "--model",
        "gpt3-175b",
        "--hardware",
        "a100-80gb",
        "--chips",
        "1024",
        "--tp",
        "8",
        "--pp",
        "8",
        "--global-batch",
        "1536",
        "--tokens",
        "300e9",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
    // `estimate` prints the same array of rows as `run`.
    let v = &all[0];
    for key in crate::ROW_KEYS {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["layout"]["dp"], 16);
    // A100-80GB has a 400 W TDP and a dated on-demand price: energy and cost are reported.
    for key in [
        "energy_mwh",
        "cost_usd",
        "cost_per_mtok_usd",
        "avg_power_mw",
        "co2_t",
        "tokens_per_kwh",
        "goodput",
        "interruptions",
        "checkpoint_interval_h",
        "effective_train_days",
    ] {
        assert!(
            v[key].as_f64().is_some_and(|x| x > 0.0),
            "{key}: {}",
            v[key]
        );
    }
    assert!(v["price_basis"].is_string());
}

#[test]
fn the_readme_main_command_runs() {
    let o = xpusim(&["run", "scenarios/headline.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("trn3-ultraserver-gen2"));
}

#[test]
fn every_shipped_scenario_runs_in_every_format() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        for format in ["table", "json", "csv", "markdown"] {
            let o = xpusim(&["run", &path.display().to_string(), "--format", format]);
            assert!(
                o.status.success(),
                "{} {format}: {}",
                path.display(),
                stderr(&o)
            );
        }
    }
}

#[test]
fn bad_user_catalog_exits_nonzero_naming_file_and_key() {
    let dir = std::env::temp_dir().join(format!("xpusim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "schema_version = 1\nfamily = \"x\"\nvendor = \"X\"\ncolour = \"red\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = xpusim(&["--catalog", &f.display().to_string(), "hardware", "list"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("bad.toml") && err.contains("colour"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_estimate_inputs_exit_nonzero_without_panic() {
    let cases: [&[&str]; 5] = [
        &[
            "estimate",
            "--model",
            "gpt3-175b",
            "--hardware",
            "a100-80gb",
            "--chips",
            "0",
        ],
        &[
            "estimate",
            "--model",
            "gpt3-175b",
            "--hardware",
            "a100-80gb",
            "--chips",
            "1000",
            "--tp",
            "8",
            "--pp",
            "8",
        ],
        &[
            "estimate",
            "--model",
            "gpt3-175b",
            "--hardware",
            "nope",
            "--chips",
            "8",
        ],
        &[
            "estimate",
            "--model",
            "llama3-8b",
            "--hardware",
            "a100-80gb",
            "--chips",
            "8",
            "--precision",
            "fp8",
        ],
        &[
            "estimate",
            "--model",
            "missing.toml",
            "--hardware",
            "h100",
            "--chips",
            "8",
        ],
    ];
    for args in cases {
        let o = xpusim(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(
            err.starts_with("error:") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn output_file_is_written_whole() {
    let dir = std::env::temp_dir().join(format!("xpusim-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("r.json");
    let o = xpusim(&[
        "run",
        "scenarios/trainium4-whatif.toml",
        "--format",
        "json",
        "-o",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
        1,
        "no temporary file left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's error tables are what `xpusim validate --update-readme` writes today.
#[test]
fn readme_validation_tables_are_current() {
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let original = std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("xpusim-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let copy = dir.join("README.md");
    std::fs::write(&copy, &original).unwrap_or_else(|e| panic!("{e}"));
    for extra in [&[][..], &["--holdout"][..]] {
        let mut args = vec![
            "validate",
            "--update-readme",
            copy.to_str().unwrap_or_default(),
        ];
        args.extend_from_slice(extra);
        let o = xpusim(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let regenerated = std::fs::read_to_string(&copy).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        regenerated == original,
        "README tables are stale: run `cargo run --release -- validate --update-readme README.md` and `... validate --holdout --update-readme README.md`"
    );
}

/// `xpusim validate | head` must not panic when the reader goes away.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xpusim"))
        .args(["validate"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut first = [0_u8; 16];
    let _ = child.stdout.as_mut().map(|s| s.read(&mut first));
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// A scenario's own prices and facility drive the cost and energy columns; bad ones are refused.
#[test]
fn scenario_prices_and_facility_are_used() {
    let dir = std::env::temp_dir().join(format!("xpusim-econ-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let good = "schema_version = 1\nname = \"t\"\n[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 64\ntokens = 1e9\nprecision = \"bf16\"\n[facility]\npue = 1.0\ngrid_kg_co2_per_kwh = 0.0\n[[hardware]]\nid = \"trn3\"\nchips = [64]\nprice_usd_per_chip_hour = 2.0\n";
    let f = dir.join("s.toml");
    std::fs::write(&f, good).unwrap_or_else(|e| panic!("{e}"));
    let o = xpusim(&["run", f.to_str().unwrap_or_default(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
    let row = &v[0];
    // Chips are paid for through failures and restarts: the effective wall time.
    let hours = row["effective_train_days"].as_f64().unwrap_or(f64::NAN) * 24.0 * 64.0;
    let cost = row["cost_usd"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (cost - 2.0 * hours).abs() <= 1e-6 * cost.abs(),
        "{cost} vs {hours}"
    );
    assert_eq!(row["co2_t"].as_f64(), Some(0.0));
    std::fs::write(&f, good.replace("pue = 1.0", "pue = 0.5")).unwrap_or_else(|e| panic!("{e}"));
    let o = xpusim(&["run", f.to_str().unwrap_or_default()]);
    assert!(
        !o.status.success() && stderr(&o).contains("facility") && stderr(&o).contains("pue"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --plot` writes an SVG figure: one series per hardware label, the three axis titles.
#[cfg(feature = "plot")]
#[test]
fn run_plot_writes_an_svg() {
    let dir = std::env::temp_dir().join(format!("xpusim-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let scenario = "schema_version = 1\nname = \"plot\"\n[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 64\ntokens = 1e9\nprecision = \"bf16\"\n[[hardware]]\nid = \"trn3\"\nchips = [64, 128, 256]\n[[hardware]]\nid = \"h100\"\nchips = [64, 128, 256]\n";
    let f = dir.join("s.toml");
    std::fs::write(&f, scenario).unwrap_or_else(|e| panic!("{e}"));
    let svg = dir.join("s.svg");
    let o = xpusim(&[
        "run",
        f.to_str().unwrap_or_default(),
        "--plot",
        svg.to_str().unwrap_or_default(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(200)]);
    for needle in [
        "trn3",
        "h100",
        "time to train (days",
        "cost (USD)",
        "energy (MWh)",
    ] {
        assert!(text.contains(needle), "no {needle} in the figure");
    }
    // Never over an input.
    let o = xpusim(&[
        "run",
        f.to_str().unwrap_or_default(),
        "--plot",
        f.to_str().unwrap_or_default(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("input"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Completions and the manual page come from the same clap definitions.
#[test]
fn completions_and_man_page() {
    let o = xpusim(&["completions", "bash"]);
    assert!(
        o.status.success() && stdout(&o).contains("xpusim"),
        "{}",
        stderr(&o)
    );
    let o = xpusim(&["man"]);
    assert!(
        o.status.success() && stdout(&o).contains(".TH xpusim"),
        "{}",
        stderr(&o)
    );
}

/// `run --shard I/N` slices a scenario deterministically; `merge` restores the whole output.
#[test]
fn shards_merge_back_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = |n: &str| dir.path().join(n).display().to_string();
    let scenario = "scenarios/headline.toml";
    for format in ["json", "csv"] {
        let whole = p(&format!("all.{format}"));
        let o = xpusim(&["run", scenario, "--format", format, "-o", &whole]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut parts = Vec::new();
        for i in 1..=3 {
            let part = p(&format!("s{i}.{format}"));
            let shard = format!("{i}/3");
            let o = xpusim(&[
                "run", scenario, "--format", format, "--shard", &shard, "-o", &part,
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            parts.push(part);
        }
        let merged = p(&format!("m.{format}"));
        let mut args = vec!["merge"];
        args.extend(parts.iter().map(String::as_str));
        args.extend(["-o", &merged]);
        let o = xpusim(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(read(&merged), read(&whole), "{format}");
    }
    let o = xpusim(&["run", scenario, "--shard", "4/3"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `hardware compare` holds the Trainium3 claims against the catalog: 4.4x per UltraServer, ~1.9x
/// per chip in FP8.
#[test]
fn hardware_compare_shows_the_ratios_claims_are_about() {
    let o = xpusim(&["hardware", "compare", "trn3", "trn2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    let ratio = |name: &str| {
        t.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|r| r.trim_end_matches('x').parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    assert!((ratio("FP8 FLOP/s per system") - 4.36).abs() < 0.05, "{t}");
    assert!((ratio("FP8 FLOP/s per chip ") - 1.94).abs() < 0.05, "{t}");
    assert!(t.contains("40%"), "{t}");
    let o = xpusim(&["hardware", "compare", "trn3", "trn9"]);
    assert_eq!(o.status.code(), Some(1));
}

/// `capacity --days --budget-usd --compute-optimal`: tokens trainable within the limits, the
/// binding one named, and the Chinchilla model for the compute (JSON checked against the rule;
/// the table and CSV carry the same answer); bad limits are refused naming the flag.
#[test]
fn capacity_answers_how_many_tokens_and_which_model_size() {
    let args = [
        "capacity",
        "--hardware",
        "h100",
        "--budget-usd",
        "2e7",
        "--days",
        "30",
        "--model",
        "llama3-8b",
        "--compute-optimal",
        "chinchilla",
    ];
    let with = |f: &'static str| -> Vec<&'static str> {
        args.iter().copied().chain(["--format", f]).collect()
    };
    let o = xpusim(&with("json"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    let t = &v[0]["trainable"];
    let num = |x: &serde_json::Value| x.as_f64().unwrap_or(f64::NAN);
    let tokens = num(&t["tokens"]);
    assert!(tokens > 1e11 && tokens < 1e15, "{t}");
    let binding = t["binding"].as_str().unwrap_or("");
    assert!(binding == "time" || binding == "budget", "{t}");
    // The binding limit is the one that allows the fewest tokens.
    let allowed = t["allowed"].as_array().cloned().unwrap_or_default();
    assert_eq!(allowed.len(), 2, "{t}");
    let least = allowed
        .iter()
        .map(|a| num(&a["tokens"]))
        .fold(f64::INFINITY, f64::min);
    assert!((least / tokens - 1.0).abs() < 1e-12, "{t}");
    assert!(num(&t["cost_usd"]) <= 2e7 * (1.0 + 1e-9) && num(&t["cost_usd"]) > 0.0);
    assert!(num(&t["wall_time_s"]) <= 30.0 * 86_400.0 * (1.0 + 1e-9));
    let c = &v[0]["compute_optimal"];
    let (n, d, flop) = (
        num(&c["params"]),
        num(&c["tokens"]),
        num(&c["compute_flop"]),
    );
    assert!((d / n / 20.0 - 1.0).abs() < 1e-12, "{c}");
    assert!((6.0 * n * d / flop - 1.0).abs() < 1e-12, "{c}");
    assert!((flop / num(&t["compute_flop"]) - 1.0).abs() < 1e-12);
    assert_eq!(c["reference"], "llama3-8b");
    let table = xpusim(&with("table"));
    let text = stdout(&table);
    assert!(table.status.success(), "{}", stderr(&table));
    for s in [
        "tokens trainable",
        "bound by",
        "N params",
        "Hoffmann",
        "llama3-8b",
    ] {
        assert!(text.contains(s), "`{s}` not in {text}");
    }
    let csv = stdout(&xpusim(&with("csv")));
    assert!(csv.lines().next().is_some_and(|h| h.contains("trainable.tokens")
        && h.contains("compute_optimal.params")), "{csv}");
    for (flag, value) in [
        ("--days", "0"),
        ("--days", "-3"),
        ("--days", "nan"),
        ("--days", "1e9"),
        ("--energy-mwh", "-1"),
        ("--compute-optimal", "0"),
        ("--compute-optimal", "abc"),
        ("--compute-optimal", "inf"),
    ] {
        let o = xpusim(&[
            "capacity",
            "--hardware",
            "h100",
            "--power-mw",
            "10",
            flag,
            value,
        ]);
        assert_eq!(o.status.code(), Some(1), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{flag} {value}: {}", stderr(&o));
    }
    // A compute-optimal question with nothing to spend.
    let o = xpusim(&[
        "capacity",
        "--hardware",
        "h100",
        "--power-mw",
        "10",
        "--compute-optimal",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--days"), "{}", stderr(&o));
}

/// A `chips_range` sweep streams one row per count, in order, in JSON and CSV alike; counts
/// without a valid layout are rows that say why (exit 3), and bad ranges are refused by key.
#[test]
fn chip_range_sweeps_stream_every_case_in_order() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let head = "schema_version = 1\nname = \"sweep\"\n[model]\npreset = \"llama3-8b\"\n\
                [training]\nglobal_batch = 64\ntokens = 1e9\n[layout]\ntp = 8\npp = 1\n\
                microbatch = 1\nrecompute = \"none\"\n[[hardware]]\nid = \"h100-sxm\"\n";
    let file = dir.path().join("s.toml");
    let write = |range: &str| {
        std::fs::write(&file, format!("{head}chips_range = {range}\n"))
            .unwrap_or_else(|e| panic!("{e}"));
    };
    write("{ from = 8, to = 96, step = 8 }");
    let f = file.display().to_string();
    let o = xpusim(&["run", &f, "--format", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
    let chips: Vec<u64> = rows.iter().filter_map(|r| r["chips"].as_u64()).collect();
    assert_eq!(chips, (1..=12).map(|k| 8 * k).collect::<Vec<_>>());
    // dp = chips / 8 must divide the batch of 64: 8, 16, 32, 64 chips run.
    let ran: Vec<u64> = rows
        .iter()
        .filter(|r| r.get("error").is_none())
        .filter_map(|r| r["chips"].as_u64())
        .collect();
    assert_eq!(ran, vec![8, 16, 32, 64]);
    let csv = stdout(&xpusim(&["run", &f, "--format", "csv"]));
    assert_eq!(csv.lines().count(), 13, "{csv}");
    assert!(csv
        .lines()
        .nth(1)
        .is_some_and(|l| l.starts_with("h100-sxm,h100-sxm,")));
    assert!(csv
        .lines()
        .nth(3)
        .is_some_and(|l| l.starts_with("h100-sxm,,,24,")));
    write("{ from = 8, to = 8192, factor = 2 }");
    let o = xpusim(&["run", &f, "--format", "csv"]);
    assert_eq!(
        stdout(&o).lines().count(),
        12,
        "header and 8, 16, ..., 8192"
    );
    for (range, says) in [
        ("{ from = 8, to = 4, step = 1 }", "must run from at least 1"),
        ("{ from = 0, to = 4, step = 1 }", "must run from at least 1"),
        ("{ from = 1, to = 4, step = 0 }", "step must be at least 1"),
        (
            "{ from = 1, to = 4, factor = 1 }",
            "factor must be at least 2",
        ),
        ("{ from = 1, to = 4 }", "give step"),
        ("{ from = 1, to = 4, step = 1, factor = 2 }", "not both"),
        ("{ from = 1, to = 1000000000, step = 1 }", "more than"),
        ("{ from = 1, to = 4, stride = 1 }", "stride"),
    ] {
        write(range);
        let o = xpusim(&["run", &f]);
        assert_eq!(o.status.code(), Some(1), "{range}");
        let e = stderr(&o);
        assert!(
            e.contains("chips_range") && e.contains(says),
            "{range}: {e}"
        );
    }
}

/// Issue 10's planning question: up to a million Trainium3, the chosen count is at most a million
/// and trains no slower (with failures, within 0.1%) than 256,000 chips, the count a planner
/// would try by hand; when it fills UltraServers with 128 of their 144 chips it says so.
#[test]
fn max_chips_plans_at_least_as_well_as_the_hand_picked_count() {
    let common = [
        "--model",
        "llama3-405b",
        "--hardware",
        "trn3",
        "--global-batch",
        "16000",
        "--precision",
        "fp8",
        "--format",
        "json",
    ];
    let days = |extra: &[&str]| {
        let mut args = vec!["estimate"];
        args.extend(common);
        args.extend(extra);
        let o = xpusim(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
        let r = &v[0];
        (
            r["chips"].as_u64().unwrap_or(0),
            r["effective_train_days"].as_f64().unwrap_or(f64::NAN),
            stderr(&o) + &stdout(&o),
        )
    };
    let (hand, hand_days, _) = days(&["--chips", "256000"]);
    let (chosen, chosen_days, _) = days(&["--max-chips", "1000000"]);
    assert_eq!(hand, 256_000);
    assert!(chosen <= 1_000_000 && chosen > 0);
    // Equal up to placement: the same layout in 128-chip domains rather than 144-chip ones.
    assert!(
        chosen_days <= hand_days * (1.0 + 1e-3),
        "{chosen} chips: {chosen_days} vs {hand_days} days"
    );
    let mut args = vec!["estimate"];
    args.extend(&common[..8]);
    args.extend(["--max-chips", "1000000"]);
    let text = stdout(&xpusim(&args));
    assert!(
        text.contains("chip count:")
            && (text.contains("of their 144 chips") || text.contains("whole-domain")),
        "{text}"
    );
}

/// `--logarithmic-collectives` (NCCL 2.23's PAT, trees across domains) shortens data-parallel
/// collectives over many replicas, whose rings pay a scale-out latency per rank, and changes
/// nothing for a job inside one domain.
#[test]
fn logarithmic_collectives_cut_data_parallel_latency_at_scale() {
    let step = |extra: &[&str], chips: &str, tp: &str| {
        let mut args = vec![
            "estimate",
            "--model",
            "llama3-70b",
            "--hardware",
            "h100-sxm",
            "--chips",
            chips,
            "--tp",
            tp,
            "--pp",
            "1",
            "--global-batch",
            "4096",
            "--zero",
            "3",
            "--format",
            "json",
        ];
        args.extend(extra);
        let o = xpusim(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
        v[0]["breakdown"]["dp_comm_s"].as_f64().unwrap_or(f64::NAN)
    };
    let ring = step(&[], "4096", "8");
    let log = step(&["--logarithmic-collectives"], "4096", "8");
    assert!(log < 0.9 * ring, "DP over 512 domains: {log} vs {ring} s");
    let inside = step(&[], "8", "1");
    let inside_log = step(&["--logarithmic-collectives"], "8", "1");
    assert!(inside > 0.0 && (inside - inside_log).abs() <= 1e-12 * inside);
}

/// A CSV part whose every case failed has only `hardware,chips,error`; merging places its rows
/// under the full header, byte for byte the unsharded output.
#[test]
fn a_part_of_failed_cases_merges_under_the_full_header() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = |n: &str| dir.path().join(n).display().to_string();
    let file = p("s.toml");
    std::fs::write(
        &file,
        "schema_version = 1\nname = \"s\"\n[model]\npreset = \"llama3-8b\"\n[training]\n\
         global_batch = 64\ntokens = 1e9\n[layout]\ntp = 8\npp = 1\nmicrobatch = 1\n\
         [[hardware]]\nid = \"h100-sxm\"\nchips_range = { from = 8, to = 32, step = 8 }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let whole = p("all.csv");
    let o = xpusim(&["run", &file, "--format", "csv", "-o", &whole]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "24 chips cannot run: {}",
        stderr(&o)
    );
    let mut parts = Vec::new();
    for i in 1..=4 {
        let part = p(&format!("p{i}.csv"));
        let shard = format!("{i}/4");
        xpusim(&[
            "run", &file, "--format", "csv", "--shard", &shard, "-o", &part,
        ]);
        parts.push(part);
    }
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
    assert!(read(&parts[2]).starts_with("hardware,chips,error\n"));
    let merged = p("m.csv");
    let mut args = vec!["merge"];
    args.extend(parts.iter().map(String::as_str));
    args.extend(["-o", &merged]);
    let o = xpusim(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&merged), read(&whole));
}

/// Issue 8: at 128k context the full-square MFU passes 100%; the row names that convention
/// and shows the causal one, which stays below 100%, beside it.
#[test]
fn long_context_mfu_is_shown_in_both_conventions() {
    let o = xpusim(&[
        "estimate",
        "--model",
        "llama3-8b",
        "--hardware",
        "tpu-v5p",
        "--chips",
        "64",
        "--global-batch",
        "64",
        "--seq-len",
        "131072",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let columns: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let full = columns.iter().position(|c| *c == "MFU s²");
    let causal = columns.iter().position(|c| *c == "MFU causal");
    assert!(full.is_some() && causal.is_some(), "{header}");
    let row = lines.nth(1).unwrap_or_default();
    let pcts: Vec<f64> = row
        .split_whitespace()
        .filter_map(|c| c.strip_suffix('%')?.parse().ok())
        .collect();
    // MFU s², MFU causal, HFU: the first three percentages of the row.
    assert!(pcts.len() >= 3, "{row}");
    assert!(pcts[0] > 100.0, "{row}");
    assert!(pcts[1] < 100.0 && pcts[1] <= pcts[2], "{row}");
}

/// Issue 8, item 1: `--recompute-layers` beyond the layers of a pipeline chunk, or beside a
/// policy other than full, is refused with the flag and the reason; within them it runs.
#[test]
fn issue_8_recompute_layers_beyond_a_chunk_is_refused() {
    let base = [
        "estimate",
        "--model",
        "llama3-70b",
        "--hardware",
        "h100-sxm",
        "--chips",
        "64",
        "--global-batch",
        "64",
        "--tp",
        "8",
        "--pp",
        "4",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        xpusim(&a)
    };
    // 80 layers on 4 stages: 20 per chunk.
    let o = with(&["--recompute-layers", "21"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--recompute-layers") && err.contains("21 exceeds the 20 layers"),
        "{err}"
    );
    let o = with(&["--recompute", "selective", "--recompute-layers", "4"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("needs recompute = \"full\""), "{err}");
    let o = with(&["--recompute", "full", "--recompute-modules", "layernorm"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--recompute-modules"), "{}", stderr(&o));
    let o = with(&["--recompute-layers", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("full:20"), "{}", stdout(&o));
    let o = with(&["--recompute-modules", "layernorm,moe_act"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("selective+moe-act+layernorm"),
        "{}",
        stdout(&o)
    );
}
