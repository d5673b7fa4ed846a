//! What is trained: the model shape and the training setup.

mod model;
mod spec;
mod training;

pub(crate) use model::ModelFile;
pub use model::{LayerFlops, Mla, Mlp, Model, Moe, MAX_EXPERTS, MAX_HEADS, MAX_LAYERS, MAX_WIDTH};
pub(crate) use spec::validate_models;
pub use spec::{model_from_table, parse_models, preset, presets, MODEL_KEYS};
pub use training::{
    AttentionKernel, MainGrads, MoeDispatcher, OptimizerStates, PipelineSplit, SoftwareEra,
    SoftwareSwitches, TrainingSetup, DEFAULT_MOE_LOAD_IMBALANCE, MAX_MOE_LOAD_IMBALANCE,
};
