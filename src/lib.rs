#![doc = include_str!("../README.md")]

mod calibration;
pub mod capacity;
mod cost;
pub mod economics;
mod energy;
pub mod error;
pub mod hardware;
pub mod inverse;
pub mod io;
mod measured;
mod network;
mod parallelism;
mod perf;
mod plan;
pub mod reliability;
pub mod report;
mod request;
mod scenario;
mod sweep;
pub mod units;
mod validation;
pub mod workload;

pub use calibration::{
    fit as calibrate, Calibration, Extent, GroupFit, Sample, MIN_FAMILY_STUDIES, MIN_GROUP_RUNS,
};
pub use cost::{catalog_price, chip_hours_for_budget, cost, PriceUsed};
pub use economics::{assess, Assessment, Objective, Pricing, Settings};
pub use energy::Facility;
pub use error::{Error, Problem, Result};
pub use hardware::{Catalog, Chip, Cluster, Precision, System};
pub use measured::{load_runs, parse_runs, FlopsConvention, Run};
pub use parallelism::{
    Layout, LayoutConstraints, Recompute, RecomputeModule, RecomputeModules, ZeroStage,
};
pub use perf::{
    memory_margin, Bound, Efficiency, MatrixUnits, MemoryBand, MemoryBreakdown, Prediction,
    StepBreakdown, MEMORY_MODEL_ERROR,
};
pub use plan::{
    estimate, run, run_in, search, search_in, Answer, Estimate, Feasibility, Job, Search,
};
pub use request::{
    ClusterRequest, ClusterTemplate, EconomicsRequest, LayoutChoice, LayoutRequest, SetupRequest,
};
pub use scenario::{Budget, Case, CaseOutcome, Scenario, Sizing};
pub use sweep::SearchSpace;
pub use validation::{compare, cross_validate, Comparison};
pub use workload::{
    model_from_table, parse_models, preset, presets, AttentionKernel, MainGrads, Model,
    MoeDispatcher, OptimizerStates, PipelineSplit, SoftwareEra, TrainingSetup,
};

/// Limits applied when requests are resolved (the largest cluster, sequence, batch...).
pub mod limits {
    pub use crate::request::{
        positive_up_to, GRID_KG_PER_KWH_RANGE, MAX_BUDGET_USD, MAX_CHIPS, MAX_DAYS, MAX_ENERGY_MWH,
        MAX_GLOBAL_BATCH, MAX_LAYOUT_SIZE, MAX_POWER_MW, MAX_SEQ_LEN, MAX_TOKENS,
        MAX_TOKENS_PER_STEP, MAX_YEARS, PRICE_RANGE, PUE_RANGE, SCALE_OUT_GBIT_RANGE,
        TOKENS_PER_PARAM_RANGE,
    };
    pub use crate::workload::{MAX_EXPERTS, MAX_HEADS, MAX_LAYERS, MAX_WIDTH};
}

/// The types most programs need: `use xpusim::prelude::*;`.
pub mod prelude {
    pub use crate::{
        estimate, run, search, Calibration, Catalog, ClusterRequest, EconomicsRequest, Error,
        Estimate, Job, Layout, LayoutConstraints, LayoutRequest, Model, Precision, Recompute,
        Scenario, SetupRequest, TrainingSetup, ZeroStage,
    };
}
