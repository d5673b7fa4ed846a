//! The command line: clap definitions only.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use xpusim::report::{Format, TextFormat};
use xpusim::{
    AttentionKernel, MainGrads, MoeDispatcher, Objective, OptimizerStates, PipelineSplit,
    Precision, Pricing, Recompute, RecomputeModule, SoftwareEra,
};

#[derive(Parser)]
#[command(
    name = "xpusim",
    version,
    about = "Simulate the time, cost and energy of training large models on accelerator clusters",
    after_help = "Exit status: 0 success; 1 bad input or I/O error (the message names the file, key or flag); \
                  2 bad command line; 3 a scenario ran but some cases could not (the others are written)."
)]
pub struct Cli {
    /// Extra catalog files (chips and systems) to add to the built-in catalog.
    #[arg(long, global = true)]
    pub catalog: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The hardware catalog.
    Hardware {
        #[command(subcommand)]
        command: HardwareCommand,
    },
    /// Built-in model presets.
    Models {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: TextFormat,
    },
    /// Estimate one training run.
    Estimate(Box<EstimateArgs>),
    /// Run a scenario file.
    Run(Box<RunArgs>),
    /// Join the outputs of `run --shard` (JSON or CSV, in shard order 1..N) into one.
    Merge {
        /// The shards' output files, in shard order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the merged output here (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// How many chips a power envelope or a budget holds, and what they train.
    Capacity(Box<CapacityArgs>),
    /// Shell completions on standard output (`xpusim completions bash > /etc/bash_completion.d/xpusim`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on standard output (`xpusim man > xpusim.1`).
    Man,
    /// Fit the efficiency parameters to measured runs and write a calibration file.
    Calibrate {
        /// Run files or folders (the format of tests/data/validation/*.toml).
        runs: Vec<PathBuf>,
        /// Where to write the calibration.
        #[arg(long, short, default_value = "calibration.toml")]
        output: PathBuf,
    },
    /// Compare predictions with measured runs (the README's error table).
    Validate {
        /// Run files or folders (default: tests/data/validation).
        runs: Vec<PathBuf>,
        /// Calibration file (default: the shipped one).
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: TextFormat,
        /// Leave-one-study-out: predict each file with a calibration fitted on the other files.
        #[arg(long)]
        holdout: bool,
        /// Write the Markdown tables into this file between its `<!-- validation:begin/end -->`
        /// (or, with --holdout, `<!-- holdout:begin/end -->`) markers.
        #[arg(long)]
        update_readme: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum HardwareCommand {
    /// Two chips or systems side by side: ratios of peaks, memory, power and FLOP per watt (per
    /// chip and per system, all-in), with the claims recorded for either.
    Compare {
        /// Chip or system id.
        a: String,
        /// Chip or system id to compare against.
        b: String,
    },
    /// List chips and systems.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: TextFormat,
    },
    /// Every figure of a chip or system, with source and status.
    Show {
        /// Chip id, alias or system id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: TextFormat,
    },
}

/// `estimate`'s options. Sizes are read as signed numbers so that a negative one is answered
/// with the flag and the reason (the resolver checks every value).
#[derive(Args)]
pub struct EstimateArgs {
    /// Model preset id or a model TOML file.
    #[arg(long)]
    pub model: String,
    /// Chip or system id.
    #[arg(long)]
    pub hardware: String,
    /// Number of chips: one count, a list (`1024,4096,16384`) or a doubling range
    /// (`1024..65536`: 1024, 2048, ..., 65536); several counts give one row each.
    #[arg(
        long,
        allow_hyphen_values = true,
        required_unless_present = "max_chips"
    )]
    pub chips: Option<ChipCounts>,
    /// Use the best chip count up to this many, in whole scale-up systems (by time to train
    /// with failures); layout options given are pinned, the rest searched.
    #[arg(long, conflicts_with = "chips")]
    pub max_chips: Option<u64>,
    /// Tensor parallel (omit all layout options to search for the best layout).
    #[arg(long, allow_negative_numbers = true)]
    pub tp: Option<i64>,
    /// Pipeline parallel.
    #[arg(long, allow_negative_numbers = true)]
    pub pp: Option<i64>,
    /// Data parallel (default: chips / (tp x pp x cp)).
    #[arg(long, allow_negative_numbers = true)]
    pub dp: Option<i64>,
    /// Context parallel.
    #[arg(long, allow_negative_numbers = true)]
    pub cp: Option<i64>,
    /// Expert parallel.
    #[arg(long, allow_negative_numbers = true)]
    pub ep: Option<i64>,
    /// Micro-batch size in sequences.
    #[arg(long, allow_negative_numbers = true)]
    pub microbatch: Option<i64>,
    /// Interleaved pipeline stages per rank.
    #[arg(long, allow_negative_numbers = true)]
    pub virtual_stages: Option<i64>,
    /// Activation recomputation.
    #[arg(long, value_enum)]
    pub recompute: Option<Recompute>,
    /// Modules recomputed beyond those --recompute names, comma-separated (Megatron-Core's
    /// --recompute-modules: core-attn, mlp, moe, moe-act, layernorm; not with full).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub recompute_modules: Option<Vec<RecomputeModule>>,
    /// With --recompute full: the layers of each pipeline chunk recomputed, the rest keeping
    /// every activation (Megatron's --recompute-method block --recompute-num-layers N).
    #[arg(long, allow_negative_numbers = true)]
    pub recompute_layers: Option<i64>,
    /// ZeRO stage 0..3.
    #[arg(long, allow_negative_numbers = true)]
    pub zero: Option<i64>,
    /// Ranks that shard the ZeRO state (hybrid sharding); default all data-parallel ranks.
    #[arg(long, allow_negative_numbers = true)]
    pub zero_group: Option<i64>,
    /// Let tensor parallelism span scale-up domains.
    #[arg(long)]
    pub allow_tp_scale_out: bool,
    /// Pin the layout options given and search the others (default: the others take defaults).
    #[arg(long)]
    pub search_rest: bool,
    /// Runner-up layouts to show beside the best one (a search).
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// What the best chip count minimises with --max-chips.
    #[arg(long, value_enum, default_value = "time")]
    pub objective: Objective,
    /// Global batch in sequences (default 1024).
    #[arg(
        long,
        allow_negative_numbers = true,
        conflicts_with = "global_batch_tokens"
    )]
    pub global_batch: Option<i64>,
    /// Global batch in tokens (instead of --global-batch): a whole number of sequences.
    #[arg(long, allow_negative_numbers = true)]
    pub global_batch_tokens: Option<i64>,
    /// Precision of the Adam moments (fp32: 12 bytes/param with the master weights; bf16: 8).
    #[arg(long, value_enum)]
    pub optimizer_states: Option<OptimizerStates>,
    /// Precision of the accumulated gradients.
    #[arg(long, value_enum)]
    pub main_grads: Option<MainGrads>,
    /// MoE: tokens routed to the most loaded expert over the mean, 1 to 64 (default 1; published
    /// routing statistics: 1.5-1.7 with an auxiliary loss, 1.04 aux-loss-free).
    #[arg(long)]
    pub moe_load_imbalance: Option<f64>,
    /// How layers are divided among pipeline stages (default even).
    #[arg(long, value_enum)]
    pub pipeline_split: Option<PipelineSplit>,
    /// In FP8/FP4 training, keep the linear layers' inputs for backward in BF16 rather than in
    /// the training format (Transformer Engine keeps them in FP8).
    #[arg(long)]
    pub bf16_activations: bool,
    /// Share (0 to 1) of the saved activations offloaded to host memory over the host link
    /// (systems with host-memory and host-link figures: HGX, GB200/GB300 NVL72).
    #[arg(long, allow_negative_numbers = true)]
    pub offload_activations: Option<f64>,
    /// Sequence length (default: the model's).
    #[arg(long, allow_negative_numbers = true)]
    pub seq_len: Option<i64>,
    /// Number format of the linear layers.
    #[arg(long, value_enum, default_value = "bf16")]
    pub precision: Precision,
    /// Tokens to train.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e12)]
    pub tokens: f64,
    /// Software stack: a preset of the switches below, which still override it one by one
    /// (default mcore-2024).
    #[arg(long, value_enum)]
    pub software: Option<SoftwareEra>,
    /// Attention kernel (default: the software era's).
    #[arg(long, value_enum)]
    pub attention: Option<AttentionKernel>,
    /// Tensor-parallel communication is not overlapped with compute (older frameworks).
    #[arg(long)]
    pub no_tp_overlap: bool,
    /// MoE: expert-parallel dispatch and combine overlapped with another micro-batch's compute
    /// (Megatron-Core --overlap-moe-expert-parallel-comm).
    #[arg(long)]
    pub ep_overlap: bool,
    /// FP8/FP4 training: weights kept and all-gathered in FP8 (Megatron-Core --fp8-param-gather).
    #[arg(long)]
    pub fp8_param_gather: bool,
    /// Data-parallel communication is not overlapped with the backward pass.
    #[arg(long)]
    pub no_dp_overlap: bool,
    /// Collectives spanning scale-up domains do not aggregate inside a domain first.
    #[arg(long)]
    pub flat_collectives: bool,
    /// Across domains, reduce-scatter and all-gather use logarithmic algorithms (NCCL >= 2.23
    /// PAT, recursive halving/doubling) and all-reduce a tree, instead of rings whose every step
    /// pays a scale-out latency (the libraries of the published runs).
    #[arg(long)]
    pub logarithmic_collectives: bool,
    /// MoE token dispatcher (default all-to-all; hierarchical: DeepEP-style NVLink + RDMA).
    #[arg(long, value_enum)]
    pub moe_dispatcher: Option<MoeDispatcher>,
    /// Keep experts whole on each rank (expert tensor parallelism 1) instead of splitting them
    /// across the tensor-parallel ranks (Megatron-Core's default).
    #[arg(long)]
    pub whole_experts: bool,
    /// Scale-out bandwidth per chip, Gbit/s per direction (default: the system's).
    #[arg(long, allow_negative_numbers = true)]
    pub scale_out_gbps: Option<f64>,
    /// Chips per scale-up domain actually used (default: the system's).
    #[arg(long, allow_negative_numbers = true)]
    pub domain_chips: Option<i64>,
    /// Calibration file (default: the shipped one).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the output to this file (whole or not at all) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub economics: EconomicsArgs,
}

/// `run`'s options.
#[derive(Args)]
pub struct RunArgs {
    /// The scenario TOML file.
    pub scenario: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the output to this file (whole or not at all) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Calibration file (default: the shipped one).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Also draw time, cost and energy against chips (and cost against time) into this SVG
    /// file (whole or not at all; needs the `plot` feature).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Run only slice I of N of the scenario's cases (cases I-1, I-1+N, ...): a deterministic
    /// split for job arrays; `xpusim merge` joins the slices' outputs.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub economics: EconomicsArgs,
}

/// A slice `I/N` of a scenario's cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This slice, 1..=N.
    pub index: usize,
    /// Slices.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not I/N with 1 <= I <= N <= 1000000 (e.g. 3/8)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index < 1 || index > count || count > 1_000_000 {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// `capacity`'s options.
#[derive(Args)]
pub struct CapacityArgs {
    /// Chip or system ids (give several times to compare).
    #[arg(long, required = true)]
    pub hardware: Vec<String>,
    /// Facility power envelope, MW (e.g. 2200 for a 2.2 GW campus).
    #[arg(long, allow_negative_numbers = true)]
    pub power_mw: Option<f64>,
    /// Budget, USD.
    #[arg(long, allow_negative_numbers = true)]
    pub budget_usd: Option<f64>,
    /// Years the budget is spent over (default: --days when given, else 1).
    #[arg(long, allow_negative_numbers = true)]
    pub years: Option<f64>,
    /// Wall-clock limit, days (failures included): how many tokens the chips train in it.
    #[arg(long, allow_negative_numbers = true)]
    pub days: Option<f64>,
    /// Facility energy allowance, MWh: how many tokens the chips train on it.
    #[arg(long, allow_negative_numbers = true)]
    pub energy_mwh: Option<f64>,
    /// The compute-optimal model for what the limits deliver (C = 6·N·D, D = r·N):
    /// `chinchilla` (20 tokens per parameter, Hoffmann et al. 2022) or a ratio r (e.g. 40).
    #[arg(long, value_name = "chinchilla|RATIO", allow_hyphen_values = true)]
    pub compute_optimal: Option<String>,
    /// Model preset to train there (with --tokens); with --days, --energy-mwh or
    /// --compute-optimal, the reference whose throughput and MFU are used (default llama3-70b).
    #[arg(long)]
    pub model: Option<String>,
    /// Tokens to train.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e12)]
    pub tokens: f64,
    /// Global batch in sequences.
    #[arg(long, allow_negative_numbers = true, default_value_t = 2048)]
    pub global_batch: i64,
    /// Sequence length (default: the model's).
    #[arg(long, allow_negative_numbers = true)]
    pub seq_len: Option<i64>,
    /// Number format of the linear layers (and of the peak column).
    #[arg(long, value_enum, default_value = "bf16")]
    pub precision: Precision,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    #[command(flatten)]
    pub economics: EconomicsArgs,
}

/// Chip counts from `--chips`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipCounts(pub Vec<i64>);

/// The most counts one `--chips` may expand to.
const MAX_COUNTS: usize = 64;

impl std::str::FromStr for ChipCounts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{t}` is not a whole number of chips"))
        };
        let v = if let Some((lo, hi)) = s.split_once("..") {
            let (lo, hi) = (num(lo)?, num(hi)?);
            if lo < 1 || hi < lo {
                return Err(format!(
                    "range `{s}` must run from at least 1 up to its end"
                ));
            }
            let mut v = Vec::new();
            let mut n = lo;
            while n <= hi && v.len() < MAX_COUNTS {
                v.push(n);
                n = n.saturating_mul(2);
            }
            v
        } else {
            s.split(',').map(num).collect::<Result<Vec<_>, _>>()?
        };
        if v.is_empty() || v.len() > MAX_COUNTS {
            return Err(format!("give 1 to {MAX_COUNTS} chip counts"));
        }
        Ok(Self(v))
    }
}

/// Energy and cost settings.
#[derive(Args, Clone)]
pub struct EconomicsArgs {
    /// Power usage effectiveness of the facility (default 1.15, AWS 2024).
    #[arg(long, allow_negative_numbers = true)]
    pub pue: Option<f64>,
    /// Grid carbon intensity, kg CO2e per kWh (default 0.39, US average 2022).
    #[arg(long, allow_negative_numbers = true)]
    pub grid_kg_per_kwh: Option<f64>,
    /// Price in USD per chip-hour for rented bases (default: the catalog's price of the basis).
    #[arg(long, allow_negative_numbers = true)]
    pub price: Option<f64>,
    /// Price basis.
    #[arg(long, value_enum)]
    pub pricing: Option<Pricing>,
    /// Owned: years of depreciation (default 5, AWS servers from 2025).
    #[arg(long, allow_negative_numbers = true)]
    pub lifetime_years: Option<f64>,
    /// Owned: annual cost of capital (default 0.08).
    #[arg(long, allow_negative_numbers = true)]
    pub cost_of_capital: Option<f64>,
    /// Owned: electricity price, USD per kWh (default 0.08, US industrial 2023).
    #[arg(long, allow_negative_numbers = true)]
    pub electricity_usd_per_kwh: Option<f64>,
    /// Owned: maintenance a year as a share of capital (default 0.03).
    #[arg(long, allow_negative_numbers = true)]
    pub maintenance_per_year: Option<f64>,
    /// Failure rates as a multiple of Llama 3 405B's (default 1; 0 ignores failures).
    #[arg(long, allow_negative_numbers = true)]
    pub failure_rate_scale: Option<f64>,
    /// Checkpoint write bandwidth per chip, GB/s (default 0.122).
    #[arg(long, allow_negative_numbers = true)]
    pub checkpoint_gb_per_s_per_chip: Option<f64>,
    /// Restart time after an interruption, minutes (default 10).
    #[arg(long, allow_negative_numbers = true)]
    pub restart_minutes: Option<f64>,
}

impl EconomicsArgs {
    /// The raw request these flags make.
    pub fn request(&self) -> xpusim::EconomicsRequest {
        xpusim::EconomicsRequest {
            pue: self.pue,
            grid_kg_co2_per_kwh: self.grid_kg_per_kwh,
            price_usd_per_chip_hour: self.price,
            pricing: self.pricing,
            lifetime_years: self.lifetime_years,
            cost_of_capital: self.cost_of_capital,
            electricity_usd_per_kwh: self.electricity_usd_per_kwh,
            maintenance_per_year: self.maintenance_per_year,
            failure_rate_scale: self.failure_rate_scale,
            checkpoint_gb_per_s_per_chip: self.checkpoint_gb_per_s_per_chip,
            restart_minutes: self.restart_minutes,
        }
    }
}
