//! One GEMM priced from its shape: the achieved efficiency of a linear layer is a function of
//! its dimensions, not one number per chip family.
//!
//! A GEMM `C[m×n] = A[m×k] · B[k×n]`, repeated `count` times (the experts of a grouped GEMM,
//! or one), costs at the chip's peaks
//!
//! ```text
//! roofline = max( 2·m·n·k·count · q / peak ,  bytes / hbm_bandwidth )
//! q        = (waves · units · Tm · Tn) / (count · m · n)  ·  ⌈k/Tk⌉·Tk / k      (≥ 1)
//! waves    = ⌈ count · ⌈m/Tm⌉ · ⌈n/Tn⌉ / units ⌉
//! bytes    = count · (a·(m·k + k·n) + o·m·n)
//! ```
//!
//! and the step model charges `roofline` to the matmul parameter of its number format, so the
//! time stays linear in θ: `θ_matmul · roofline`. `q` is tile and wave quantization: the
//! output is computed in `Tm × Tn` tiles (a thread block on a GPU, a systolic-array pass on a
//! TPU or Trainium), `units` of them at a time (streaming multiprocessors, matrix units), so a
//! partial tile or a partial last wave costs a whole one (NVIDIA, *Matrix Multiplication
//! Background User's Guide*, "Tile quantization" and "Wave quantization", 2023). The second
//! term is the operand and weight traffic of a skinny GEMM (the roofline of Williams et al.
//! 2009): a grouped expert GEMM with few tokens per expert reads each expert's weights for a
//! handful of rows and is bound by HBM, not by the matrix units.
//!
//! Why the memory-bound side is charged to the matmul parameter and not to `memory`: a GEMM
//! kernel reaches its roofline at the GEMM kernel's efficiency, and one parameter on both sides
//! keeps the fitted step monotone in peak FLOP/s (a faster chip is never slower at any θ, which
//! a split `θ_matmul·c + θ_memory·max(0, bytes/bw − c)` breaks whenever `θ_memory > θ_matmul`).
//! The `matmul` efficiency is then the fraction of the roofline a large, well-shaped GEMM
//! reaches, and small or skinny GEMMs are slower by their shape alone.

use super::terms::Terms;
use super::theta::Param;

/// The matrix units of one chip: how many output tiles run at once, and the tile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatrixUnits {
    /// Tiles computed concurrently (SMs on a GPU; MXUs or tensor engines elsewhere).
    pub units: f64,
    /// Tile rows (the token dimension `m`).
    pub tile_m: f64,
    /// Tile columns (`n`).
    pub tile_n: f64,
    /// Tile depth (the reduction dimension `k`).
    pub tile_k: f64,
}

/// CTA tile of NVIDIA's large BF16/FP8 GEMMs: 128 × 256 outputs, 64 deep. An assumption: the
/// common cuBLAS/CUTLASS tile for large GEMMs on Ampere to Blackwell (the tile of the examples
/// in NVIDIA's *Matrix Multiplication Background User's Guide*); the library picks per shape.
const NVIDIA_TILE: (f64, f64, f64) = (128.0, 256.0, 64.0);
/// A weight-stationary systolic array's tile: `n` and `k` the array's side, `m` streamed in
/// rows of 8 (TPU sublanes; Trainium streams single rows, the same to a percent). An assumption
/// about how XLA and the Neuron compiler pad.
const fn systolic(side: f64, units: f64) -> MatrixUnits {
    MatrixUnits {
        units,
        tile_m: 8.0,
        tile_n: side,
        tile_k: side,
    }
}
/// An NVIDIA GPU with `sms` streaming multiprocessors.
const fn nvidia(sms: f64) -> MatrixUnits {
    MatrixUnits {
        units: sms,
        tile_m: NVIDIA_TILE.0,
        tile_n: NVIDIA_TILE.1,
        tile_k: NVIDIA_TILE.2,
    }
}

impl MatrixUnits {
    /// No quantization: one unit, unit tiles (a chip whose matrix units are not known); the
    /// GEMM is priced by its roofline alone.
    pub const NONE: MatrixUnits = MatrixUnits {
        units: 1.0,
        tile_m: 1.0,
        tile_n: 1.0,
        tile_k: 1.0,
    };

    /// The matrix units of a catalog chip, from its `matrix_units` and `systolic_array`
    /// figures (each sourced in the catalog): a chip with a systolic-array side is a systolic
    /// machine, one without a GPU of that many multiprocessors; [`MatrixUnits::NONE`] when the
    /// catalog has no count (the GEMM is then priced by its roofline alone).
    #[must_use]
    pub fn of_chip(chip: &crate::hardware::Chip) -> Self {
        let Some(units) = chip.matrix_units.as_ref().map(|f| f.value as f64) else {
            return Self::NONE;
        };
        match chip.systolic_array.as_ref() {
            Some(side) => systolic(side.value as f64, units),
            None => nvidia(units),
        }
    }
}

/// One GEMM shape, `count` times: `C[m×n] = A[m×k] · B[k×n]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Gemm {
    pub(super) m: f64,
    pub(super) n: f64,
    pub(super) k: f64,
    /// Independent GEMMs of this shape (experts of a grouped GEMM), in one launch.
    pub(super) count: f64,
}

/// Which product of a linear layer `Y[t×n] = X[t×k] · W[k×n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    /// `Y = X · W`: `t × k` by `k × n`.
    Forward,
    /// `dX = dY · Wᵀ`: `t × n` by `n × k`.
    DataGrad,
    /// `dW = Xᵀ · dY`: `k × t` by `t × n` (the tokens are the reduction).
    WeightGrad,
}

impl Gemm {
    /// The GEMM of `pass` for a linear layer of `tokens` rows and a `k × n` weight, `count`
    /// times.
    pub(super) fn linear(pass: Pass, tokens: f64, k: f64, n: f64, count: f64) -> Self {
        let (m, n, k) = match pass {
            Pass::Forward => (tokens, n, k),
            Pass::DataGrad => (tokens, k, n),
            Pass::WeightGrad => (k, n, tokens),
        };
        Self { m, n, k, count }
    }

    /// Floating-point operations (multiply and add).
    pub(super) fn flops(&self) -> f64 {
        2.0 * self.m * self.n * self.k * self.count
    }

    /// Tile and wave quantization `q ≥ 1`: the work the matrix units do per useful FLOP.
    /// `1` for an empty GEMM.
    pub(super) fn quantization(&self, u: &MatrixUnits) -> f64 {
        let useful = self.m * self.n * self.k * self.count;
        if useful <= 0.0 {
            return 1.0;
        }
        let tiles = self.count * (self.m / u.tile_m).ceil() * (self.n / u.tile_n).ceil();
        let waves = (tiles / u.units).ceil();
        let depth = (self.k / u.tile_k).ceil() * u.tile_k;
        (waves * u.units * u.tile_m * u.tile_n * depth / useful).max(1.0)
    }

    /// HBM bytes: both operands at `operand_bytes` per element, the output at `output_bytes`.
    pub(super) fn bytes(&self, operand_bytes: f64, output_bytes: f64) -> f64 {
        self.count
            * (operand_bytes * (self.m * self.k + self.k * self.n) + output_bytes * self.m * self.n)
    }
}

/// What pricing a GEMM needs from the machine, in the linear layers' number format or BF16.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct GemmCost {
    /// The matmul parameter of the format.
    pub(super) param: Param,
    /// Peak FLOP/s of the format.
    pub(super) peak_flop_per_s: f64,
    /// HBM bytes per second.
    pub(super) hbm_bytes_per_s: f64,
    /// Bytes per operand element (2 BF16, 1 FP8; FP4 weights are taken as FP8 operands, the
    /// activations staying 8-bit in published FP4 recipes: an assumption).
    pub(super) operand_bytes: f64,
    /// The chip's matrix units.
    pub(super) units: MatrixUnits,
}

/// Bytes per element of a GEMM output: BF16. An assumption for the weight gradient too (its
/// FP32 accumulation in the main-gradient buffer is counted by the optimizer's traffic).
pub(super) const OUTPUT_BYTES: f64 = crate::hardware::Precision::Bf16.bytes();

impl GemmCost {
    /// Seconds at θ = 1 of `g`: its roofline with quantization, on the format's parameter.
    pub(super) fn terms(&self, g: &Gemm) -> Terms {
        let compute = g.flops() * g.quantization(&self.units) / self.peak_flop_per_s;
        let traffic = g.bytes(self.operand_bytes, OUTPUT_BYTES) / self.hbm_bytes_per_s;
        Terms::one(self.param, compute.max(traffic))
    }

    /// The three GEMMs of one linear layer's training (forward, data and weight gradient) and
    /// the forward alone: (forward, backward).
    pub(super) fn linear(&self, tokens: f64, k: f64, n: f64, count: f64) -> (Terms, Terms) {
        let at = |p| self.terms(&Gemm::linear(p, tokens, k, n, count));
        (at(Pass::Forward), at(Pass::DataGrad) + at(Pass::WeightGrad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    const H100: MatrixUnits = nvidia(132.0);

    fn bf16() -> GemmCost {
        GemmCost {
            param: Param::Matmul,
            peak_flop_per_s: 989e12,
            hbm_bytes_per_s: 3.35e12,
            operand_bytes: 2.0,
            units: H100,
        }
    }

    /// A GEMM of whole tiles filling whole waves has no quantization; one more row costs a
    /// whole wave of tiles.
    #[test]
    fn whole_waves_are_unquantized() {
        // 132 × 2 tiles of 128 × 256: exactly two waves.
        let g = Gemm {
            m: 128.0 * 132.0,
            n: 512.0,
            k: 4096.0,
            count: 1.0,
        };
        assert_relative_eq!(g.quantization(&H100), 1.0);
        let one_more = Gemm { m: g.m + 1.0, ..g };
        // 133 row-tiles × 2 = 266 tiles: three waves for two waves' work.
        assert_relative_eq!(one_more.quantization(&H100), 1.5, max_relative = 0.01);
    }

    /// The three passes of a linear layer have the same FLOPs and different shapes.
    #[test]
    fn passes_share_flops() {
        let f = Gemm::linear(Pass::Forward, 4096.0, 8192.0, 1024.0, 2.0);
        let d = Gemm::linear(Pass::DataGrad, 4096.0, 8192.0, 1024.0, 2.0);
        let w = Gemm::linear(Pass::WeightGrad, 4096.0, 8192.0, 1024.0, 2.0);
        assert_relative_eq!(f.flops(), 2.0 * 4096.0 * 8192.0 * 1024.0 * 2.0);
        assert_relative_eq!(d.flops(), f.flops());
        assert_relative_eq!(w.flops(), f.flops());
        assert_relative_eq!(w.k, 4096.0);
        assert_relative_eq!(d.n, 8192.0);
    }

    /// A large square GEMM is compute-bound at its FLOPs over peak; a grouped GEMM of eight
    /// tokens per expert is bound by reading the experts' weights.
    #[test]
    fn roofline_sides() {
        let c = bf16();
        let big = Gemm {
            m: 128.0 * 132.0,
            n: 8192.0,
            k: 8192.0,
            count: 1.0,
        };
        let t = c.terms(&big).get(Param::Matmul);
        assert_relative_eq!(t, big.flops() / 989e12, max_relative = 1e-12);
        let skinny = Gemm {
            m: 8.0,
            n: 14336.0,
            k: 4096.0,
            count: 8.0,
        };
        let weights = 8.0 * 2.0 * 14336.0 * 4096.0 / 3.35e12;
        let t = c.terms(&skinny).get(Param::Matmul);
        assert!(t > weights && t < 1.01 * weights, "{t} vs {weights}");
        // Achieved efficiency below 5% of peak.
        assert!(skinny.flops() / 989e12 / t < 0.05);
    }

    proptest! {
        /// The priced time never beats the FLOPs at peak (HFU ≤ 1 per GEMM), and never
        /// beats the operand traffic at full bandwidth.
        #[test]
        fn never_faster_than_peak(
            m in 0.5f64..1e6, n in 1.0f64..1e5, k in 1.0f64..1e5, count in 1.0f64..256.0,
            chip in 0usize..4,
        ) {
            let units = [H100, MatrixUnits::NONE, systolic(128.0, 8.0), systolic(256.0, 2.0)];
            let c = GemmCost { units: units[chip], ..bf16() };
            let g = Gemm { m, n, k, count };
            let t = c.terms(&g).get(Param::Matmul);
            prop_assert!(g.quantization(&c.units) >= 1.0);
            prop_assert!(t * (1.0 + 1e-12) >= g.flops() / c.peak_flop_per_s);
            prop_assert!(t * (1.0 + 1e-12) >= g.bytes(2.0, OUTPUT_BYTES) / c.hbm_bytes_per_s);
        }
    }
}
