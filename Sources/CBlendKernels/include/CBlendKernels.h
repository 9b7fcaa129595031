// The engine's elementwise hot loops written once in C and compiled for several x86 vector
// ISAs, the best of which is chosen at run time.
//
// Why: the Swift engine is compiled for baseline x86-64 (users' CPUs may lack AVX2), so its
// SIMD8 loops run as two SSE halves without FMA, and erff/expf are scalar libm calls. In a
// Stable Diffusion CFG UNet step the attention softmax's max and e^x sweeps over 1.4 billion
// scores take 11 % of the time and GEGLU's erff another 3 % (BENCHMARKS.md, "Where the CFG
// UNet step's time goes"). These kernels run the same arithmetic 8 lanes wide with FMA on
// AVX2 CPUs and 16 lanes wide on AVX-512 CPUs. The pixel method's UNet (group norm + SiLU,
// forward and backward) and CLIP (quick GELU) use the sigmoid kernels.
//
// How dispatch works: kernels.c includes the one generic body (KernelBody.h, written with
// clang/GCC vector extensions) three times, each time under a `#pragma clang attribute` that
// gives every function a `target(...)` attribute: baseline (SSE2, 4 lanes), AVX2+FMA (8 lanes)
// and AVX-512 F/BW/DQ/VL (16 lanes). `blend_kernels()` asks the CPU once
// (`__builtin_cpu_supports`) and returns the table of the widest variant it runs; the
// environment variable BLEND_KERNELS=baseline|avx2|avx512 caps the choice (for measurements).
// On other architectures (aarch64) only the generic body exists, compiled for the target's
// own vector unit. All variants compute the same formulas; they differ by FMA contraction and
// summation order only (a few ulp, see each function).
//
// Accuracy (checked by BlendTensorTests/KernelTests.swift against libm over dense sweeps):
// - exp: range reduction x = n·ln2 + r (ln2 in two parts, exact), a degree-6 polynomial for
//   eʳ and 2ⁿ built in the exponent: within 2 ulp of expf on [−87.3, 88.3]; below −87.3 it
//   is 0 (−∞ → 0), above 88.38 it saturates; NaN stays NaN.
// - erf: |x| < 0.921875: x·P(x²), P of degree 6; above: 1 − e^(−x²)·Q(t), t = 1/(1 + x/2),
//   Q of degree 7 (both least-squares fits of ours to the double-precision erf, errors of
//   the fits below 1e-9): within 1.5e-7 absolute (a few ulp) of erff; NaN stays NaN.

#ifndef CBLENDKERNELS_H
#define CBLENDKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One ISA's kernels. Pointers may alias only where a comment says so; lengths are element
/// counts (0 is allowed: nothing is read or written).
typedef struct BlendKernelTable {
    /// The ISA: 0 baseline, 1 AVX2+FMA, 2 AVX-512 (also on other architectures: 0).
    int level;
    /// Lanes of this variant's vectors (4, 8 or 16).
    int lanes;
    /// row ← e^(row − max(row)) in place; returns the sum of the new values (≥ 1 unless the
    /// row holds NaN; NaN elements are skipped by the maximum and give NaN).
    float (*_Nonnull expShiftedRow)(float *_Nonnull row, ptrdiff_t width);
    /// row ← softmax(row) in place (expShiftedRow, then a multiply by 1/sum).
    void (*_Nonnull softmaxRow)(float *_Nonnull row, ptrdiff_t width);
    /// dx ← y·(g − Σ y·g): the softmax's backward for one row of probabilities y (dx may be g).
    void (*_Nonnull softmaxBackwardRow)(const float *_Nonnull y, const float *_Nonnull g, float *_Nonnull dx, ptrdiff_t width);
    /// y ← eˣ (the vector exponential above; y may be x).
    void (*_Nonnull exp)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t n);
    /// y ← erf(x) (y may be x).
    void (*_Nonnull erf)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t n);
    /// y ← x·Φ(x) = ½x(1 + erf(x/√2)), the exact GELU (y may be x).
    void (*_Nonnull gelu)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t n);
    /// dx ← g·(Φ(x) + x·φ(x)) (dx may be g).
    void (*_Nonnull geluBackward)(const float *_Nonnull x, const float *_Nonnull g, float *_Nonnull dx, ptrdiff_t n);
    /// out ← hidden·gelu(gate) (GEGLU's forward for one row).
    void (*_Nonnull geglu)(const float *_Nonnull hidden, const float *_Nonnull gate, float *_Nonnull out, ptrdiff_t n);
    /// dHidden ← dy·gelu(gate), dGate ← dy·hidden·gelu′(gate).
    void (*_Nonnull gegluBackward)(const float *_Nonnull hidden, const float *_Nonnull gate, const float *_Nonnull dy,
                                   float *_Nonnull dHidden, float *_Nonnull dGate, ptrdiff_t n);
    /// y ← 1/(1 + e⁻ˣ) (y may be x).
    void (*_Nonnull sigmoid)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t n);
    /// y ← x·σ(βx): SiLU with β = 1, CLIP's quick GELU with β = 1.702 (y may be x).
    void (*_Nonnull silu)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t n, float beta);
    /// dx ← g·σ(βx)·(1 + βx·(1 − σ(βx))) (dx may be g).
    void (*_Nonnull siluBackward)(const float *_Nonnull x, const float *_Nonnull g, float *_Nonnull dx, ptrdiff_t n, float beta);
    /// y ← silu(x·a + b): one channel of group norm + SiLU's forward (y may be x).
    void (*_Nonnull affineSiLU)(const float *_Nonnull x, float *_Nonnull y, ptrdiff_t n, float a, float b);
    /// Group norm + SiLU's backward, first sweep over one channel: with u = x·a + b and
    /// d = g·silu′(u)·gm, sums[0] ← Σ d and sums[1] ← Σ d·(x − mean).
    void (*_Nonnull affineSiLUBackwardSums)(const float *_Nonnull x, const float *_Nonnull g, ptrdiff_t n, float a, float b,
                                            float gm, float mean, float *_Nonnull sums);
    /// Its second sweep: dx ← rstd·d + cx·(x − mean) + c0.
    void (*_Nonnull affineSiLUBackward)(const float *_Nonnull x, const float *_Nonnull g, float *_Nonnull dx, ptrdiff_t n,
                                        float a, float b, float gm, float mean, float rstd, float cx, float c0);
} BlendKernelTable;

/// The kernels of the widest ISA this CPU runs (capped by BLEND_KERNELS); never null.
const BlendKernelTable *_Nonnull blend_kernels(void);

/// The kernels of one ISA (0 baseline, 1 AVX2+FMA, 2 AVX-512), or null when this CPU (or
/// this architecture) lacks it. For tests and measurements.
const BlendKernelTable *_Nullable blend_kernels_level(int level);

#ifdef __cplusplus
}
#endif

#endif
