//! `xpusim merge`: join the outputs of `run --shard 1/N ... N/N` back into the scenario's order.
//!
//! Shard `I` holds cases `I-1, I-1+N, I-1+2N, ...`, so taking one row from each shard in turn
//! restores the order of the file. JSON outputs (arrays of rows, read whole) and CSV outputs (one
//! header; streamed, so parts of any size merge in flat memory) are accepted; all files must be of
//! one kind.

use crate::{emit, Destination};
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
    let mut json = Vec::new();
    for f in files {
        let mut head = [0u8; 64];
        let n = std::fs::File::open(f)
            .and_then(|mut h| std::io::Read::read(&mut h, &mut head))
            .with_context(|| format!("{}: cannot read", f.display()))?;
        json.push(
            String::from_utf8_lossy(&head[..n])
                .trim_start()
                .starts_with('['),
        );
    }
    if json.iter().any(|j| *j) && !json.iter().all(|j| *j) {
        bail!("give parts of one kind: some of these files are JSON arrays and some are not");
    }
    if json.iter().all(|j| *j) {
        let texts = files
            .iter()
            .map(|f| read_input(f).map_err(anyhow::Error::from))
            .collect::<Result<Vec<_>>>()?;
        let shards = files
            .iter()
            .zip(&texts)
            .map(|(f, t)| {
                serde_json::from_str::<Vec<serde_json::Value>>(t)
                    .with_context(|| format!("{}: not a JSON array of rows", f.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        check_sizes(files, &shards.iter().map(Vec::len).collect::<Vec<_>>())?;
        return emit(
            &(serde_json::to_string_pretty(&interleave(&shards))? + "\n"),
            output.as_ref(),
        );
    }
    merge_csv(files, output.as_ref())
}

/// CSV parts are merged as they are read, a row from each in turn, so parts of any size join in
/// flat memory (JSON parts are read whole, up to the input limit each).
fn merge_csv(files: &[PathBuf], output: Option<&OutputPath>) -> Result<()> {
    // A part whose every case failed has the short header `hardware,chips,error` (no row gave
    // the columns); its rows are placed under the others' full header by name, as the unsharded
    // run writes them.
    let short = csv::StringRecord::from(vec!["hardware", "chips", "error"]);
    let mut readers = Vec::new();
    let mut headers = Vec::new();
    for f in files {
        let mut r =
            csv::Reader::from_path(f).with_context(|| format!("{}: cannot read", f.display()))?;
        let h = r
            .headers()
            .with_context(|| format!("{}: not CSV with a header (nor a JSON array)", f.display()))?
            .clone();
        headers.push(h);
        readers.push(r.into_records());
    }
    let full = headers
        .iter()
        .find(|h| **h != short)
        .unwrap_or(&short)
        .clone();
    for (f, h) in files.iter().zip(&headers) {
        if *h != full && *h != short {
            bail!(
                "{}: its CSV header differs from {}'s",
                f.display(),
                files[0].display()
            );
        }
    }
    let place = |h: &csv::StringRecord, rec: &csv::StringRecord| -> csv::StringRecord {
        if *h == full {
            return rec.clone();
        }
        full.iter()
            .map(|col| {
                h.iter()
                    .position(|c| c == col)
                    .and_then(|i| rec.get(i))
                    .unwrap_or("")
            })
            .collect()
    };
    let mut sink = Destination::open(output)?;
    let mut w = csv::Writer::from_writer(&mut sink);
    w.write_record(&full)?;
    let mut sizes = vec![0usize; files.len()];
    loop {
        let mut any = false;
        for (k, r) in readers.iter_mut().enumerate() {
            if let Some(rec) = r.next() {
                let rec = rec.with_context(|| format!("{}: malformed CSV", files[k].display()))?;
                w.write_record(&place(&headers[k], &rec))?;
                sizes[k] += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    check_sizes(files, &sizes)?;
    w.flush()?;
    drop(w);
    sink.finish()
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
