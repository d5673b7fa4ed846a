//! Decoder-only transformer shapes (dense and mixture-of-experts), their parameter counts and
//! FLOPs.
//!
//! FLOPs count a multiply-add as 2. Attention-score FLOPs count the full `s x s` square
//! (no causal halving), the convention of Megatron-LM, PaLM and the NVIDIA recipes for *model*
//! FLOPs; the time model separately knows that fused (flash) kernels skip the masked half.
//!
//! Multi-token prediction (MTP; DeepSeek-AI 2024, arXiv:2412.19437 §2.2): each of the
//! `mtp_modules` modules is one more transformer layer (an MoE layer when the model has any),
//! a `2d × d` projection of the concatenated hidden state and token embedding, and one more pass
//! of the shared output head. Model FLOPs include them (they run in every training step);
//! [`Model::params`] and [`Model::active_params`] exclude them, as the published 671B / 37B do,
//! and [`Model::mtp_params`] counts them (the embedding and head are shared, not counted twice).

use crate::error::{positive, Problem};
use crate::units::Flops;
use serde::{Deserialize, Serialize};

/// Most layers accepted (100x today's deepest published models).
pub const MAX_LAYERS: u64 = 10_000;
/// Most attention heads accepted.
pub const MAX_HEADS: u64 = 1 << 16;
/// Widest hidden size, head, FFN, vocabulary or latent rank accepted (2^24; today's widest FFNs
/// are about 2^17).
pub const MAX_WIDTH: u64 = 1 << 24;
/// Most experts per layer accepted.
pub const MAX_EXPERTS: u64 = 1 << 16;
/// Most multi-token-prediction modules accepted (DeepSeek-V3 trains 1; Gloeckle et al. 2024
/// study up to 8 heads).
pub const MAX_MTP_MODULES: u64 = 64;
/// Matrices of the MTP projection per `d × d`: it maps the concatenated `2d` (hidden state and
/// token embedding) to `d` (arXiv:2412.19437 §2.2, eq. 21).
const MTP_PROJECTION_SQUARES: f64 = 2.0;

/// The multi-layer perceptron form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mlp {
    /// Two matrices (GeLU, squared ReLU).
    Standard,
    /// Three matrices (SwiGLU, GeGLU).
    Gated,
}

impl Mlp {
    /// Number of `d x ffn` matrices.
    #[must_use]
    pub fn matrices(self) -> f64 {
        match self {
            Self::Standard => 2.0,
            Self::Gated => 3.0,
        }
    }
}

/// Mixture-of-experts configuration of the MLP blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Routed experts per token (top-k).
    pub active: u32,
    /// Shared experts, always active.
    #[serde(default)]
    pub shared: u32,
    /// Hidden size of one expert.
    pub expert_ffn: u64,
    /// Leading layers that are dense (use `ffn`).
    #[serde(default)]
    pub dense_layers: u32,
    /// Node-limited routing: each token's experts lie in at most this many scale-up domains
    /// (DeepSeek-V3: 4 nodes; arXiv:2412.19437 §2.1.2). 0: no limit.
    #[serde(default)]
    pub max_routed_domains: u32,
}

/// Multi-head latent attention (DeepSeek-V2/V3): queries and keys/values pass through low-rank
/// latent projections; each head's query/key has a `head_dim` part plus a shared rotary part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mla {
    /// Rank of the query compression (0: queries projected directly from the hidden state).
    #[serde(default)]
    pub q_lora_rank: u64,
    /// Rank of the joint key/value compression.
    pub kv_lora_rank: u64,
    /// Rotary part of each query/key head (added to `head_dim`).
    pub qk_rope_head_dim: u64,
    /// Size of each value head.
    pub v_head_dim: u64,
}

/// A model as written in a preset or user file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelFile {
    pub id: String,
    pub name: Option<String>,
    pub source: Option<String>,
    pub layers: i64,
    pub d_model: i64,
    pub heads: i64,
    pub kv_heads: Option<i64>,
    pub head_dim: Option<i64>,
    pub ffn: i64,
    pub mlp: Mlp,
    pub vocab: i64,
    pub seq_len: i64,
    #[serde(default)]
    pub tied_embeddings: bool,
    #[serde(default = "dropout_default")]
    pub dropout: bool,
    pub moe: Option<MoeFile>,
    pub mla: Option<MlaFile>,
    #[serde(default)]
    pub mtp_modules: i64,
}

/// A model file's `dropout` when absent: Megatron-LM's default of training with dropout (see
/// [`Model::dropout`]).
fn dropout_default() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MlaFile {
    #[serde(default)]
    q_lora_rank: i64,
    kv_lora_rank: i64,
    qk_rope_head_dim: i64,
    v_head_dim: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoeFile {
    experts: i64,
    active: i64,
    #[serde(default)]
    shared: i64,
    expert_ffn: i64,
    #[serde(default)]
    dense_layers: i64,
    #[serde(default)]
    max_routed_domains: i64,
}

/// A validated transformer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Model {
    /// Kebab-case id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where the shape comes from.
    pub source: String,
    /// Transformer layers.
    pub layers: u32,
    /// Hidden size.
    pub d_model: u64,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (GQA/MQA when fewer than `heads`).
    pub kv_heads: u32,
    /// Size of one head.
    pub head_dim: u64,
    /// MLP hidden size (dense layers).
    pub ffn: u64,
    /// MLP form.
    pub mlp: Mlp,
    /// Vocabulary size.
    pub vocab: u64,
    /// Default training sequence length.
    pub seq_len: u64,
    /// Input and output embeddings share weights.
    pub tied_embeddings: bool,
    /// The model trains with dropout (hidden and attention), so each dropout keeps a 1-byte mask
    /// for backward (Korthikanti et al. 2022 §4.1). Defaults to `true` when a file does not say:
    /// Megatron-LM's default (`--hidden-dropout 0.1`, `--attention-dropout 0.1`), the setting of
    /// the GPT-3-era runs; models trained without dropout (Llama, Mixtral, DeepSeek, Nemotron-4)
    /// say `dropout = false`.
    pub dropout: bool,
    /// Mixture-of-experts, if any.
    pub moe: Option<Moe>,
    /// Multi-head latent attention, if any (then `kv_heads` is unused).
    pub mla: Option<Mla>,
    /// Multi-token-prediction modules trained beside the main model (0: none).
    pub mtp_modules: u32,
}

/// Forward FLOPs per token of one layer, split by kind of operation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerFlops {
    /// Q, K, V and output projections.
    pub attention_linear: Flops,
    /// `QK^T` and `AV` over a context of `s` keys (full square).
    pub attention_core: Flops,
    /// MLP or routed + shared experts actually computed per token, plus the router.
    pub mlp: Flops,
}

impl LayerFlops {
    /// Sum.
    #[must_use]
    pub fn total(&self) -> Flops {
        self.attention_linear + self.attention_core + self.mlp
    }
}

impl Model {
    /// Validate a parsed model definition; `at` is its key path for messages.
    pub(crate) fn from_file(f: ModelFile, at: &str) -> std::result::Result<Self, Vec<Problem>> {
        let mut p = Vec::new();
        let layers = positive(&mut p, at, "layers", f.layers);
        let d_model = positive(&mut p, at, "d_model", f.d_model);
        let heads = positive(&mut p, at, "heads", f.heads);
        let kv_heads = positive(&mut p, at, "kv_heads", f.kv_heads.unwrap_or(f.heads));
        let head_dim = match f.head_dim {
            Some(h) => positive(&mut p, at, "head_dim", h),
            None => {
                if !d_model.is_multiple_of(heads) {
                    p.push(Problem::new(
                        format!("{at}.head_dim"),
                        format!(
                            "d_model {d_model} is not a multiple of heads {heads}; give head_dim"
                        ),
                    ));
                }
                (d_model / heads).max(1)
            }
        };
        if !heads.is_multiple_of(kv_heads) {
            p.push(Problem::new(
                format!("{at}.kv_heads"),
                format!("heads ({heads}) must be a multiple of kv_heads ({kv_heads})"),
            ));
        }
        let ffn = positive(&mut p, at, "ffn", f.ffn);
        let vocab = positive(&mut p, at, "vocab", f.vocab);
        let seq_len = positive(&mut p, at, "seq_len", f.seq_len);
        let moe = f.moe.map(|m| {
            let at = format!("{at}.moe");
            let experts = positive(&mut p, &at, "experts", m.experts);
            let active = positive(&mut p, &at, "active", m.active);
            if active > experts {
                p.push(Problem::new(
                    format!("{at}.active"),
                    format!("{active} active experts exceed the {experts} experts"),
                ));
            }
            if m.shared < 0 {
                p.push(Problem::new(format!("{at}.shared"), "must be >= 0"));
            }
            if m.dense_layers < 0 || m.dense_layers as u64 > layers {
                p.push(Problem::new(
                    format!("{at}.dense_layers"),
                    format!("must be between 0 and layers ({layers})"),
                ));
            }
            if m.max_routed_domains < 0 || m.max_routed_domains as u64 > MAX_EXPERTS {
                p.push(Problem::new(
                    format!("{at}.max_routed_domains"),
                    format!("must be between 0 (no limit) and {MAX_EXPERTS}"),
                ));
            }
            Moe {
                max_routed_domains: m.max_routed_domains.clamp(0, MAX_EXPERTS as i64) as u32,
                experts: experts.min(MAX_EXPERTS + 1) as u32,
                active: active.min(MAX_EXPERTS + 1) as u32,
                shared: m.shared.clamp(0, MAX_EXPERTS as i64 + 1) as u32,
                expert_ffn: positive(&mut p, &at, "expert_ffn", m.expert_ffn),
                dense_layers: m.dense_layers.clamp(0, u32::MAX as i64) as u32,
            }
        });
        let mla = f.mla.map(|m| {
            let at = format!("{at}.mla");
            if m.q_lora_rank < 0 {
                p.push(Problem::new(format!("{at}.q_lora_rank"), "must be >= 0"));
            }
            Mla {
                q_lora_rank: m.q_lora_rank.max(0) as u64,
                kv_lora_rank: positive(&mut p, &at, "kv_lora_rank", m.kv_lora_rank),
                qk_rope_head_dim: positive(&mut p, &at, "qk_rope_head_dim", m.qk_rope_head_dim),
                v_head_dim: positive(&mut p, &at, "v_head_dim", m.v_head_dim),
            }
        });
        if f.mtp_modules < 0 || f.mtp_modules as u64 > MAX_MTP_MODULES {
            p.push(Problem::new(
                format!("{at}.mtp_modules"),
                format!("must be between 0 and {MAX_MTP_MODULES}"),
            ));
        }
        if !is_id(&f.id) {
            p.push(Problem::new(
                format!("{at}.id"),
                "must be lowercase kebab-case",
            ));
        }
        for (key, v, max) in [
            ("layers", layers, MAX_LAYERS),
            ("heads", heads, MAX_HEADS),
            ("kv_heads", kv_heads, MAX_HEADS),
            ("d_model", d_model, MAX_WIDTH),
            ("head_dim", head_dim, MAX_WIDTH),
            ("ffn", ffn, MAX_WIDTH),
            ("vocab", vocab, MAX_WIDTH),
            ("seq_len", seq_len, crate::request::MAX_SEQ_LEN),
        ] {
            if v > max {
                p.push(Problem::new(
                    format!("{at}.{key}"),
                    format!("{v} is larger than the largest accepted, {max}"),
                ));
            }
        }
        if let Some(m) = &moe {
            for (key, v, max) in [
                ("experts", u64::from(m.experts), MAX_EXPERTS),
                ("expert_ffn", m.expert_ffn, MAX_WIDTH),
                ("shared", u64::from(m.shared), MAX_EXPERTS),
            ] {
                if v > max {
                    p.push(Problem::new(
                        format!("{at}.moe.{key}"),
                        format!("{v} is larger than the largest accepted, {max}"),
                    ));
                }
            }
        }
        if let Some(m) = &mla {
            for (key, v) in [
                ("q_lora_rank", m.q_lora_rank),
                ("kv_lora_rank", m.kv_lora_rank),
                ("qk_rope_head_dim", m.qk_rope_head_dim),
                ("v_head_dim", m.v_head_dim),
            ] {
                if v > MAX_WIDTH {
                    p.push(Problem::new(
                        format!("{at}.mla.{key}"),
                        format!("{v} is larger than the largest accepted, {MAX_WIDTH}"),
                    ));
                }
            }
        }
        if !p.is_empty() {
            return Err(p);
        }
        Ok(Self {
            name: f.name.unwrap_or_else(|| f.id.clone()),
            source: f.source.unwrap_or_else(|| "user-defined".into()),
            id: f.id,
            layers: layers.min(MAX_LAYERS) as u32,
            d_model,
            heads: heads.min(MAX_HEADS) as u32,
            kv_heads: kv_heads.min(MAX_HEADS) as u32,
            head_dim,
            ffn,
            mlp: f.mlp,
            vocab,
            seq_len,
            tied_embeddings: f.tied_embeddings,
            dropout: f.dropout,
            moe,
            mla,
            mtp_modules: f.mtp_modules.clamp(0, MAX_MTP_MODULES as i64) as u32,
        })
    }

    /// Width of all query heads (and, for MLA, of the up-projected keys).
    #[must_use]
    pub fn q_width(&self) -> f64 {
        let rope = self.mla.as_ref().map_or(0, |m| m.qk_rope_head_dim);
        self.heads as f64 * (self.head_dim + rope) as f64
    }

    /// Width of the keys plus the values, halved (the K/V tensor width per token, on average).
    #[must_use]
    pub fn kv_width(&self) -> f64 {
        match &self.mla {
            Some(m) => 0.5 * (self.q_width() + self.heads as f64 * m.v_head_dim as f64),
            None => self.kv_heads as f64 * self.head_dim as f64,
        }
    }

    /// Width of the attention output (all value heads).
    pub(crate) fn v_width(&self) -> f64 {
        match &self.mla {
            Some(m) => self.heads as f64 * m.v_head_dim as f64,
            None => self.heads as f64 * self.head_dim as f64,
        }
    }

    /// Layers whose MLP is a mixture of experts.
    #[must_use]
    pub fn moe_layers(&self) -> u32 {
        self.moe
            .as_ref()
            .map_or(0, |m| self.layers - m.dense_layers)
    }

    /// Parameters of one layer's attention block (projections; norms ignored).
    #[must_use]
    pub fn attention_params(&self) -> f64 {
        let d = self.d_model as f64;
        match &self.mla {
            None => d * (self.q_width() + 2.0 * self.kv_width()) + self.v_width() * d,
            Some(m) => {
                let heads = self.heads as f64;
                let q = if m.q_lora_rank == 0 {
                    d * self.q_width()
                } else {
                    let r = m.q_lora_rank as f64;
                    d * r + r * self.q_width()
                };
                let r = m.kv_lora_rank as f64;
                let kv = d * (r + m.qk_rope_head_dim as f64)
                    + r * heads * (self.head_dim + m.v_head_dim) as f64;
                q + kv + self.v_width() * d
            }
        }
    }

    /// Parameters of a dense MLP block.
    #[must_use]
    pub fn dense_mlp_params(&self) -> f64 {
        self.mlp.matrices() * self.d_model as f64 * self.ffn as f64
    }

    /// Parameters of one expert.
    #[must_use]
    pub fn expert_params(&self) -> f64 {
        self.moe.as_ref().map_or(0.0, |m| {
            self.mlp.matrices() * self.d_model as f64 * m.expert_ffn as f64
        })
    }

    /// Embedding parameters (input and, unless tied, output).
    #[must_use]
    pub fn embedding_params(&self) -> f64 {
        let e = self.vocab as f64 * self.d_model as f64;
        if self.tied_embeddings {
            e
        } else {
            2.0 * e
        }
    }

    /// Total parameters (all experts).
    #[must_use]
    pub fn params(&self) -> f64 {
        let l = self.layers as f64;
        let dense_l = (self.layers - self.moe_layers()) as f64;
        let moe_l = self.moe_layers() as f64;
        let (experts, shared) = self
            .moe
            .as_ref()
            .map_or((0.0, 0.0), |m| (m.experts as f64, m.shared as f64));
        let router = self
            .moe
            .as_ref()
            .map_or(0.0, |m| m.experts as f64 * self.d_model as f64);
        l * self.attention_params()
            + dense_l * self.dense_mlp_params()
            + moe_l * ((experts + shared) * self.expert_params() + router)
            + self.embedding_params()
    }

    /// Parameters of the multi-token-prediction modules: per module one transformer layer (an
    /// MoE layer, all experts, when the model has MoE layers) and its `2d × d` projection; the
    /// embedding and output head are the main model's.
    #[must_use]
    pub fn mtp_params(&self) -> f64 {
        let d = self.d_model as f64;
        let mlp = match &self.moe {
            Some(m) => {
                (m.experts as f64 + m.shared as f64) * self.expert_params() + m.experts as f64 * d
            }
            None => self.dense_mlp_params(),
        };
        self.mtp_modules as f64 * (self.attention_params() + mlp) + self.mtp_projection_params()
    }

    /// Parameters of the MTP modules' `2d × d` projections (all modules).
    #[must_use]
    pub fn mtp_projection_params(&self) -> f64 {
        let d = self.d_model as f64;
        self.mtp_modules as f64 * MTP_PROJECTION_SQUARES * d * d
    }

    /// Forward FLOPs per token of the multi-token-prediction modules at context `seq`: per
    /// module one layer, the projection and one more output-head pass.
    #[must_use]
    pub fn mtp_flops_per_token(&self, seq: u64) -> Flops {
        let d = self.d_model as f64;
        let layer = self.layer_flops_per_token(seq, self.moe.is_some()).total();
        let projection = Flops::new(2.0 * MTP_PROJECTION_SQUARES * d * d);
        (layer + projection + self.logit_flops_per_token()) * self.mtp_modules as f64
    }

    /// Parameters touched per token (routed top-k and shared experts only).
    #[must_use]
    pub fn active_params(&self) -> f64 {
        match &self.moe {
            None => self.params(),
            Some(m) => {
                let inactive = (m.experts - m.active) as f64 * self.expert_params();
                self.params() - self.moe_layers() as f64 * inactive
            }
        }
    }

    /// Forward FLOPs per token of one dense or MoE layer at context length `seq`.
    #[must_use]
    pub fn layer_flops_per_token(&self, seq: u64, moe_layer: bool) -> LayerFlops {
        let d = self.d_model as f64;
        let attention_linear = 2.0 * self.attention_params();
        // QK^T over the query/key width, AV over the value width.
        let attention_core = 2.0 * seq as f64 * (self.q_width() + self.v_width());
        let mlp = match (&self.moe, moe_layer) {
            (Some(m), true) => {
                let per_expert = 2.0 * self.mlp.matrices() * d * m.expert_ffn as f64;
                (m.active + m.shared) as f64 * per_expert + 2.0 * d * m.experts as f64
            }
            _ => 2.0 * self.mlp.matrices() * d * self.ffn as f64,
        };
        LayerFlops {
            attention_linear: Flops::new(attention_linear),
            attention_core: Flops::new(attention_core),
            mlp: Flops::new(mlp),
        }
    }

    /// Forward FLOPs per token of the output (logit) layer.
    #[must_use]
    pub fn logit_flops_per_token(&self) -> Flops {
        Flops::new(2.0 * self.d_model as f64 * self.vocab as f64)
    }

    /// Forward FLOPs per token of the whole model at context `seq`, multi-token-prediction
    /// modules included.
    #[must_use]
    pub fn forward_flops_per_token(&self, seq: u64) -> Flops {
        let dense_l = (self.layers - self.moe_layers()) as f64;
        let moe_l = self.moe_layers() as f64;
        dense_l * self.layer_flops_per_token(seq, false).total()
            + moe_l * self.layer_flops_per_token(seq, true).total()
            + self.logit_flops_per_token()
            + self.mtp_flops_per_token(seq)
    }

    /// Training *model* FLOPs per token (forward + backward = 3 x forward, no recompute).
    #[must_use]
    pub fn training_flops_per_token(&self, seq: u64) -> Flops {
        self.forward_flops_per_token(seq) * 3.0
    }

    /// The 6·N approximation per token (N = active parameters), reported beside the exact count.
    #[must_use]
    pub fn six_n_flops_per_token(&self) -> Flops {
        Flops::new(6.0 * self.active_params())
    }
}

pub(crate) fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::preset;
    use approx::assert_relative_eq;

    fn gpt3() -> Model {
        preset("gpt3-175b").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn gpt3_has_175b_parameters() {
        assert_relative_eq!(gpt3().params() / 1e9, 174.6, max_relative = 5e-3);
    }

    /// Differential test: the closed form equals an enumeration of the layer's matmuls.
    #[test]
    fn layer_flops_match_enumerated_matmuls() {
        let m = gpt3();
        let (s, d, f) = (2048.0, m.d_model as f64, m.ffn as f64);
        // (rows, inner, cols) of each forward matmul for one token, plus QK^T and AV per head.
        let matmuls: Vec<(f64, f64, f64)> = vec![
            (1.0, d, d),
            (1.0, d, d),
            (1.0, d, d), // Q, K, V
            (1.0, d, d), // output projection
            (1.0, d, f),
            (1.0, f, d), // MLP
        ];
        let linear: f64 = matmuls.iter().map(|(a, b, c)| 2.0 * a * b * c).sum();
        let core = m.heads as f64 * 2.0 * (2.0 * s * m.head_dim as f64);
        let closed = m.layer_flops_per_token(2048, false);
        assert_relative_eq!(closed.total().flops(), linear + core, max_relative = 1e-12);
    }

    /// Narayanan et al. 2021 eq. 3 without the recompute pass (x 3/4) equals our model FLOPs.
    #[test]
    fn megatron_formula_agrees() {
        let m = gpt3();
        let (b, s, l, h, v) = (1.0, 2048.0, 96.0, 12288.0, 51200.0);
        let mut m2 = m.clone();
        m2.vocab = 51200;
        let f_nar = 72.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
        let ours = m2.training_flops_per_token(2048).flops() * s;
        assert_relative_eq!(ours, f_nar, max_relative = 1e-9);
    }
}

#[cfg(test)]
mod mla_tests {
    use crate::workload::preset;
    use approx::assert_relative_eq;

    /// DeepSeek-V3 (arXiv:2412.19437 §1, §4.2): 671B parameters, 37B activated per token, 61
    /// layers of which 3 dense, 256 routed experts top-8 + 1 shared, one MTP module; the published
    /// figures exclude the MTP module. The released checkpoint holds 685B: 671B of main model and
    /// 14B of MTP module (deepseek-ai/DeepSeek-V3 README, "Model Weights"), which stores its own
    /// copies of the shared embedding and output head (2 × 0.93B): 14B within rounding
    /// (13.5B; tolerance 5%).
    #[test]
    fn deepseek_v3_has_671b_total_and_37b_active_parameters() {
        let m = preset("deepseek-v3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.layers, m.moe_layers(), m.mtp_modules), (61, 58, 1));
        let moe = m.moe.as_ref().unwrap_or_else(|| panic!("MoE"));
        assert_eq!((moe.experts, moe.active, moe.shared), (256, 8, 1));
        // Node-limited routing to at most 4 nodes (§2.1.2).
        assert_eq!(moe.max_routed_domains, 4);
        assert_relative_eq!(m.params() / 1e9, 671.0, max_relative = 0.005);
        assert_relative_eq!(m.active_params() / 1e9, 37.0, max_relative = 0.02);
        let checkpoint_mtp = m.mtp_params() + m.embedding_params();
        assert_relative_eq!(checkpoint_mtp / 1e9, 14.0, max_relative = 0.05);
    }

    /// MTP adds one MoE layer, the projection and a head pass to the forward FLOPs; without
    /// modules the model is unchanged.
    #[test]
    fn mtp_modules_add_a_layer_a_projection_and_a_head() {
        let m = preset("deepseek-v3").unwrap_or_else(|e| panic!("{e}"));
        let mut none = m.clone();
        none.mtp_modules = 0;
        let seq = 4096;
        let d = m.d_model as f64;
        let extra = m.forward_flops_per_token(seq) - none.forward_flops_per_token(seq);
        let want = m.layer_flops_per_token(seq, true).total().flops()
            + 2.0 * 2.0 * d * d
            + m.logit_flops_per_token().flops();
        assert_relative_eq!(extra.flops(), want, max_relative = 1e-12);
        assert_relative_eq!(none.mtp_params(), 0.0);
        assert_relative_eq!(none.mtp_flops_per_token(seq).flops(), 0.0);
        assert_relative_eq!(m.params(), none.params());
        // Two modules cost twice one.
        let mut two = m.clone();
        two.mtp_modules = 2;
        assert_relative_eq!(two.mtp_params(), 2.0 * m.mtp_params(), max_relative = 1e-12);
    }
}
