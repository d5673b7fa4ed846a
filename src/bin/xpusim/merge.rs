//! `xpusim merge`: join the outputs of `run --shard 1/N ... N/N` back into the scenario's order.
//!
//! Shard `I` holds cases `I-1, I-1+N, I-1+2N, ...`, so taking one row from each shard in turn
//! restores the order of the file. JSON outputs (arrays of rows) and CSV outputs (one header) are
//! accepted; all files must be of one kind.

use crate::emit;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use xpusim::io::{read_input, OutputPath};

/// Rows from shards in order, one from each in turn.
fn interleave<T: Clone>(shards: &[Vec<T>]) -> Vec<T> {
    let longest = shards.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|j| shards.iter().filter_map(move |s| s.get(j).cloned()))
        .collect()
}

/// Shards of a round-robin split hold `ceil` then `floor` of the cases: never more after fewer.
fn check_sizes(files: &[PathBuf], sizes: &[usize]) -> Result<()> {
    for (k, w) in sizes.windows(2).enumerate() {
        if w[1] > w[0] || w[0] - w[1] > 1 {
            bail!(
                "{}: {} rows after {} in {}; give the shards' files in order 1..N of one run",
                files[k + 1].display(),
                w[1],
                w[0],
                files[k].display()
            );
        }
    }
    Ok(())
}

pub fn run(files: &[PathBuf], output: Option<&Path>) -> Result<()> {
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let output = output.map(|o| OutputPath::check(o, &inputs)).transpose()?;
    let texts = files
        .iter()
        .map(|f| read_input(f).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let json = texts.iter().all(|t| t.trim_start().starts_with('['));
    let text = if json {
        let shards = files
            .iter()
            .zip(&texts)
            .map(|(f, t)| {
                serde_json::from_str::<Vec<serde_json::Value>>(t)
                    .with_context(|| format!("{}: not a JSON array of rows", f.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        check_sizes(files, &shards.iter().map(Vec::len).collect::<Vec<_>>())?;
        serde_json::to_string_pretty(&interleave(&shards))? + "\n"
    } else {
        let mut header: Option<csv::StringRecord> = None;
        let mut shards = Vec::new();
        for (f, t) in files.iter().zip(&texts) {
            let mut r = csv::Reader::from_reader(t.as_bytes());
            let h = r
                .headers()
                .with_context(|| format!("{}: not CSV with a header", f.display()))?
                .clone();
            match &header {
                Some(first) if *first != h => {
                    bail!(
                        "{}: its CSV header differs from {}'s",
                        f.display(),
                        files[0].display()
                    )
                }
                _ => header = Some(h),
            }
            let rows = r
                .records()
                .collect::<std::result::Result<Vec<_>, _>>()
                .with_context(|| format!("{}: malformed CSV", f.display()))?;
            shards.push(rows);
        }
        check_sizes(files, &shards.iter().map(Vec::len).collect::<Vec<_>>())?;
        let mut w = csv::Writer::from_writer(Vec::new());
        if let Some(h) = &header {
            w.write_record(h)?;
        }
        for row in interleave(&shards) {
            w.write_record(&row)?;
        }
        String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?
    };
    emit(&text, output.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_restores_round_robin_order() {
        let shards = vec![vec![0, 3, 6], vec![1, 4], vec![2, 5]];
        assert_eq!(interleave(&shards), (0..7).collect::<Vec<_>>());
    }
}
