//! The analytic training-step model.
//!
//! A step is built from first principles as a sum of *basis terms*, each a physical quantity
//! divided by a hardware peak (FLOPs / peak FLOP/s, bytes / HBM bandwidth, kernel launches,
//! bytes / link bandwidth), multiplied by one of nine efficiency parameters:
//!
//! | parameter | meaning | applies to |
//! |---|---|---|
//! | `matmul` | achieved fraction of the roofline of a well-shaped BF16 GEMM | logits, router, BF16 linear layers |
//! | `matmul_low` | the same for FP8/FP4 GEMMs | linear layers in FP8/FP4 |
//! | `memory` | achieved / peak HBM bandwidth | norms, activations, softmax, optimizer |
//! | `kernel_overhead` | fixed cost per kernel (launch, tail) | every kernel |
//! | `network` | achieved / link bandwidth of exposed collectives | TP (not overlapped), EP, DP exposed |
//! | `overlap_exposure` | fraction of overlappable traffic left exposed | TP (overlapped), CP, PP |
//! | `latency_scale` | achieved / catalog per-step link latency | the α term of every collective |
//! | `moe_fixed_us` | fixed cost per (MoE layer, micro-batch): dispatcher host sync, setup | MoE layers (in `ep_comm`) |
//! | `attention` | achieved / BF16 peak of the attention kernel's matmuls | QKᵀ and AV, forward, backward, recompute |
//!
//! Every GEMM of the linear layers and logits (forward, data and weight gradient, recompute) is
//! priced from its own shape (`gemm`): its FLOPs with tile and wave quantization on the chip's
//! matrix units, or its operand traffic when that is longer, so small and skinny GEMMs (few
//! tokens per expert) run below the fitted efficiency. MoE layers run the routed experts as a
//! grouped GEMM at the tokens the most loaded expert-parallel rank routes to each local expert
//! (the setup's load-imbalance factor), plus the router GEMM and the permutation traffic.
//!
//! The step time is linear in the inverses of the efficiencies (and the kernel cost), which is
//! what makes the calibration a least-squares fit ([`crate::calibration`]).
//!
//! Pipeline: `m` micro-batches on the slowest stage plus the 1F1B bubble `(pp-1)/v` stage-times
//! (Narayanan et al. 2021). Data-parallel reduction overlaps the last micro-batch's backward pass
//! (ZeRO-0/1) or, with FSDP's per-layer collectives (ZeRO-2/3), each micro-batch's compute; the
//! excess over the compute window is exposed, and never less than `overlap_exposure` of it.
//!
//! Placement: ranks are ordered tp innermost, then cp, dp, pp, and scale-up domains are
//! consecutive blocks of ranks. Each collective's group (a size and a stride) is priced by the
//! domains its worst-placed member set touches (`Fabric::placement` in `network`): inside
//! one domain on scale-up links only, across domains hierarchically or flat on scale-out. A
//! pipeline transfer crosses the scale-out network at the stage boundaries whose two stages
//! (`tp·cp·dp` ranks apart) sit in different domains, and the pipeline is priced by the fraction
//! of its chunk boundaries that do.
//!
//! FLOPs conventions ([`Prediction`]):
//!
//! | field | FLOPs counted | can exceed 1 |
//! |---|---|---|
//! | `mfu` | model FLOPs, attention scores over the full `s × s` square (the published runs' and the calibration's convention, [`Evaluation::model_flops`]) | yes, at long context with a causal kernel, which computes half the square |
//! | `mfu_causal` | model FLOPs, scores over the causal half | no |
//! | `hfu` | FLOPs executed: the causal half with flash attention (whose backward recomputes the scores), the full square unfused, activation recompute | no |
//!
//! Files: `theta` (the parameters and θ), `terms` (linear forms in θ), `shape` (the inputs),
//! `gemm` (one GEMM priced from its shape: tile and wave quantization, roofline), `step`
//! (compute terms and their assembly), `comm` (communication of each parallel
//! dimension), `memory` (memory per chip), `evaluate` (θ applied: breakdown and prediction).
//! A whole run is assembled in [`crate::plan`].

mod comm;
mod evaluate;
mod gemm;
mod memory;
mod shape;
mod step;
mod terms;
mod theta;

#[cfg(test)]
mod tests;

pub use evaluate::{
    evaluate, memory_band, step_if_fits, Bound, Evaluation, Prediction, StepBreakdown, StepTerms,
};
pub use gemm::MatrixUnits;
pub use memory::{memory_margin, MemoryBand, MemoryBreakdown, MEMORY_MODEL_ERROR};
pub use shape::{Machine, Shape};
#[cfg(test)]
pub(crate) use step::step_terms;
pub use terms::Terms;
pub use theta::{Efficiency, PARAMS, PARAM_NAMES};
