//! Raw requests, as any front end writes them (command line, scenario file, run file, library
//! caller), and the one function per concept that resolves them into validated types.
//!
//! Every front end fills the same raw structs (all fields optional, integers signed so that a
//! negative value gets a clear message rather than a parse error) and calls `resolve`, which
//! returns the validated value or **every** problem at once, each with its dotted key under the
//! prefix the front end gives (`layout.tp`, `training.seq_len`, `hardware[2].chips`). The command
//! line turns keys into flags (`layout.virtual_stages` → `--virtual-stages`).
//!
//! ```
//! use xpusim::prelude::*;
//! let catalog = Catalog::builtin()?;
//! let model = xpusim::preset("gpt3-175b")?;
//! let setup = SetupRequest { global_batch: Some(1536), tokens: Some(300e9), ..Default::default() }
//!     .resolve("training", &model)
//!     .map_err(|p| Error::Input { problems: p })?;
//! assert_eq!(setup.seq_len(), 2048);
//! let bad = LayoutRequest { tp: Some(-8), pp: Some(0), ..Default::default() }.resolve("layout");
//! let keys: Vec<String> = bad.unwrap_err().into_iter().map(|p| p.key).collect();
//! assert_eq!(keys, ["layout.tp", "layout.pp"]);
//! # Ok::<(), xpusim::Error>(())
//! ```

use crate::economics::{Ownership, Pricing, Settings};
use crate::energy::Facility;
use crate::error::{Error, Problem};
use crate::hardware::{Catalog, Chip, Cluster, Precision, System};
use crate::parallelism::{
    Layout, LayoutConstraints, Recompute, RecomputeModule, RecomputeModules, ZeroStage,
};
use crate::reliability::Resilience;
use crate::units::{BytesPerSecond, Seconds, UsdPerChipHour};
use crate::workload::{
    AttentionKernel, MainGrads, Model, MoeDispatcher, OptimizerStates, PipelineSplit, SoftwareEra,
    TrainingSetup, DEFAULT_MOE_LOAD_IMBALANCE, MAX_MOE_LOAD_IMBALANCE,
};
use serde::{Deserialize, Serialize};

/// Largest cluster accepted: a thousand times the million-chip campuses the tool is built for.
pub const MAX_CHIPS: u64 = 1_000_000_000;
/// Largest size of one parallel dimension, micro-batch or interleaving factor.
pub const MAX_LAYOUT_SIZE: u64 = MAX_CHIPS;
/// Largest sequence length: 16 Mi tokens (a hundred times today's longest pre-training context).
pub const MAX_SEQ_LEN: u64 = 1 << 24;
/// Largest global batch in sequences (2^32; published batches are below 2^16).
pub const MAX_GLOBAL_BATCH: u64 = 1 << 32;
/// Largest tokens per step: 2^44 (keeps token counts exact in `f64`).
pub const MAX_TOKENS_PER_STEP: u64 = 1 << 44;
/// Largest training run in tokens (1e17, four orders of magnitude above today's largest).
pub const MAX_TOKENS: f64 = 1e17;
/// Scale-out bandwidth per chip accepted on the command line or in files, Gbit/s per direction
/// (0.001 Gbit/s for a starved-fabric what-if up to 1 Pbit/s).
pub const SCALE_OUT_GBIT_RANGE: (f64, f64) = (1e-3, 1e6);
/// PUE accepted: from a perfect 1.0 to 5 (a very old facility).
pub const PUE_RANGE: (f64, f64) = (1.0, 5.0);
/// Grid intensity accepted, kg CO2e per kWh (0 for carbon-free power; coal is about 1.0).
pub const GRID_KG_PER_KWH_RANGE: (f64, f64) = (0.0, 3.0);
/// Price accepted, USD per chip-hour (0 for sunk cost; a thousand times today's on-demand prices).
pub const PRICE_RANGE: (f64, f64) = (0.0, 10_000.0);

/// Largest facility power envelope accepted, MW (1 TW: far above any grid).
pub const MAX_POWER_MW: f64 = 1e6;
/// Largest budget accepted, USD (1e15: ten times world GDP).
pub const MAX_BUDGET_USD: f64 = 1e15;
/// Longest period a budget may be spent over, years.
pub const MAX_YEARS: f64 = 100.0;
/// Longest wall-clock limit accepted, days (100 years, as [`MAX_YEARS`]).
pub const MAX_DAYS: f64 = 36_525.0;
/// Largest energy allowance accepted, MWh ([`MAX_POWER_MW`] for [`MAX_YEARS`] is about 8.8e11).
pub const MAX_ENERGY_MWH: f64 = 1e12;
/// Tokens per parameter accepted by a compute-optimal rule: from 0.01 (far below any published
/// rule) to 100,000 (fifty times Llama 3 8B's ~1,900).
pub const TOKENS_PER_PARAM_RANGE: (f64, f64) = (0.01, 1e5);

/// A finite, positive number at most `max`, or the problem at `key`: the check of envelopes,
/// budgets and periods wherever they are read (command line or scenario file).
///
/// ```
/// use xpusim::limits::{positive_up_to, MAX_POWER_MW};
/// assert!(positive_up_to("power_mw", 2200.0, MAX_POWER_MW).is_ok());
/// assert!(positive_up_to("power_mw", -1.0, MAX_POWER_MW).is_err());
/// ```
///
/// # Errors
/// The problem, keyed `key`.
pub fn positive_up_to(key: &str, v: f64, max: f64) -> Result<f64, Problem> {
    if v.is_finite() && v > 0.0 && v <= max {
        Ok(v)
    } else {
        Err(Problem::new(
            key,
            format!("must be positive and at most {max:e}, got {v}"),
        ))
    }
}

/// The key `name` under `prefix` (`""` gives the bare name).
#[must_use]
pub fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A whole number in `1..=max`, or a problem.
pub(crate) fn count(
    p: &mut Vec<Problem>,
    prefix: &str,
    name: &str,
    v: Option<i64>,
    max: u64,
) -> Option<u64> {
    let v = v?;
    if v < 1 {
        p.push(Problem::new(
            key(prefix, name),
            format!("must be a whole number of at least 1, got {v}"),
        ));
        return None;
    }
    let v = v as u64;
    if v > max {
        p.push(Problem::new(
            key(prefix, name),
            format!("{v} is larger than the largest accepted, {max}"),
        ));
        return None;
    }
    Some(v)
}

/// A number as a person reads it: plain when moderate, scientific when huge or tiny.
fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A finite number in `lo..=hi`, or a problem.
fn bounded(
    p: &mut Vec<Problem>,
    k: String,
    v: f64,
    (lo, hi): (f64, f64),
    what: &str,
) -> Option<f64> {
    if v.is_finite() && v >= lo && v <= hi {
        Some(v)
    } else {
        p.push(Problem::new(
            k,
            format!("must be {what} between {lo} and {hi}, got {}", show(v)),
        ));
        None
    }
}

/// A parallel layout as asked: every knob optional.
///
/// Without any knob the layout is searched. With some knobs and `search_rest` unset, the others
/// take their defaults (TP, PP, CP, EP, micro-batch and interleaving 1, selective recompute,
/// ZeRO-1, sequence parallelism when TP > 1, DP from the chip count). With `search_rest = true`,
/// the given knobs are pinned and the others searched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    /// Tensor parallel.
    pub tp: Option<i64>,
    /// Pipeline parallel.
    pub pp: Option<i64>,
    /// Data parallel (default: chips / (tp · pp · cp)).
    pub dp: Option<i64>,
    /// Context parallel.
    pub cp: Option<i64>,
    /// Expert parallel.
    pub ep: Option<i64>,
    /// Sequences per micro-batch.
    pub microbatch: Option<i64>,
    /// Interleaved pipeline chunks per rank.
    pub virtual_stages: Option<i64>,
    /// Activation recomputation.
    pub recompute: Option<Recompute>,
    /// Modules recomputed beyond those `recompute` names (Megatron-Core's
    /// `--recompute-modules`; not with `full`).
    pub recompute_modules: Option<Vec<RecomputeModule>>,
    /// With `recompute = "full"`: the layers of each pipeline chunk that are recomputed, the
    /// rest keeping every activation (Megatron's `--recompute-method block
    /// --recompute-num-layers N`); default every layer.
    pub recompute_layers: Option<i64>,
    /// Megatron sequence parallelism.
    pub sequence_parallel: Option<bool>,
    /// ZeRO stage, 0 to 3.
    pub zero: Option<i64>,
    /// Ranks sharding the ZeRO state (hybrid sharding).
    pub zero_group: Option<i64>,
    /// Let a tensor-parallel group span scale-up domains.
    pub allow_tp_scale_out: Option<bool>,
    /// Search the knobs not given instead of taking their defaults.
    pub search_rest: Option<bool>,
}

impl LayoutRequest {
    /// Whether no knob is given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        let LayoutRequest {
            tp,
            pp,
            dp,
            cp,
            ep,
            microbatch,
            virtual_stages,
            recompute,
            recompute_modules,
            recompute_layers,
            sequence_parallel,
            zero,
            zero_group,
            allow_tp_scale_out: _,
            search_rest: _,
        } = self;
        [
            tp,
            pp,
            dp,
            cp,
            ep,
            microbatch,
            virtual_stages,
            zero,
            zero_group,
            recompute_layers,
        ]
        .iter()
        .all(|x| x.is_none())
            && recompute.is_none()
            && recompute_modules.is_none()
            && sequence_parallel.is_none()
    }

    /// Check each knob on its own (sizes, ZeRO stage): the rules that need the cluster, model
    /// and setup are applied when the layout is placed ([`LayoutChoice::fixed`],
    /// [`Layout::check`]).
    ///
    /// # Errors
    /// Every problem, keyed under `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<LayoutChoice, Vec<Problem>> {
        let mut p = Vec::new();
        let mut size = |name: &str, v: Option<i64>| {
            count(&mut p, prefix, name, v, MAX_LAYOUT_SIZE).map(|x| x as u32)
        };
        let c = LayoutConstraints {
            tp: size("tp", self.tp),
            pp: size("pp", self.pp),
            dp: size("dp", self.dp),
            cp: size("cp", self.cp),
            ep: size("ep", self.ep),
            microbatch: size("microbatch", self.microbatch),
            virtual_stages: size("virtual_stages", self.virtual_stages),
            zero_group: size("zero_group", self.zero_group),
            recompute: self.recompute,
            recompute_modules: None,
            recompute_layers: None,
            sequence_parallel: self.sequence_parallel,
            zero: self.zero.and_then(|z| match ZeroStage::try_from(z) {
                Ok(z) => Some(z),
                Err(reason) => {
                    p.push(Problem::new(key(prefix, "zero"), reason));
                    None
                }
            }),
            allow_tp_scale_out: self.allow_tp_scale_out.unwrap_or(false),
        };
        let mut c = c;
        let fixed = !(self.is_empty() || self.search_rest == Some(true));
        if let Some(n) = self.recompute_layers {
            match u32::try_from(n) {
                Err(_) => p.push(Problem::new(
                    key(prefix, "recompute_layers"),
                    format!(
                        "must be a whole number of layers from 0 (none) to {}, got {n}",
                        u32::MAX
                    ),
                )),
                Ok(_) if self.recompute.is_some_and(|r| r != Recompute::Full) => {
                    p.push(Problem::new(
                        key(prefix, "recompute_layers"),
                        format!(
                            "recompute_layers needs recompute = \"full\", got \"{}\"",
                            self.recompute.map_or("", Recompute::as_str)
                        ),
                    ));
                }
                // Given without a policy, it means full recompute of that block.
                Ok(n) => {
                    c.recompute = Some(Recompute::Full);
                    c.recompute_layers = Some(Some(n));
                }
            }
        } else if self.recompute == Some(Recompute::Full) && fixed {
            c.recompute_layers = Some(None);
        }
        if let Some(m) = &self.recompute_modules {
            let m: RecomputeModules = m.iter().copied().collect();
            // A fixed layout's policy defaults to selective.
            let policy = match c.recompute {
                Some(r) => r,
                None if fixed => Recompute::Selective,
                None => Recompute::None,
            };
            if policy == Recompute::Full {
                p.push(Problem::new(
                    key(prefix, "recompute_modules"),
                    format!(
                        "[{m}] cannot be combined with recompute = \"full\", which recomputes whole layers"
                    ),
                ));
            }
            // The modules the policy already names are not repeated: one spelling per layout.
            c.recompute_modules = Some(m.without(policy.modules()));
        }
        if !p.is_empty() {
            return Err(p);
        }
        Ok(if !fixed {
            LayoutChoice::Search(c)
        } else {
            LayoutChoice::Fixed(c)
        })
    }
}

/// A resolved layout request: a layout to place (missing knobs at their defaults) or the pinned
/// knobs of a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutChoice {
    /// Evaluate this layout (knobs not given take their defaults).
    Fixed(LayoutConstraints),
    /// Search every valid layout that agrees with the pinned knobs.
    Search(LayoutConstraints),
}

impl LayoutChoice {
    /// The concrete layout of a [`LayoutChoice::Fixed`] request on `cluster` for `model` and
    /// `setup`, checked against all of them.
    ///
    /// # Errors
    /// [`Error::Input`] listing every rule the layout breaks (keys under `prefix`).
    pub fn fixed(
        c: &LayoutConstraints,
        prefix: &str,
        model: &Model,
        cluster: &Cluster,
        setup: &TrainingSetup,
    ) -> Result<Layout, Error> {
        let tp = c.tp.unwrap_or(1);
        let pp = c.pp.unwrap_or(1);
        let cp = c.cp.unwrap_or(1);
        let dp = match c.dp {
            Some(d) => d,
            None => {
                let inner = u64::from(tp) * u64::from(pp) * u64::from(cp);
                if !cluster.chips.is_multiple_of(inner) {
                    return Err(Error::input(
                        key(prefix, "tp"),
                        format!(
                            "tp x pp x cp = {inner} does not divide {} chips",
                            cluster.chips
                        ),
                    ));
                }
                u32::try_from(cluster.chips / inner).map_err(|_| {
                    Error::input(key(prefix, "dp"), "chips / (tp x pp x cp) is too large")
                })?
            }
        };
        let layout = Layout {
            tp,
            pp,
            dp,
            cp,
            ep: c.ep.unwrap_or(1),
            microbatch: c.microbatch.unwrap_or(1),
            virtual_stages: c.virtual_stages.unwrap_or(1),
            recompute: c.recompute.unwrap_or(Recompute::Selective),
            recompute_modules: c.recompute_modules.unwrap_or_default(),
            recompute_layers: c.recompute_layers.flatten(),
            sequence_parallel: c.sequence_parallel.unwrap_or(tp > 1),
            zero: c.zero.unwrap_or(ZeroStage::One).as_u8(),
            zero_group: c.zero_group.unwrap_or(0),
        };
        let problems = layout.check(model, cluster, setup, c.allow_tp_scale_out, prefix);
        if problems.is_empty() {
            Ok(layout)
        } else {
            Err(Error::Input { problems })
        }
    }
}

/// The training setup as asked. `tokens` and one of `global_batch` / `global_batch_tokens` are
/// required; the rest default to a modern stack (BF16, flash attention, TP and DP communication
/// overlapped, hierarchical collectives, FP32 Adam states, BF16 gradients; sequence length of
/// the model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// Global batch in sequences.
    pub global_batch: Option<i64>,
    /// Global batch in tokens (a whole number of sequences), instead of `global_batch`.
    pub global_batch_tokens: Option<i64>,
    /// Sequence length (default: the model's).
    pub seq_len: Option<i64>,
    /// Tokens to train.
    pub tokens: Option<f64>,
    /// Number format of the linear layers (default BF16).
    pub precision: Option<Precision>,
    /// Software stack: the defaults of the switches below (default `mcore-2024`).
    pub software: Option<SoftwareEra>,
    /// Attention kernel (default: the software era's).
    pub attention: Option<AttentionKernel>,
    /// Tensor-parallel communication overlapped with GEMMs (default: the software era's).
    pub tp_comm_overlap: Option<bool>,
    /// Data-parallel communication overlapped with backward (default: the software era's).
    pub dp_comm_overlap: Option<bool>,
    /// Collectives aggregate inside a scale-up domain first (default: the software era's).
    pub hierarchical_collectives: Option<bool>,
    /// Across domains, reduce-scatter and all-gather use logarithmic algorithms (NCCL 2.23's
    /// PAT, recursive halving/doubling) and all-reduce a tree over the domains, rather than a
    /// ring whose every step pays a scale-out latency (default: the software era's; off before
    /// `mcore-2025`, as in the libraries of the published runs).
    pub logarithmic_collectives: Option<bool>,
    /// The MoE token dispatcher (default all-to-all; ignored by dense models).
    pub moe_dispatcher: Option<MoeDispatcher>,
    /// Expert-parallel dispatch and combine overlapped with another micro-batch's compute
    /// (Megatron-Core `--overlap-moe-expert-parallel-comm`, the model zoo's `A2A_OVERLAP=1`;
    /// DeepSeek's DualPipe); default false.
    pub ep_comm_overlap: Option<bool>,
    /// In FP8/FP4 training, keep the weights in FP8 and gather them in FP8 (Megatron-Core
    /// `--fp8-param-gather`, TorchAO's FSDP float8 all-gather): half the weight bytes held and
    /// all-gathered; default false.
    pub fp8_param_gather: Option<bool>,
    /// Experts split across the tensor-parallel ranks where expert parallelism divides
    /// cp × dp (default true: Megatron-Core's expert tensor parallelism defaults to tp); false
    /// keeps experts whole on each rank (ETP 1, as the DeepSeek-V3 recipes set it).
    pub expert_tensor_parallel: Option<bool>,
    /// Precision of the Adam moments (default FP32).
    pub optimizer_states: Option<OptimizerStates>,
    /// Precision of the accumulated gradients (default: the software era's).
    pub main_grads: Option<MainGrads>,
    /// Tokens routed to the most loaded expert over the mean, 1 to 64 (default
    /// [`crate::workload::DEFAULT_MOE_LOAD_IMBALANCE`], from published routing statistics).
    pub moe_load_imbalance: Option<f64>,
    /// How layers are divided among pipeline stages (default even).
    pub pipeline_split: Option<PipelineSplit>,
    /// In FP8/FP4 training, keep the linear layers' inputs for backward in that format, as
    /// Transformer Engine does (default true).
    pub low_precision_activations: Option<bool>,
    /// Share of the saved activations offloaded to host memory, 0 to 1 (default 0).
    pub offload_activations: Option<f64>,
}

impl SetupRequest {
    /// Resolve against the model (whose sequence length is the default).
    ///
    /// # Errors
    /// Every problem, keyed under `prefix`.
    pub fn resolve(&self, prefix: &str, model: &Model) -> Result<TrainingSetup, Vec<Problem>> {
        let mut p = Vec::new();
        let seq_len = match self.seq_len {
            None => Some(model.seq_len),
            s => count(&mut p, prefix, "seq_len", s, MAX_SEQ_LEN),
        };
        let batch = match (self.global_batch, self.global_batch_tokens) {
            (Some(_), Some(_)) | (None, None) => {
                p.push(Problem::new(
                    key(prefix, "global_batch"),
                    "give exactly one of global_batch (sequences) or global_batch_tokens",
                ));
                None
            }
            (g @ Some(_), None) => count(&mut p, prefix, "global_batch", g, MAX_GLOBAL_BATCH),
            (None, t @ Some(_)) => {
                let t = count(
                    &mut p,
                    prefix,
                    "global_batch_tokens",
                    t,
                    MAX_TOKENS_PER_STEP,
                );
                match (t, seq_len) {
                    (Some(t), Some(s)) if t % s == 0 => Some(t / s),
                    (Some(t), Some(s)) => {
                        p.push(Problem::new(
                            key(prefix, "global_batch_tokens"),
                            format!("{t} tokens is not a whole number of {s}-token sequences"),
                        ));
                        None
                    }
                    _ => None,
                }
            }
        };
        if let (Some(b), Some(s)) = (batch, seq_len) {
            if b.checked_mul(s).is_none_or(|x| x > MAX_TOKENS_PER_STEP) {
                p.push(Problem::new(
                    key(prefix, "global_batch"),
                    format!(
                        "{b} sequences x {s} tokens is more than {MAX_TOKENS_PER_STEP} tokens per step"
                    ),
                ));
            }
        }
        let tokens = match self.tokens {
            None => {
                p.push(Problem::new(
                    key(prefix, "tokens"),
                    "missing: tokens to train",
                ));
                None
            }
            Some(t) => bounded(
                &mut p,
                key(prefix, "tokens"),
                t,
                (1.0, MAX_TOKENS),
                "a number of tokens",
            ),
        };
        let precision = self.precision.unwrap_or(Precision::Bf16);
        if matches!(precision, Precision::Fp32 | Precision::Tf32) {
            p.push(Problem::new(
                key(prefix, "precision"),
                "training precision must be bf16, fp8 or fp4",
            ));
        }
        let imbalance = match self.moe_load_imbalance {
            None => Some(DEFAULT_MOE_LOAD_IMBALANCE),
            Some(f) => bounded(
                &mut p,
                key(prefix, "moe_load_imbalance"),
                f,
                (1.0, MAX_MOE_LOAD_IMBALANCE),
                "the most loaded expert's tokens over the mean",
            ),
        };
        let offload = match self.offload_activations {
            None => Some(0.0),
            Some(f) => bounded(
                &mut p,
                key(prefix, "offload_activations"),
                f,
                (0.0, 1.0),
                "the share of activations offloaded to host memory",
            ),
        };
        let (
            Some(global_batch),
            Some(seq_len),
            Some(tokens),
            Some(moe_load_imbalance),
            Some(offload_activations),
            true,
        ) = (batch, seq_len, tokens, imbalance, offload, p.is_empty())
        else {
            return Err(p);
        };
        let era = self.software.unwrap_or_default().switches();
        Ok(TrainingSetup {
            global_batch,
            seq_len,
            tokens,
            precision,
            attention: self.attention.unwrap_or(era.attention),
            tp_comm_overlap: self.tp_comm_overlap.unwrap_or(era.tp_comm_overlap),
            dp_comm_overlap: self.dp_comm_overlap.unwrap_or(era.dp_comm_overlap),
            hierarchical_collectives: self
                .hierarchical_collectives
                .unwrap_or(era.hierarchical_collectives),
            logarithmic_collectives: self
                .logarithmic_collectives
                .unwrap_or(era.logarithmic_collectives),
            moe_dispatcher: self.moe_dispatcher.unwrap_or_default(),
            ep_comm_overlap: self.ep_comm_overlap.unwrap_or(false),
            fp8_param_gather: self.fp8_param_gather.unwrap_or(false),
            expert_tensor_parallel: self.expert_tensor_parallel.unwrap_or(true),
            optimizer_states: self.optimizer_states.unwrap_or(OptimizerStates::Fp32),
            main_grads: self.main_grads.unwrap_or(era.main_grads),
            moe_load_imbalance,
            pipeline_split: self.pipeline_split.unwrap_or_default(),
            low_precision_activations: self.low_precision_activations.unwrap_or(true),
            offload_activations,
        })
    }
}

/// A cluster as asked: a chip or system id, a chip count and optional network overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRequest {
    /// Chip id, alias or system id.
    pub hardware: String,
    /// Chips.
    pub chips: Option<i64>,
    /// Scale-out bandwidth per chip, Gbit/s per direction (default: the system's).
    pub scale_out_gbit_per_chip: Option<f64>,
    /// Chips per scale-up domain actually used (default: the system's).
    pub domain_chips: Option<i64>,
}

impl ClusterRequest {
    /// Resolve against the catalog.
    ///
    /// # Errors
    /// Every problem, keyed under `prefix` (the id under `prefix.hardware`).
    pub fn resolve(&self, prefix: &str, catalog: &Catalog) -> Result<Cluster, Vec<Problem>> {
        let mut p = Vec::new();
        let chips = match self.chips {
            None => {
                p.push(Problem::new(
                    key(prefix, "chips"),
                    "missing: number of chips",
                ));
                None
            }
            c => count(&mut p, prefix, "chips", c, MAX_CHIPS),
        };
        let template = self.template(prefix, catalog).map_err(|e| p.extend(e)).ok();
        match (chips, template) {
            (Some(n), Some(t)) if p.is_empty() => t.with_chips(prefix, n).map_err(|e| vec![e]),
            _ => Err(p),
        }
    }

    /// Resolve everything but the chip count: the hardware and its overrides, once for many
    /// counts (a scenario's sweep).
    ///
    /// # Errors
    /// Every problem, keyed under `prefix`.
    pub fn template(
        &self,
        prefix: &str,
        catalog: &Catalog,
    ) -> Result<ClusterTemplate, Vec<Problem>> {
        let mut p = Vec::new();
        let scale_out = self.scale_out_gbit_per_chip.and_then(|g| {
            bounded(
                &mut p,
                key(prefix, "scale_out_gbit_per_chip"),
                g,
                SCALE_OUT_GBIT_RANGE,
                "Gbit/s per chip per direction",
            )
        });
        let domain = count(&mut p, prefix, "domain_chips", self.domain_chips, MAX_CHIPS);
        let hardware = match catalog.resolve(&self.hardware) {
            Ok(x) => Some(x),
            Err(e) => {
                p.push(Problem::new(key(prefix, "hardware"), e.to_string()));
                None
            }
        };
        match hardware {
            Some((chip, system)) if p.is_empty() => {
                let t = ClusterTemplate {
                    chip,
                    system,
                    scale_out: scale_out.map(BytesPerSecond::from_gbit_per_s),
                    domain,
                };
                // The overrides' own checks, on the smallest cluster they may apply to.
                t.with_chips(prefix, domain.unwrap_or(1))
                    .map_err(|e| vec![e])?;
                Ok(t)
            }
            _ => Err(p),
        }
    }
}

/// A cluster's hardware and overrides without its chip count ([`ClusterRequest::template`]).
#[derive(Clone, Debug)]
pub struct ClusterTemplate {
    chip: Chip,
    system: System,
    scale_out: Option<BytesPerSecond>,
    domain: Option<u64>,
}

impl ClusterTemplate {
    /// The cluster of `chips` chips.
    ///
    /// # Errors
    /// A problem keyed under `prefix` for a count out of range or an override that does not
    /// apply to it.
    pub fn with_chips(&self, prefix: &str, chips: u64) -> Result<Cluster, Problem> {
        let mut cluster = Cluster::new(self.chip.clone(), self.system.clone(), chips)
            .map_err(|e| Problem::new(key(prefix, "chips"), e.to_string()))?;
        if let Some(b) = self.scale_out {
            cluster = cluster
                .with_scale_out(b)
                .map_err(|e| Problem::new(key(prefix, "scale_out_gbit_per_chip"), e.to_string()))?;
        }
        if let Some(d) = self.domain {
            cluster = cluster
                .with_domain_chips(d)
                .map_err(|e| Problem::new(key(prefix, "domain_chips"), e.to_string()))?;
        }
        Ok(cluster)
    }

    /// The chip.
    #[must_use]
    pub fn chip(&self) -> &Chip {
        &self.chip
    }

    /// The scale-up system.
    #[must_use]
    pub fn system(&self) -> &System {
        &self.system
    }
}

/// Energy, cost and failure settings as asked (every one optional; defaults documented in
/// [`crate::economics`] and [`crate::reliability`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EconomicsRequest {
    /// Power usage effectiveness (default 1.15, AWS 2024).
    pub pue: Option<f64>,
    /// Grid intensity, kg CO2e per kWh (default 0.39, US 2022).
    pub grid_kg_co2_per_kwh: Option<f64>,
    /// Price, USD per chip-hour (default: the catalog's price of the pricing basis).
    pub price_usd_per_chip_hour: Option<f64>,
    /// Price basis (default on-demand).
    pub pricing: Option<Pricing>,
    /// Owned: years of depreciation (default 5).
    pub lifetime_years: Option<f64>,
    /// Owned: annual cost of capital (default 0.08).
    pub cost_of_capital: Option<f64>,
    /// Owned: electricity, USD per kWh (default 0.08).
    pub electricity_usd_per_kwh: Option<f64>,
    /// Owned: maintenance a year as a share of capital (default 0.03).
    pub maintenance_per_year: Option<f64>,
    /// Failure rates as a multiple of the Llama 3 405B rates (default 1).
    pub failure_rate_scale: Option<f64>,
    /// Checkpoint write bandwidth per chip, GB/s (default 0.122, Llama 3's 2 TB/s per 16,384).
    pub checkpoint_gb_per_s_per_chip: Option<f64>,
    /// Restart time after an interruption, minutes (default 10).
    pub restart_minutes: Option<f64>,
}

/// Ranges accepted for the owned-cost and failure settings.
pub const LIFETIME_YEARS_RANGE: (f64, f64) = (0.25, 30.0);
/// Annual cost of capital accepted (0 to 100%).
pub const COST_OF_CAPITAL_RANGE: (f64, f64) = (0.0, 1.0);
/// Electricity price accepted, USD per kWh.
pub const ELECTRICITY_RANGE: (f64, f64) = (0.0, 10.0);
/// Maintenance a year as a share of capital.
pub const MAINTENANCE_RANGE: (f64, f64) = (0.0, 1.0);
/// Failure-rate multiple accepted (0 for a failure-free what-if, up to 1000x Llama 3's).
pub const FAILURE_SCALE_RANGE: (f64, f64) = (0.0, 1000.0);
/// Checkpoint bandwidth per chip accepted, GB/s.
pub const CHECKPOINT_GB_S_RANGE: (f64, f64) = (1e-4, 1e3);
/// Restart time accepted, minutes.
pub const RESTART_MINUTES_RANGE: (f64, f64) = (0.0, 10_000.0);

impl EconomicsRequest {
    /// These settings with `over`'s given values taking precedence (command line over file).
    #[must_use]
    pub fn overridden_by(&self, over: &EconomicsRequest) -> EconomicsRequest {
        EconomicsRequest {
            pue: over.pue.or(self.pue),
            grid_kg_co2_per_kwh: over.grid_kg_co2_per_kwh.or(self.grid_kg_co2_per_kwh),
            price_usd_per_chip_hour: over
                .price_usd_per_chip_hour
                .or(self.price_usd_per_chip_hour),
            pricing: over.pricing.or(self.pricing),
            lifetime_years: over.lifetime_years.or(self.lifetime_years),
            cost_of_capital: over.cost_of_capital.or(self.cost_of_capital),
            electricity_usd_per_kwh: over
                .electricity_usd_per_kwh
                .or(self.electricity_usd_per_kwh),
            maintenance_per_year: over.maintenance_per_year.or(self.maintenance_per_year),
            failure_rate_scale: over.failure_rate_scale.or(self.failure_rate_scale),
            checkpoint_gb_per_s_per_chip: over
                .checkpoint_gb_per_s_per_chip
                .or(self.checkpoint_gb_per_s_per_chip),
            restart_minutes: over.restart_minutes.or(self.restart_minutes),
        }
    }

    /// Resolve (defaults for what is not given).
    ///
    /// # Errors
    /// Every problem, keyed under `prefix`.
    pub fn resolve(&self, prefix: &str) -> Result<Settings, Vec<Problem>> {
        let mut p = Vec::new();
        let d = Facility::default();
        let o = Ownership::default();
        let r = Resilience::default();
        let mut num = |name: &str, v: Option<f64>, default: f64, range: (f64, f64), what: &str| {
            bounded(&mut p, key(prefix, name), v.unwrap_or(default), range, what).unwrap_or(default)
        };
        let pue = num(
            "pue",
            self.pue,
            d.pue,
            PUE_RANGE,
            "a power usage effectiveness",
        );
        let grid = num(
            "grid_kg_co2_per_kwh",
            self.grid_kg_co2_per_kwh,
            d.grid_kg_co2_per_kwh,
            GRID_KG_PER_KWH_RANGE,
            "kg CO2e per kWh",
        );
        let lifetime = num(
            "lifetime_years",
            self.lifetime_years,
            o.lifetime_years,
            LIFETIME_YEARS_RANGE,
            "years",
        );
        let capital = num(
            "cost_of_capital",
            self.cost_of_capital,
            o.cost_of_capital,
            COST_OF_CAPITAL_RANGE,
            "a yearly rate",
        );
        let electricity = num(
            "electricity_usd_per_kwh",
            self.electricity_usd_per_kwh,
            o.electricity_usd_per_kwh,
            ELECTRICITY_RANGE,
            "USD per kWh",
        );
        let maintenance = num(
            "maintenance_per_year",
            self.maintenance_per_year,
            o.maintenance_per_year,
            MAINTENANCE_RANGE,
            "a yearly share of capital",
        );
        let scale = num(
            "failure_rate_scale",
            self.failure_rate_scale,
            1.0,
            FAILURE_SCALE_RANGE,
            "a multiple of the default rates",
        );
        let ckpt = num(
            "checkpoint_gb_per_s_per_chip",
            self.checkpoint_gb_per_s_per_chip,
            r.checkpoint_bandwidth_per_chip.gb_per_s(),
            CHECKPOINT_GB_S_RANGE,
            "GB/s per chip",
        );
        let restart = num(
            "restart_minutes",
            self.restart_minutes,
            r.restart.seconds() / 60.0,
            RESTART_MINUTES_RANGE,
            "minutes",
        );
        let price = self.price_usd_per_chip_hour.and_then(|x| {
            bounded(
                &mut p,
                key(prefix, "price_usd_per_chip_hour"),
                x,
                PRICE_RANGE,
                "USD per chip-hour",
            )
        });
        if price.is_some() && self.pricing == Some(Pricing::Owned) {
            p.push(Problem::new(
                key(prefix, "price_usd_per_chip_hour"),
                "a price per chip-hour is a rental price; owned cost is built from the catalog's purchase price",
            ));
        }
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Settings {
            facility: Facility {
                pue,
                grid_kg_co2_per_kwh: grid,
            },
            pricing: self.pricing.unwrap_or_default(),
            price: price.map(UsdPerChipHour::new),
            ownership: Ownership {
                lifetime_years: lifetime,
                cost_of_capital: capital,
                electricity_usd_per_kwh: electricity,
                maintenance_per_year: maintenance,
            },
            resilience: Resilience {
                rates: r.rates.scaled(scale),
                checkpoint_bandwidth_per_chip: BytesPerSecond::from_gb_per_s(ckpt),
                restart: Seconds::new(restart * 60.0),
            },
        })
    }
}

#[cfg(test)]
mod tests;
