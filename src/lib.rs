#![doc = include_str!("../README.md")]

pub mod calibration;
pub mod cost;
pub mod energy;
pub mod error;
pub mod hardware;
pub mod io;
pub mod network;
pub mod parallelism;
pub mod perf;
pub mod report;
pub mod scenario;
pub mod sweep;
pub mod units;
pub mod validation;
pub mod workload;
pub use error::{Error, Result};
