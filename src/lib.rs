//! xpusim: performance, cost and energy of training large models on accelerator clusters.
#![allow(missing_docs)]
pub mod error;
pub mod hardware;
pub mod units;
pub use error::{Error, Result};
