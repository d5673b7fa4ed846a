//! `xpusim completions` and `xpusim man`: generated from the clap definitions.

use crate::args::Cli;
use anyhow::Result;
use clap::CommandFactory;

/// Completions for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "xpusim", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page, roff.
pub fn page() -> Result<String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| anyhow::anyhow!("rendering the manual page: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
