//! Bad input of every kind: mutated shipped files through every loader (no panic, ever), the
//! command-line inputs that used to crash, values that overflow after unit conversion, outputs
//! that would overwrite an input or a device, and scenarios whose cases fail.

use crate::xpusim;
use std::path::Path;
use xpusim::{Calibration, Catalog, Scenario};

/// Mutated files fed through the loaders (the issue asks for at least 10,000).
const MUTATIONS: usize = 10_000;

/// A small deterministic generator (xorshift64*), so a failure reproduces from its index.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that have broken parsers before: signs, zero, overflow, subnormals, huge integers.
const NASTY: [&str; 14] = [
    "-1",
    "0",
    "1e308",
    "1e-310",
    "4611686018427387904",
    "2147483648",
    "-9223372036854775808",
    "nan",
    "inf",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "true",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return String::new();
    }
    for _ in 0..=rng.below(3) {
        let i = rng.below(lines.len());
        match rng.below(6) {
            // Replace a value.
            0 | 1 => {
                if let Some((k, _)) = lines[i].split_once('=') {
                    lines[i] = format!("{k}= {}", NASTY[rng.below(NASTY.len())]);
                }
            }
            // Drop a line (a missing key).
            2 => {
                lines.remove(i);
                if lines.is_empty() {
                    break;
                }
            }
            // Duplicate a line (a duplicate key or table).
            3 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            // An unknown key.
            4 => lines.insert(i, format!("bogus_{} = 1", rng.below(100))),
            // Cut a line short.
            _ => {
                let l = &lines[i];
                let cut = rng.below(l.len() + 1);
                lines[i] = l.chars().take(cut).collect();
            }
        }
    }
    lines.join("\n")
}

fn shipped(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<(String, String)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
            (p.display().to_string(), text)
        })
        .collect();
    v.sort();
    v
}

/// Every loader answers every mutated shipped file with a value or an error naming the file,
/// and never panics.
#[test]
fn ten_thousand_mutated_files_never_panic_a_loader() {
    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let scenarios = shipped("scenarios");
    let catalogs = shipped("src/hardware/catalog");
    let models = shipped("src/workload/presets");
    let runs: Vec<(String, String)> = shipped("tests/data/validation")
        .into_iter()
        // The small run files: the large ones take the same paths and cost more per parse.
        .filter(|(_, t)| t.len() < 20_000)
        .collect();
    let calibration = Calibration::shipped()
        .and_then(|c| c.to_toml())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut refused = 0;
    for i in 0..MUTATIONS {
        let kind = i % 5;
        let pick = |v: &[(String, String)], rng: &mut Rng| v[rng.below(v.len())].clone();
        let (name, text) = match kind {
            0 => pick(&scenarios, &mut rng),
            1 => pick(&catalogs, &mut rng),
            2 => pick(&models, &mut rng),
            3 => pick(&runs, &mut rng),
            _ => ("calibration.toml".to_string(), calibration.clone()),
        };
        let bad = mutate(&text, &mut rng);
        let err = match kind {
            0 => Scenario::parse(&name, &bad, &catalog).err(),
            1 => {
                // User catalogs add to the built-in one; a mutated built-in file overrides it.
                let bad = bad.replace("[[chips]]", "[[chips]]\noverride = true");
                catalog.clone().with_toml_str(&name, &bad).err()
            }
            2 => {
                let a = xpusim::parse_models(&name, &bad).err();
                if let Ok(t) = bad.parse::<toml::Table>() {
                    let _ = xpusim::model_from_table(&name, "model", t);
                }
                a
            }
            3 => xpusim::parse_runs(&name, &bad, &catalog).err(),
            _ => Calibration::from_toml_str(&name, &bad).err(),
        };
        if let Some(e) = err {
            refused += 1;
            let msg = e.to_string();
            assert!(!msg.trim().is_empty(), "mutation {i}: empty error");
        }
    }
    assert!(
        refused > MUTATIONS / 4,
        "only {refused} mutations were refused"
    );
}

fn refused(args: &[&str], says: &[&str]) {
    let out = xpusim(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: `{s}` not in: {err}");
    }
}

/// The inputs that crashed (exit 101) or gave inf/NaN: each now a clear error naming the flag.
#[test]
fn inputs_that_used_to_crash_are_refused_with_the_flag() {
    let base = ["estimate", "--model", "gpt3-175b", "--hardware", "h100"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    refused(
        &with(&[
            "--chips",
            "2",
            "--pp",
            "2",
            "--virtual-stages",
            "2147483648",
            "--global-batch",
            "2",
        ]),
        &["--virtual-stages"],
    );
    refused(
        &with(&[
            "--chips",
            "4611686018427387904",
            "--global-batch",
            "4611686018427387904",
        ]),
        &["--chips", "--global-batch"],
    );
    refused(&with(&["--chips", "0"]), &["--chips"]);
    refused(&with(&["--chips", "-8"]), &["--chips"]);
    refused(&with(&["--chips", "8", "--tp", "-2"]), &["--tp"]);
    refused(&with(&["--chips", "8", "--pue", "1e308"]), &["--pue"]);
    refused(&with(&["--chips", "8", "--price", "1e308"]), &["--price"]);
    refused(&with(&["--chips", "8", "--tokens", "inf"]), &["--tokens"]);
    refused(
        &with(&["--chips", "8", "--scale-out-gbps", "1e-310"]),
        &["--scale-out-gbps"],
    );
    refused(&with(&["--chips", "8", "--zero", "7"]), &["--zero"]);
    refused(
        &with(&["--chips", "1000", "--tp", "8", "--pp", "8"]),
        &["--tp", "does not divide"],
    );
    refused(
        &with(&["--chips", "8", "--seq-len", "99999999999"]),
        &["--seq-len"],
    );
}

/// Inputs are read with a size limit: a device or an endless stream is refused, not read to
/// exhaustion.
#[test]
fn endless_inputs_are_refused() {
    refused(
        &["--catalog", "/dev/zero", "hardware", "list"],
        &["/dev/zero", "larger than"],
    );
    refused(&["run", "/dev/zero"], &["/dev/zero"]);
    refused(&["run", "/dev/urandom"], &["/dev/urandom"]);
}

fn temp_scenario(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("s.toml");
    std::fs::write(&p, body).unwrap_or_else(|e| panic!("{e}"));
    p
}

const SCENARIO: &str = r#"schema_version = 1
name = "t"
[model]
preset = "llama3-8b"
[training]
global_batch = 64
tokens = 1e9
[[hardware]]
id = "h100"
chips = [8]
"#;

/// Never over an input, never over a device; a scenario with failing cases exits 3 after writing
/// what succeeded.
#[test]
fn outputs_never_replace_an_input_or_a_device() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = temp_scenario(dir.path(), SCENARIO);
    let sp = s.to_str().unwrap_or_default();
    refused(&["run", sp, "-o", sp], &["is an input"]);
    assert_eq!(
        std::fs::read_to_string(&s).unwrap_or_default(),
        SCENARIO,
        "the input is untouched"
    );
    refused(&["run", sp, "-o", "/dev/null"], &["not a regular file"]);
    refused(
        &["run", sp, "-o", dir.path().to_str().unwrap_or_default()],
        &["not a regular file"],
    );
    let cal = dir.path().join("cal.toml");
    let out = xpusim(&[
        "calibrate",
        "tests/data/validation/bloom.toml",
        "-o",
        "tests/data/validation/bloom.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!cal.exists());
    // One case cannot run (a layout that does not divide 12 chips): exit 3, the rest written.
    let partial = temp_scenario(
        dir.path(),
        &format!(
            "{}[layout]\ntp = 8\n",
            SCENARIO.replace("chips = [8]", "chips = [8, 12]")
        ),
    );
    let out_csv = dir.path().join("out.csv");
    let out = xpusim(&[
        "run",
        partial.to_str().unwrap_or_default(),
        "--format",
        "csv",
        "-o",
        out_csv.to_str().unwrap_or_default(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(&out_csv).unwrap_or_default();
    assert_eq!(csv.lines().count(), 3, "header and both rows: {csv}");
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0, "no temporary file left behind");
}

/// A preset with overrides is explicit; a typo is refused with the nearest key; a newer schema
/// is refused.
#[test]
fn model_overrides_are_checked_and_typos_get_a_suggestion() {
    let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let ok = SCENARIO.replace(
        "preset = \"llama3-8b\"",
        "preset = \"llama3-8b\"\nlayers = 16",
    );
    let s = Scenario::parse("s.toml", &ok, &catalog).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.model.layers, 16);
    let typo = SCENARIO.replace(
        "preset = \"llama3-8b\"",
        "preset = \"llama3-8b\"\nlayres = 16",
    );
    let e = Scenario::parse("s.toml", &typo, &catalog)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("model.layres") && e.contains("did you mean `layers`"),
        "{e}"
    );
    let inline_typo = SCENARIO.replace(
        "preset = \"llama3-8b\"",
        "id = \"m\"\nlayers = 2\nd_model = 64\nheads = 4\nffn = 256\nmlp = \"gated\"\nvocab = 100\nseq_lenn = 128",
    );
    let e = Scenario::parse("s.toml", &inline_typo, &catalog)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("seq_lenn") && e.contains("did you mean `seq_len`"),
        "{e}"
    );
    let newer = Calibration::shipped()
        .and_then(|c| c.to_toml())
        .unwrap_or_default()
        .replacen("schema_version = 1", "schema_version = 2", 1);
    assert!(Calibration::from_toml_str("c.toml", &newer).is_err());
    let tiny = Calibration::shipped()
        .and_then(|c| c.to_toml())
        .unwrap_or_default()
        .replacen("matmul = 0.", "matmul = 0.0000", 1)
        .replacen("matmul = 0.0000", "matmul = 1e-310 #", 1);
    let e = Calibration::from_toml_str("c.toml", &tiny)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("efficiency.matmul"), "{e}");
}

/// Cost, power and failure settings: out-of-range values are refused with the flag, nothing run.
#[test]
fn economics_settings_are_checked() {
    let base = [
        "estimate",
        "--model",
        "llama3-8b",
        "--hardware",
        "h100",
        "--chips",
        "8",
        "--global-batch",
        "64",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    refused(&with(&["--price", "-2"]), &["--price"]);
    refused(&with(&["--pue", "0.9"]), &["--pue"]);
    refused(&with(&["--lifetime-years", "0"]), &["--lifetime-years"]);
    refused(
        &with(&["--cost-of-capital", "-0.1"]),
        &["--cost-of-capital"],
    );
    refused(
        &with(&["--failure-rate-scale", "nan"]),
        &["--failure-rate-scale"],
    );
    refused(&with(&["--restart-minutes", "-5"]), &["--restart-minutes"]);
    refused(
        &with(&["--pricing", "owned", "--price", "2"]),
        &["--price", "rental"],
    );
    let out = xpusim(&with(&["--pricing", "leased"]));
    assert_eq!(out.status.code(), Some(2), "clap lists the pricing kinds");
    assert!(String::from_utf8_lossy(&out.stderr).contains("on-demand"));
    refused(
        &["capacity", "--hardware", "trn2", "--power-mw", "-1"],
        &["--power-mw"],
    );
    refused(
        &["capacity", "--hardware", "trn2", "--budget-usd", "0"],
        &["--budget-usd"],
    );
    refused(
        &["capacity", "--hardware", "trn2"],
        &["--power-mw or --budget-usd"],
    );
}

/// `capacity` answers the seed questions: a 2.2 GW campus of Trainium2, USD 38 billion over 7
/// years of H100s.
#[test]
fn capacity_answers_power_and_budget_questions() {
    let out = xpusim(&["capacity", "--power-mw", "2200", "--hardware", "trn2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("trn2") && text.contains("2200"), "{text}");
    let out = xpusim(&[
        "capacity",
        "--budget-usd",
        "38e9",
        "--years",
        "7",
        "--hardware",
        "h100",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("h100"), "{text}");
}

/// `estimate --chips` takes a list or a doubling range: one row per count, in order.
#[test]
fn estimate_takes_a_list_or_range_of_chip_counts() {
    let out = xpusim(&[
        "estimate",
        "--model",
        "llama3-8b",
        "--hardware",
        "h100",
        "--chips",
        "8..32",
        "--global-batch",
        "256",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let chips: Vec<u64> = v
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["chips"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(chips, [8, 16, 32]);
    let out = xpusim(&[
        "estimate",
        "--model",
        "llama3-8b",
        "--hardware",
        "h100",
        "--chips",
        "8,-3",
        "--global-batch",
        "256",
    ]);
    assert_eq!(out.status.code(), Some(3), "one count runs, one cannot");
    let out = xpusim(&[
        "estimate",
        "--model",
        "llama3-8b",
        "--hardware",
        "h100",
        "--chips",
        "8..x",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
