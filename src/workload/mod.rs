//! What is trained: the model shape and the training setup.

mod model;
mod training;

pub use model::{parse_models, preset, presets, LayerFlops, Mlp, Model, Moe};
pub(crate) use model::{validate_models, ModelFile};
pub use training::{AttentionKernel, MainGrads, OptimizerStates, TrainingSetup};
