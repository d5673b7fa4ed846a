//! `xpusim calibrate` and `xpusim validate`: measured runs.

use crate::{calibration, emit};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use xpusim::io::{read_input, OutputPath};
use xpusim::report::{self, TextFormat};
use xpusim::{calibrate as fit, compare, cross_validate, load_runs, Catalog, Run};

/// Where `validate` looks without arguments.
const DEFAULT_RUNS: &str = "tests/data/validation";

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list the folder", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        bail!("runs: no run files given (or the folders hold no .toml files)");
    }
    Ok(out)
}

pub fn calibrate(catalog: &Catalog, runs: &[PathBuf], output: &Path) -> Result<()> {
    let files = expand(runs)?;
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let output = OutputPath::check(output, &inputs)?;
    let runs = load_runs(&files, catalog)?;
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let samples: Vec<_> = runs.iter().map(Run::sample).collect();
    let cal = fit(&samples, &format!("xpusim calibrate {}", names.join(" ")))?;
    output.write(cal.to_toml()?.as_bytes())?;
    let cmp = compare(&runs, &cal);
    let text = format!(
        "{}\n{}wrote {}\n",
        report::calibration_table(&cal, false),
        report::residual_table(&runs, &cmp),
        output.path().display()
    );
    emit(&text, None)
}

pub fn validate(
    catalog: &Catalog,
    runs: &[PathBuf],
    calibration_file: Option<&Path>,
    format: TextFormat,
    holdout: bool,
    update_readme: Option<&Path>,
) -> Result<()> {
    let runs = if runs.is_empty() {
        vec![PathBuf::from(DEFAULT_RUNS)]
    } else {
        runs.to_vec()
    };
    let files = expand(&runs)?;
    // Check the README first: a failing run must leave it untouched.
    let readme = match update_readme {
        Some(p) => {
            let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            Some((OutputPath::check(p, &inputs)?, read_input(p)?))
        }
        None => None,
    };
    let runs = load_runs(&files, catalog)?;
    let cmp = if holdout {
        cross_validate(&runs)?
    } else {
        compare(&runs, &calibration(calibration_file)?)
    };
    if format == TextFormat::Json && readme.is_none() {
        return emit(&format!("{}\n", serde_json::to_string_pretty(&cmp)?), None);
    }
    let markdown = readme.is_some() || format == TextFormat::Markdown;
    let table = report::comparison_table(&runs, &cmp, markdown);
    let summary = report::summarise(&runs, &cmp);
    let Some((out, mut text)) = readme else {
        return emit(&format!("{table}\n{summary}"), None);
    };
    if !holdout {
        let cal = calibration(calibration_file)?;
        text = replace_section(
            out.path(),
            &text,
            "calibration",
            &report::calibration_table(&cal, true),
        )?;
    }
    let (marker, body) = if holdout {
        ("holdout", summary)
    } else {
        (
            "validation",
            format!(
                "{summary}\n<details><summary>All {} runs</summary>\n\n{table}\n</details>\n",
                runs.len()
            ),
        )
    };
    text = replace_section(out.path(), &text, marker, &body)?;
    // One write, after every section is ready: the file is updated whole or not at all.
    out.write(text.as_bytes())?;
    eprintln!("updated {} ({marker})", out.path().display());
    Ok(())
}

/// `text` with the part between `<!-- marker:begin -->` and `<!-- marker:end -->` replaced.
fn replace_section(path: &Path, text: &str, marker: &str, body: &str) -> Result<String> {
    let (begin, end) = (
        format!("<!-- {marker}:begin -->\n"),
        format!("<!-- {marker}:end -->"),
    );
    let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
        bail!(
            "{}: markers `{}` and `{end}` not found; nothing written",
            path.display(),
            begin.trim_end()
        );
    };
    if e < b {
        bail!(
            "{}: `{end}` comes before `{}`; nothing written",
            path.display(),
            begin.trim_end()
        );
    }
    Ok(format!("{}{}{}{}", &text[..b], begin, body, &text[e..]))
}
