//! `xpusim run`: a scenario file.

use crate::args::EconomicsArgs;
use crate::{calibration, emit, Partial};
use anyhow::Result;
use std::path::Path;
use xpusim::io::{read_input, OutputPath};
use xpusim::report::{self, Format, Outcome, Row};
use xpusim::{Catalog, Scenario};

pub fn run(
    catalog: &Catalog,
    path: &Path,
    format: Format,
    output: Option<&Path>,
    calibration_file: Option<&Path>,
    economics: &EconomicsArgs,
) -> Result<()> {
    let mut inputs = vec![path];
    inputs.extend(calibration_file);
    let output = output.map(|o| OutputPath::check(o, &inputs)).transpose()?;
    let s = Scenario::parse(&path.display().to_string(), &read_input(path)?, catalog)?;
    let cal = calibration(calibration_file)?;
    let over = economics.request();
    let mut failed = 0;
    let rows: Vec<Outcome> = s
        .run(&cal, &over)
        .into_iter()
        .map(|(case, r)| match r {
            Ok((answer, economics)) => {
                let e = &answer.estimate;
                Ok(Row::new(&case.hardware, e).with_economics(e, &case.cluster.chip, &economics))
            }
            Err(reason) => {
                failed += 1;
                Err((
                    case.hardware.clone(),
                    case.cluster.chips,
                    reason.to_string(),
                ))
            }
        })
        .collect();
    let mut out = String::new();
    if format == Format::Table {
        out.push_str(&format!(
            "{}\n{}\nmodel {} ({:.1}B parameters), global batch {} x {} tokens, {:.3e} tokens, {}\n\n",
            s.name,
            s.description,
            s.model.id,
            s.model.params() / 1e9,
            s.setup.global_batch(),
            s.setup.seq_len(),
            s.setup.tokens(),
            s.setup.precision()
        ));
    }
    out.push_str(&report::render(&rows, format)?);
    emit(&out, output.as_ref())?;
    if failed > 0 {
        return Err(Partial(format!(
            "{}: {failed} of {} case(s) could not run (see the `cannot run` rows)",
            path.display(),
            rows.len()
        ))
        .into());
    }
    Ok(())
}
