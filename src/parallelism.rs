//! Parallel layouts (data/ZeRO, tensor + sequence, pipeline, context, expert) and their validity.
//!
//! Rank order follows Megatron-LM: tensor-parallel ranks are innermost (adjacent chips), then
//! context, then data, then pipeline outermost. A group's *stride* is the product of the sizes
//! inside it; with the scale-up domain size it decides which links a collective uses
//! (see [`crate::network`]).

use crate::error::Problem;
#[cfg(test)]
use crate::error::{Error, Result};
use crate::hardware::Cluster;
use crate::request::key;
use crate::workload::{Model, TrainingSetup};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Activation recomputation (checkpointing) policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Recompute {
    /// Keep every activation.
    None,
    /// Recompute the attention core only (Korthikanti et al. 2022); free with flash attention.
    Selective,
    /// Recompute the MLP block (its norm, up-projections, activation and down-projection) from
    /// its input in backward, keeping the attention block's activations: Megatron-Core's
    /// module-level `--recompute-granularity selective --recompute-modules mlp` (dense layers)
    /// and `moe` (MoE layers), the modules [`RecomputeModule::Mlp`] and
    /// [`RecomputeModule::Moe`]; unlike the `moe` module given alone, the MoE layers' dispatch
    /// and combine are not priced again. Costs the MLP's forward FLOPs; saves its activations,
    /// the largest share of a layer's.
    Mlp,
    /// Keep only each layer's input; recompute the whole forward pass in backward.
    Full,
}

impl Recompute {
    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Selective => "selective",
            Self::Mlp => "mlp",
            Self::Full => "full",
        }
    }

    /// The modules this policy recomputes in a layer that is not fully recomputed: none,
    /// `core-attn` (selective), `mlp` and `moe` (the MLP block of every layer, dense or MoE).
    /// Full recompute recomputes whole layers; its layers outside a block
    /// ([`Layout::recompute_layers`]) recompute nothing, as in Megatron-Core, where the
    /// granularity is either full or selective.
    #[must_use]
    pub fn modules(self) -> RecomputeModules {
        match self {
            Self::None | Self::Full => RecomputeModules::EMPTY,
            Self::Selective => RecomputeModules::EMPTY.with(RecomputeModule::CoreAttn),
            Self::Mlp => RecomputeModules::EMPTY
                .with(RecomputeModule::Mlp)
                .with(RecomputeModule::Moe),
        }
    }
}

/// One module Megatron-Core can recompute on its own
/// (`--recompute-granularity selective --recompute-modules ...`; Megatron-Core
/// `TransformerConfig.recompute_modules`, releases 0.13 and later). `core-attn`, `mlp` and
/// `moe` are checkpointed (their inputs kept, the module re-run in backward); `moe-act` and
/// `layernorm` discard their outputs and recompute them from the inputs kept anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum RecomputeModule {
    /// The attention core (scores, softmax, AV): Korthikanti et al. 2022's selective
    /// recompute. Free with flash attention, whose backward recomputes the scores anyway.
    #[serde(alias = "core_attn")]
    #[cfg_attr(feature = "cli", value(alias = "core_attn"))]
    CoreAttn,
    /// The dense MLP of the dense layers (its up-projections, activation and down-projection),
    /// from its input.
    Mlp,
    /// The MLP block of the mixture-of-experts layers (router, dispatch, routed and shared
    /// experts, combine), from its input; the dispatch and combine are repeated.
    Moe,
    /// The routed experts' activation function: its output (the down-projection's input) is
    /// not kept but recomputed from the up-projection output, which is.
    #[serde(alias = "moe_act")]
    #[cfg_attr(feature = "cli", value(alias = "moe_act"))]
    MoeAct,
    /// The two norms (`input_layernorm`, `pre_mlp_layernorm`): their outputs, the inputs of the
    /// QKV projection and of the MLP, are not kept but recomputed from the residual stream.
    Layernorm,
}

impl RecomputeModule {
    /// Every module, in the order names are written.
    pub const ALL: [RecomputeModule; 5] = [
        Self::CoreAttn,
        Self::Mlp,
        Self::Moe,
        Self::MoeAct,
        Self::Layernorm,
    ];

    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CoreAttn => "core-attn",
            Self::Mlp => "mlp",
            Self::Moe => "moe",
            Self::MoeAct => "moe-act",
            Self::Layernorm => "layernorm",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`RecomputeModule`]s (written as a list: `["layernorm", "moe-act"]`).
///
/// ```
/// use xpusim::{RecomputeModule, RecomputeModules};
/// let m: RecomputeModules = [RecomputeModule::Layernorm, RecomputeModule::MoeAct].into_iter().collect();
/// assert!(m.contains(RecomputeModule::MoeAct));
/// assert_eq!(m.to_string(), "moe-act+layernorm");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<RecomputeModule>", from = "Vec<RecomputeModule>")]
pub struct RecomputeModules(u8);

impl RecomputeModules {
    /// No module.
    pub const EMPTY: RecomputeModules = RecomputeModules(0);

    /// This set with `m` added.
    #[must_use]
    pub fn with(self, m: RecomputeModule) -> Self {
        Self(self.0 | m.bit())
    }
    /// Whether `m` is in the set.
    #[must_use]
    pub fn contains(self, m: RecomputeModule) -> bool {
        self.0 & m.bit() != 0
    }
    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    /// The modules of either set.
    #[must_use]
    pub fn union(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
    /// The modules of this set that are not in `o`.
    #[must_use]
    pub fn without(self, o: Self) -> Self {
        Self(self.0 & !o.0)
    }
    /// The modules, in [`RecomputeModule::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = RecomputeModule> {
        RecomputeModule::ALL
            .into_iter()
            .filter(move |m| self.contains(*m))
    }
}

impl FromIterator<RecomputeModule> for RecomputeModules {
    fn from_iter<I: IntoIterator<Item = RecomputeModule>>(it: I) -> Self {
        it.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl From<Vec<RecomputeModule>> for RecomputeModules {
    fn from(v: Vec<RecomputeModule>) -> Self {
        v.into_iter().collect()
    }
}

impl From<RecomputeModules> for Vec<RecomputeModule> {
    fn from(m: RecomputeModules) -> Self {
        m.iter().collect()
    }
}

impl fmt::Display for RecomputeModules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(RecomputeModule::as_str).collect();
        f.write_str(&names.join("+"))
    }
}

/// ZeRO stage (Rajbhandari et al. 2020): what the data-parallel ranks shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "i64")]
pub enum ZeroStage {
    /// Nothing sharded: every rank holds all states (plain data parallelism).
    Zero,
    /// Optimizer states sharded (Megatron's distributed optimizer).
    One,
    /// Optimizer states and gradients sharded (FSDP `SHARD_GRAD_OP`).
    Two,
    /// Optimizer states, gradients and weights sharded (FSDP `FULL_SHARD`).
    Three,
}

impl ZeroStage {
    /// Every stage, in order.
    pub const ALL: [ZeroStage; 4] = [Self::Zero, Self::One, Self::Two, Self::Three];

    /// The stage number.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl From<ZeroStage> for u8 {
    fn from(z: ZeroStage) -> u8 {
        z.as_u8()
    }
}

impl TryFrom<i64> for ZeroStage {
    type Error = String;
    fn try_from(v: i64) -> std::result::Result<Self, String> {
        match v {
            0 => Ok(Self::Zero),
            1 => Ok(Self::One),
            2 => Ok(Self::Two),
            3 => Ok(Self::Three),
            _ => Err(format!("ZeRO stage must be 0, 1, 2 or 3, got {v}")),
        }
    }
}

/// Layout knobs that are pinned (`Some`) or free (`None`): the validated form of a
/// [`crate::request::LayoutRequest`], each size in `1..`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct LayoutConstraints {
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub dp: Option<u32>,
    pub cp: Option<u32>,
    pub ep: Option<u32>,
    pub microbatch: Option<u32>,
    pub virtual_stages: Option<u32>,
    pub recompute: Option<Recompute>,
    /// Modules recomputed beyond what `recompute` names.
    pub recompute_modules: Option<RecomputeModules>,
    /// With full recompute, the layers of each pipeline chunk recomputed (Megatron's block
    /// method): `Some(None)` pins "every layer".
    pub recompute_layers: Option<Option<u32>>,
    pub sequence_parallel: Option<bool>,
    pub zero: Option<ZeroStage>,
    pub zero_group: Option<u32>,
    /// Let a tensor-parallel group span scale-up domains.
    pub allow_tp_scale_out: bool,
}

impl LayoutConstraints {
    /// Whether `layout` agrees with every pinned knob.
    #[must_use]
    pub fn admits(&self, l: &Layout) -> bool {
        let eq = |c: Option<u32>, v: u32| c.is_none_or(|c| c == v);
        eq(self.tp, l.tp)
            && eq(self.pp, l.pp)
            && eq(self.dp, l.dp)
            && eq(self.cp, l.cp)
            && eq(self.ep, l.ep)
            && eq(self.microbatch, l.microbatch)
            && eq(self.virtual_stages, l.virtual_stages)
            && self.recompute.is_none_or(|r| r == l.recompute)
            && self
                .recompute_modules
                .is_none_or(|m| m.without(l.recompute.modules()) == l.recompute_modules)
            && self
                .recompute_layers
                .is_none_or(|n| n == l.recompute_layers)
            && self
                .sequence_parallel
                .is_none_or(|s| s == l.sequence_parallel)
            && self.zero.is_none_or(|z| z.as_u8() == l.zero)
            && eq(self.zero_group, l.zero_group_size())
    }
}

/// A parallel layout of one training job, valid for the cluster, model and setup it was made
/// for (built by [`crate::request::LayoutChoice::fixed`] or the search; read it with the
/// accessors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LayoutRecord")]
pub struct Layout {
    pub(crate) tp: u32,
    pub(crate) pp: u32,
    pub(crate) dp: u32,
    pub(crate) cp: u32,
    pub(crate) ep: u32,
    pub(crate) microbatch: u32,
    pub(crate) virtual_stages: u32,
    pub(crate) recompute: Recompute,
    /// Modules recomputed beyond those `recompute` names (never with `Full`).
    #[serde(skip_serializing_if = "RecomputeModules::is_empty")]
    pub(crate) recompute_modules: RecomputeModules,
    /// With `Full`: the layers of each pipeline chunk fully recomputed (Megatron's
    /// `--recompute-method block --recompute-num-layers N`), the rest keeping every
    /// activation; `None`: every layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) recompute_layers: Option<u32>,
    pub(crate) sequence_parallel: bool,
    pub(crate) zero: u8,
    /// 0 means all dp x cp ranks.
    pub(crate) zero_group: u32,
}

/// The serialized form of a [`Layout`], checked on the way in (sizes at least 1, ZeRO 0..3, the
/// ZeRO group dividing dp x cp).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutRecord {
    tp: u32,
    pp: u32,
    dp: u32,
    cp: u32,
    ep: u32,
    microbatch: u32,
    virtual_stages: u32,
    recompute: Recompute,
    #[serde(default)]
    recompute_modules: RecomputeModules,
    #[serde(default)]
    recompute_layers: Option<u32>,
    sequence_parallel: bool,
    zero: u8,
    zero_group: u32,
}

impl TryFrom<LayoutRecord> for Layout {
    type Error = String;
    fn try_from(r: LayoutRecord) -> std::result::Result<Self, String> {
        let l = Layout {
            tp: r.tp,
            pp: r.pp,
            dp: r.dp,
            cp: r.cp,
            ep: r.ep,
            microbatch: r.microbatch,
            virtual_stages: r.virtual_stages,
            recompute: r.recompute,
            recompute_modules: r.recompute_modules,
            recompute_layers: r.recompute_layers,
            sequence_parallel: r.sequence_parallel,
            zero: r.zero,
            zero_group: r.zero_group,
        };
        let sizes = [l.tp, l.pp, l.dp, l.cp, l.ep, l.microbatch, l.virtual_stages];
        if sizes.contains(&0) || l.zero > 3 {
            return Err("layout sizes must be at least 1 and zero 0..3".into());
        }
        if l.zero_group != 0 && (u64::from(l.dp) * u64::from(l.cp)) % u64::from(l.zero_group) != 0 {
            return Err("zero_group must divide dp x cp".into());
        }
        if l.recompute != Recompute::Full && l.recompute_layers.is_some() {
            return Err("recompute_layers needs recompute = \"full\"".into());
        }
        if l.recompute == Recompute::Full && !l.recompute_modules.is_empty() {
            return Err("recompute_modules cannot be combined with recompute = \"full\"".into());
        }
        Ok(l)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TP{} PP{} DP{} CP{} EP{} mb{} v{} {} ZeRO-{}{}{}",
            self.tp,
            self.pp,
            self.dp,
            self.cp,
            self.ep,
            self.microbatch,
            self.virtual_stages,
            self.recompute_label(),
            self.zero,
            if self.zero_group == 0 || self.zero_group == self.dp.saturating_mul(self.cp) {
                String::new()
            } else {
                format!("/{}", self.zero_group)
            },
            if self.sequence_parallel { " SP" } else { "" }
        )
    }
}

impl Layout {
    /// Pure data parallelism over `chips` chips, micro-batch 1, no recompute (unit tests).
    #[cfg(test)]
    pub(crate) fn data_parallel(chips: u32) -> Self {
        Self {
            tp: 1,
            pp: 1,
            dp: chips.max(1),
            cp: 1,
            ep: 1,
            microbatch: 1,
            virtual_stages: 1,
            recompute: Recompute::None,
            recompute_modules: RecomputeModules::EMPTY,
            recompute_layers: None,
            sequence_parallel: false,
            zero: 1,
            zero_group: 0,
        }
    }

    /// [`Layout::check`] as a `Result` (unit tests).
    #[cfg(test)]
    pub(crate) fn validate(
        &self,
        model: &Model,
        cluster: &Cluster,
        setup: &TrainingSetup,
        allow_tp_scale_out: bool,
    ) -> Result<()> {
        let problems = self.check(model, cluster, setup, allow_tp_scale_out, "layout");
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Input { problems })
        }
    }

    /// Tensor-parallel size.
    #[must_use]
    pub fn tp(&self) -> u32 {
        self.tp
    }
    /// Pipeline-parallel size.
    #[must_use]
    pub fn pp(&self) -> u32 {
        self.pp
    }
    /// Data-parallel size.
    #[must_use]
    pub fn dp(&self) -> u32 {
        self.dp
    }
    /// Context-parallel size.
    #[must_use]
    pub fn cp(&self) -> u32 {
        self.cp
    }
    /// Expert-parallel size (drawn from the data x context x tensor ranks, as in Megatron-Core).
    #[must_use]
    pub fn ep(&self) -> u32 {
        self.ep
    }
    /// Sequences per micro-batch.
    #[must_use]
    pub fn microbatch(&self) -> u32 {
        self.microbatch
    }
    /// Interleaved pipeline chunks per rank (1 = plain 1F1B).
    #[must_use]
    pub fn virtual_stages(&self) -> u32 {
        self.virtual_stages
    }
    /// Activation recomputation.
    #[must_use]
    pub fn recompute(&self) -> Recompute {
        self.recompute
    }
    /// Modules recomputed beyond those [`Layout::recompute`] names.
    #[must_use]
    pub fn recompute_modules(&self) -> RecomputeModules {
        self.recompute_modules
    }
    /// With full recompute, the layers of each pipeline chunk that are recomputed (the rest
    /// keep every activation); `None`: every layer.
    #[must_use]
    pub fn recompute_layers(&self) -> Option<u32> {
        self.recompute_layers
    }
    /// Every module recomputed in a layer that is not fully recomputed: those
    /// [`Layout::recompute`] names and [`Layout::recompute_modules`].
    #[must_use]
    pub fn recomputed_modules(&self) -> RecomputeModules {
        self.recompute.modules().union(self.recompute_modules)
    }
    /// The recompute setting as a table writes it: the policy, `full:N` for a block of `N`
    /// layers per chunk, and `+module` for each module beyond the policy's
    /// (`selective+layernorm+moe-act`).
    #[must_use]
    pub fn recompute_label(&self) -> String {
        let mut s = self.recompute.as_str().to_string();
        if let Some(n) = self.recompute_layers {
            s.push_str(&format!(":{n}"));
        }
        for m in self.recompute_modules.iter() {
            s.push('+');
            s.push_str(m.as_str());
        }
        s
    }
    /// Megatron sequence parallelism (norms and dropout split across the TP group).
    #[must_use]
    pub fn sequence_parallel(&self) -> bool {
        self.sequence_parallel
    }
    /// ZeRO stage.
    #[must_use]
    pub fn zero(&self) -> ZeroStage {
        ZeroStage::ALL[usize::from(self.zero.min(3))]
    }

    /// Ranks the ZeRO state is sharded over (the ZeRO group, or all dp x cp ranks).
    #[must_use]
    pub fn zero_group_size(&self) -> u32 {
        if self.zero_group == 0 {
            self.dp.saturating_mul(self.cp).max(1)
        } else {
            self.zero_group
        }
    }

    /// Chips the layout occupies (saturating; equal to the cluster's for a valid layout).
    #[must_use]
    pub fn chips(&self) -> u64 {
        product(&[self.tp, self.pp, self.dp, self.cp]).unwrap_or(u64::MAX)
    }

    /// Micro-batches per pipeline per step.
    #[must_use]
    pub fn microbatches(&self, setup: &TrainingSetup) -> u64 {
        setup.global_batch / (u64::from(self.dp) * u64::from(self.microbatch)).max(1)
    }

    /// Layers on the most loaded pipeline rank (all its virtual chunks).
    #[must_use]
    pub fn layers_per_stage(&self, model: &Model) -> u64 {
        let chunks = (u64::from(self.pp) * u64::from(self.virtual_stages)).max(1);
        u64::from(model.layers).div_ceil(chunks) * u64::from(self.virtual_stages)
    }

    /// Every rule the layout breaks on this cluster, model and setup, keyed under `prefix`
    /// (`layout.tp`, ...). Empty when the layout is valid.
    ///
    /// `allow_tp_scale_out` permits a tensor-parallel group to span scale-up domains.
    #[must_use]
    pub fn check(
        &self,
        model: &Model,
        cluster: &Cluster,
        setup: &TrainingSetup,
        allow_tp_scale_out: bool,
        prefix: &str,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        self.rules(model, cluster, setup, allow_tp_scale_out, &mut |k, why| {
            out.push(Problem::new(key(prefix, k), why()));
        });
        out
    }

    /// Whether [`Layout::check`] finds nothing (no message is built: the search's fast path).
    #[must_use]
    pub fn is_valid(
        &self,
        model: &Model,
        cluster: &Cluster,
        setup: &TrainingSetup,
        allow_tp_scale_out: bool,
    ) -> bool {
        let mut ok = true;
        self.rules(model, cluster, setup, allow_tp_scale_out, &mut |_, _| {
            ok = false
        });
        ok
    }

    /// The layout rules, in one place; `fail` gets the knob at fault and the reason, built lazily.
    fn rules(
        &self,
        model: &Model,
        cluster: &Cluster,
        setup: &TrainingSetup,
        allow_tp_scale_out: bool,
        fail: &mut dyn FnMut(&'static str, &dyn Fn() -> String),
    ) {
        let sizes = [
            ("tp", self.tp),
            ("pp", self.pp),
            ("dp", self.dp),
            ("cp", self.cp),
            ("ep", self.ep),
            ("microbatch", self.microbatch),
            ("virtual_stages", self.virtual_stages),
        ];
        let mut zero_size = false;
        for (name, v) in sizes {
            if v == 0 {
                zero_size = true;
                fail(name, &|| "must be at least 1".to_string());
            }
        }
        if zero_size {
            return;
        }
        let (tp, pp, dp, cp, ep) = (
            u64::from(self.tp),
            u64::from(self.pp),
            u64::from(self.dp),
            u64::from(self.cp),
            u64::from(self.ep),
        );
        if self.zero > 3 {
            fail("zero", &|| format!("must be 0..3, got {}", self.zero));
        }
        let replicas = dp * cp;
        if self.zero_group != 0 && replicas % u64::from(self.zero_group) != 0 {
            fail("zero_group", &|| {
                format!("{} does not divide dp x cp = {replicas}", self.zero_group)
            });
        }
        if product(&[self.tp, self.pp, self.dp, self.cp]) != Some(cluster.chips) {
            fail("dp", &|| {
                format!(
                    "tp x pp x dp x cp = {} x {} x {} x {} does not equal the cluster's {} chips",
                    self.tp, self.pp, self.dp, self.cp, cluster.chips
                )
            });
        }
        if u64::from(model.heads) % tp != 0 {
            fail("tp", &|| {
                format!("{} attention heads do not divide by tp {tp}", model.heads)
            });
        }
        let kv = u64::from(model.kv_heads);
        if kv % tp != 0 && tp % kv != 0 {
            fail("tp", &|| {
                format!("{kv} key/value heads and tp {tp} do not divide either way")
            });
        }
        if !model.ffn.is_multiple_of(tp) {
            fail("tp", &|| {
                format!("ffn {} does not divide by tp {tp}", model.ffn)
            });
        }
        let chunks = pp * u64::from(self.virtual_stages);
        if u64::from(model.layers) < chunks {
            fail("pp", &|| {
                format!(
                    "{} layers cannot fill pp x virtual_stages = {chunks} pipeline chunks",
                    model.layers
                )
            });
        }
        if let Some(n) = self.recompute_layers {
            if self.recompute != Recompute::Full {
                fail("recompute_layers", &|| {
                    format!(
                        "recompute_layers needs recompute = \"full\", got \"{}\"",
                        self.recompute.as_str()
                    )
                });
            } else {
                let most = max_chunk_layers(u64::from(model.layers), self, setup);
                if u64::from(n) > most {
                    fail("recompute_layers", &|| {
                        format!(
                            "{n} exceeds the {most} layers of a pipeline chunk ({} layers on pp x virtual_stages = {chunks} chunks)",
                            model.layers
                        )
                    });
                }
            }
        }
        if self.recompute == Recompute::Full && !self.recompute_modules.is_empty() {
            fail("recompute_modules", &|| {
                format!(
                    "[{}] cannot be combined with recompute = \"full\", which recomputes whole layers",
                    self.recompute_modules
                )
            });
        }
        if self.virtual_stages > 1 && self.pp == 1 {
            fail("virtual_stages", &|| {
                "virtual_stages > 1 needs pp > 1".into()
            });
        }
        let per_step = dp * u64::from(self.microbatch);
        if !setup.global_batch.is_multiple_of(per_step) {
            fail("microbatch", &|| {
                format!(
                    "global batch {} is not a multiple of dp x microbatch = {per_step}",
                    setup.global_batch
                )
            });
        } else if self.virtual_stages > 1 && !(setup.global_batch / per_step).is_multiple_of(pp) {
            fail("virtual_stages", &|| {
                format!(
                    "the interleaved schedule needs micro-batches per pipeline ({}) divisible by pp ({pp})",
                    setup.global_batch / per_step
                )
            });
        }
        if !setup.seq_len.is_multiple_of(cp) {
            fail("cp", &|| {
                format!(
                    "sequence length {} does not divide by cp {cp}",
                    setup.seq_len
                )
            });
        }
        match &model.moe {
            None if ep > 1 => fail("ep", &|| {
                format!("ep {ep} needs a mixture-of-experts model")
            }),
            Some(m) => {
                if u64::from(m.experts) % ep != 0 {
                    fail("ep", &|| {
                        format!("{} experts do not divide by ep {ep}", m.experts)
                    });
                }
                let pool = dp * cp * tp;
                if pool % ep != 0 {
                    fail("ep", &|| {
                        format!("ep {ep} must divide dp x cp x tp = {pool}")
                    });
                }
            }
            None => {}
        }
        if self.sequence_parallel && self.tp == 1 {
            fail("sequence_parallel", &|| {
                "sequence_parallel needs tp > 1".into()
            });
        }
        if !allow_tp_scale_out && tp > 1 {
            let d = cluster.domain_chips;
            if tp > d || !d.is_multiple_of(tp) {
                fail("tp", &|| {
                    format!(
                        "tp {tp} does not fit inside the {d}-chip scale-up domain of {} (allow it explicitly to span the scale-out network)",
                        cluster.system.id
                    )
                });
            }
        }
    }
}

/// Layers of the largest pipeline chunk: `⌈L / (pp·v)⌉`, or `⌈(L + 2) / (pp·v)⌉` when the
/// ends hold one layer fewer (see [`crate::workload::PipelineSplit`]), one less again with two
/// stages of one chunk each (both are ends).
pub(crate) fn max_chunk_layers(layers: u64, l: &Layout, setup: &TrainingSetup) -> u64 {
    let chunks = (u64::from(l.pp) * u64::from(l.virtual_stages)).max(1);
    if l.pp > 1 && setup.pipeline_split == crate::workload::PipelineSplit::OneFewerAtEnds {
        let widest = (layers + 2).div_ceil(chunks);
        if l.pp == 2 && l.virtual_stages == 1 {
            widest.saturating_sub(1).max(1)
        } else {
            widest
        }
    } else {
        layers.div_ceil(chunks)
    }
}

/// The product of sizes, or `None` when it overflows `u64`.
fn product(sizes: &[u32]) -> Option<u64> {
    sizes
        .iter()
        .try_fold(1u64, |acc, &x| acc.checked_mul(u64::from(x)))
}
