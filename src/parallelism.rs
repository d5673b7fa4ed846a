//! Parallel layouts (data/ZeRO, tensor + sequence, pipeline, context, expert) and their validity.
//!
//! Rank order follows Megatron-LM: tensor-parallel ranks are innermost (adjacent chips), then
//! context, then data, then pipeline outermost. A group's *stride* is the product of the sizes
//! inside it; with the scale-up domain size it decides which links a collective uses
//! (see [`crate::network`]).

use crate::error::{Error, Result};
use crate::hardware::Cluster;
use crate::workload::{Model, TrainingSetup};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Activation recomputation (checkpointing) policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recompute {
    /// Keep every activation.
    None,
    /// Recompute the attention core only (Korthikanti et al. 2022); free with flash attention.
    Selective,
    /// Keep only each layer's input; recompute the whole forward pass in backward.
    Full,
}

impl Recompute {
    /// Parse `none`, `selective`, `full`.
    ///
    /// # Errors
    /// [`Error::Input`] for other text.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "selective" => Ok(Self::Selective),
            "full" => Ok(Self::Full),
            other => Err(Error::input(
                "recompute",
                format!("unknown policy `{other}`; expected none, selective or full"),
            )),
        }
    }

    /// The kebab-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Selective => "selective",
            Self::Full => "full",
        }
    }
}

/// A parallel layout of one training job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Tensor-parallel size.
    pub tp: u32,
    /// Pipeline-parallel size.
    pub pp: u32,
    /// Data-parallel size.
    pub dp: u32,
    /// Context-parallel size.
    pub cp: u32,
    /// Expert-parallel size (drawn from the data x context x tensor ranks, as in Megatron-Core).
    pub ep: u32,
    /// Sequences per micro-batch.
    pub microbatch: u32,
    /// Interleaved pipeline chunks per rank (1 = plain 1F1B).
    pub virtual_stages: u32,
    /// Activation recomputation.
    pub recompute: Recompute,
    /// Megatron sequence parallelism (norms and dropout split across the TP group).
    pub sequence_parallel: bool,
    /// ZeRO stage: 0 none, 1 optimizer states, 2 + gradients, 3 + weights (FSDP full shard).
    pub zero: u8,
    /// Ranks that shard the ZeRO state, from the dp x cp ranks; the others hold replicas
    /// (hybrid sharding: PyTorch HSDP, MiCS, MaxText multislice). 0 means all dp x cp ranks.
    pub zero_group: u32,
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
            self.recompute.as_str(),
            self.zero,
            if self.zero_group == 0 || self.zero_group == self.dp * self.cp {
                String::new()
            } else {
                format!("/{}", self.zero_group)
            },
            if self.sequence_parallel { " SP" } else { "" }
        )
    }
}

impl Layout {
    /// Pure data parallelism over `chips` chips with micro-batch 1 and no recompute.
    #[must_use]
    pub fn data_parallel(chips: u32) -> Self {
        Self {
            tp: 1,
            pp: 1,
            dp: chips.max(1),
            cp: 1,
            ep: 1,
            microbatch: 1,
            virtual_stages: 1,
            recompute: Recompute::None,
            sequence_parallel: false,
            zero: 1,
            zero_group: 0,
        }
    }

    /// Ranks the ZeRO state is sharded over (`zero_group`, or all dp x cp ranks when 0).
    #[must_use]
    pub fn zero_group_size(&self) -> u32 {
        if self.zero_group == 0 {
            self.dp.saturating_mul(self.cp).max(1)
        } else {
            self.zero_group
        }
    }

    /// Chips the layout occupies.
    #[must_use]
    pub fn chips(&self) -> u64 {
        self.tp as u64 * self.pp as u64 * self.dp as u64 * self.cp as u64
    }

    /// Micro-batches per pipeline per step.
    #[must_use]
    pub fn microbatches(&self, setup: &TrainingSetup) -> u64 {
        setup.global_batch / (self.dp as u64 * self.microbatch as u64).max(1)
    }

    /// Layers on the most loaded pipeline rank (all its virtual chunks).
    #[must_use]
    pub fn layers_per_stage(&self, model: &Model) -> u32 {
        let chunks = self.pp * self.virtual_stages;
        model.layers.div_ceil(chunks) * self.virtual_stages
    }

    /// Check the layout against the cluster, the model and the setup; every reason at once.
    ///
    /// `allow_tp_scale_out` permits a tensor-parallel group to span scale-up domains.
    ///
    /// # Errors
    /// [`Error::Input`] with all the reasons the layout is invalid.
    pub fn validate(
        &self,
        model: &Model,
        cluster: &Cluster,
        setup: &TrainingSetup,
        allow_tp_scale_out: bool,
    ) -> Result<()> {
        let mut why = Vec::new();
        for (name, v) in [
            ("tp", self.tp),
            ("pp", self.pp),
            ("dp", self.dp),
            ("cp", self.cp),
            ("ep", self.ep),
            ("microbatch", self.microbatch),
            ("virtual_stages", self.virtual_stages),
        ] {
            if v == 0 {
                why.push(format!("{name} must be at least 1"));
            }
        }
        if !why.is_empty() {
            return Err(Error::input("layout", why.join("; ")));
        }
        if self.zero > 3 {
            why.push(format!("zero stage must be 0..3, got {}", self.zero));
        }
        let replicas = self.dp as u64 * self.cp as u64;
        if self.zero_group != 0 && replicas % self.zero_group as u64 != 0 {
            why.push(format!(
                "zero_group {} does not divide dp x cp = {replicas}",
                self.zero_group
            ));
        }
        if self.chips() != cluster.chips {
            why.push(format!(
                "tp x pp x dp x cp = {} x {} x {} x {} = {} does not equal the cluster's {} chips",
                self.tp,
                self.pp,
                self.dp,
                self.cp,
                self.chips(),
                cluster.chips
            ));
        }
        if model.heads % self.tp != 0 {
            why.push(format!(
                "{} attention heads do not divide by tp {}",
                model.heads, self.tp
            ));
        }
        if model.kv_heads % self.tp != 0 && self.tp % model.kv_heads != 0 {
            why.push(format!(
                "{} key/value heads and tp {} do not divide either way",
                model.kv_heads, self.tp
            ));
        }
        if model.ffn % self.tp as u64 != 0 {
            why.push(format!(
                "ffn {} does not divide by tp {}",
                model.ffn, self.tp
            ));
        }
        let chunks = self.pp * self.virtual_stages;
        if model.layers < chunks {
            why.push(format!(
                "{} layers cannot fill pp x virtual_stages = {chunks} pipeline chunks",
                model.layers
            ));
        }
        if self.virtual_stages > 1 && self.pp == 1 {
            why.push("virtual_stages > 1 needs pp > 1".into());
        }
        let per_step = self.dp as u64 * self.microbatch as u64;
        if setup.global_batch % per_step != 0 {
            why.push(format!(
                "global batch {} is not a multiple of dp x microbatch = {per_step}",
                setup.global_batch
            ));
        } else if self.virtual_stages > 1 && self.microbatches(setup) % self.pp as u64 != 0 {
            why.push(format!(
                "the interleaved schedule needs micro-batches per pipeline ({}) divisible by pp ({})",
                self.microbatches(setup),
                self.pp
            ));
        }
        if setup.seq_len % self.cp as u64 != 0 {
            why.push(format!(
                "sequence length {} does not divide by cp {}",
                setup.seq_len, self.cp
            ));
        }
        match &model.moe {
            None if self.ep > 1 => {
                why.push(format!("ep {} needs a mixture-of-experts model", self.ep))
            }
            Some(m) => {
                if m.experts % self.ep != 0 {
                    why.push(format!(
                        "{} experts do not divide by ep {}",
                        m.experts, self.ep
                    ));
                }
                let pool = self.dp as u64 * self.cp as u64 * self.tp as u64;
                if pool % self.ep as u64 != 0 {
                    why.push(format!("ep {} must divide dp x cp x tp = {pool}", self.ep));
                }
            }
            None => {}
        }
        if self.sequence_parallel && self.tp == 1 {
            why.push("sequence_parallel needs tp > 1".into());
        }
        if !allow_tp_scale_out && self.tp > 1 {
            let d = cluster.domain_chips;
            if self.tp as u64 > d || d % self.tp as u64 != 0 {
                why.push(format!(
                    "tp {} does not fit inside the {}-chip scale-up domain of {} (allow it explicitly to span the scale-out network)",
                    self.tp, d, cluster.system.id
                ));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(Error::input("layout", why.join("; ")))
        }
    }
}
