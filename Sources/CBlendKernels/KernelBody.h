// The generic body of the kernels, included once per ISA by kernels.c with W (lanes) and
// K(name) (a per-ISA suffix) defined. Not a public header. Formulas and accuracy: see
// include/CBlendKernels.h.

#define VF K(vf)
#define VI K(vi)
typedef float VF __attribute__((vector_size(W * 4)));
typedef int VI __attribute__((vector_size(W * 4)));

static inline __attribute__((always_inline)) VF K(load)(const float *p) { VF v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void K(store)(float *p, VF v) { __builtin_memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) VF K(splat)(float s) { return (VF){0} + s; }
/// m ? a : b lane by lane (m from a comparison: all ones or zero).
static inline __attribute__((always_inline)) VF K(select)(VI m, VF a, VF b) { return (VF)((m & (VI)a) | (~m & (VI)b)); }
/// `tail` (< W) elements of p, the other lanes `fill`.
static inline __attribute__((always_inline)) VF K(loadTail)(const float *p, ptrdiff_t tail, float fill) {
    float buf[W];
    for (int i = 0; i < W; i++) buf[i] = i < tail ? p[i] : fill;
    return K(load)(buf);
}
static inline __attribute__((always_inline)) void K(storeTail)(float *p, ptrdiff_t tail, VF v) {
    float buf[W];
    K(store)(buf, v);
    for (ptrdiff_t i = 0; i < tail; i++) p[i] = buf[i];
}
static inline __attribute__((always_inline)) float K(hsum)(VF v) {
    float s = 0;
    for (int i = 0; i < W; i++) s += v[i];
    return s;
}
static inline __attribute__((always_inline)) float K(hmax)(VF v) {
    float m = v[0];
    for (int i = 1; i < W; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/// eˣ: see the header. The same constants as the Swift `vectorExp`.
static inline __attribute__((always_inline)) VF K(vexp)(VF x) {
    const VF lower = K(splat)(-87.33654f), upper = K(splat)(88.37626f);
    VF c = K(select)(x < lower, lower, x);
    c = K(select)(c > upper, upper, c);
    // Adding 1.5·2²³ rounds to an integer, which then sits in the low mantissa bits.
    const VF magic = K(splat)(12582912.0f);
    VF shifted = c * 1.442695041f + magic;
    VF n = shifted - magic;
    VF r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    VF p = K(splat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    VF r2 = r * r;
    VF er = p * r2 + r + 1.0f;
    VI bits = ((VI)shifted - 0x4B400000 + 127) << 23;
    VF y = er * (VF)bits;
    return K(select)(x < lower, K(splat)(0), y);
}

/// erf(x): see the header.
static inline __attribute__((always_inline)) VF K(verf)(VF x) {
    const VI signMask = (VI){0} + (int)0x80000000;
    VF a = (VF)((VI)x & ~signMask);
    // Small |x|: x·P(x²).
    VF s = a * a;
    VF p = K(splat)(8.411063876e-05f);
    p = p * s + -8.153790849e-04f;
    p = p * s + 5.202176951e-03f;
    p = p * s + -2.685995771e-02f;
    p = p * s + 1.128370844e-01f;
    p = p * s + -3.761263494e-01f;
    p = p * s + 1.128379167e+00f;
    VF small = a * p;
    // Large |x|: 1 − e^(−x²)·Q(1/(1 + x/2)).
    VF t = 1.0f / (1.0f + 0.5f * a);
    VF q = K(splat)(1.201086976e-01f);
    q = q * t + -4.739243519e-01f;
    q = q * t + 5.674078819e-01f;
    q = q * t + -1.070645676e-01f;
    q = q * t + 3.495100835e-01f;
    q = q * t + 2.591874634e-01f;
    q = q * t + 2.849929195e-01f;
    q = q * t + -1.596518371e-04f;
    VF large = 1.0f - K(vexp)(-s) * q;
    VF r = K(select)(a < 0.921875f, small, large);
    return (VF)((VI)r | ((VI)x & signMask));
}

static inline __attribute__((always_inline)) VF K(vsigmoid)(VF x) { return 1.0f / (1.0f + K(vexp)(-x)); }

/// Φ(x) = ½(1 + erf(x/√2)).
static inline __attribute__((always_inline)) VF K(vcdf)(VF x) { return 0.5f * (1.0f + K(verf)(x * 0.70710678118654752f)); }
/// Φ(x) + x·φ(x), GELU's derivative.
static inline __attribute__((always_inline)) VF K(vgeluPrime)(VF x) {
    VF pdf = K(vexp)(-0.5f * x * x) * 0.39894228040143268f;
    return K(vcdf)(x) + x * pdf;
}

// Elementwise maps over 1, 2 or 3 inputs: the body once for full vectors and once for the tail.
// Invariant: the tail runs the same vector code on padded lanes, so an element's value does not
// depend on where a thread's chunk starts (ThreadCountPropertyTests checks every ISA).
#define MAP1(name, expr)                                                                    \
    static void K(name)(const float *xp, float *yp, ptrdiff_t n) {                          \
        ptrdiff_t i = 0;                                                                    \
        for (; i + W <= n; i += W) { VF x = K(load)(xp + i); K(store)(yp + i, (expr)); }    \
        if (i < n) { VF x = K(loadTail)(xp + i, n - i, 0); K(storeTail)(yp + i, n - i, (expr)); } \
    }
#define MAP2(name, expr)                                                                    \
    static void K(name)(const float *xp, const float *gp, float *yp, ptrdiff_t n) {         \
        ptrdiff_t i = 0;                                                                    \
        for (; i + W <= n; i += W) { VF x = K(load)(xp + i), g = K(load)(gp + i); K(store)(yp + i, (expr)); } \
        if (i < n) {                                                                        \
            VF x = K(loadTail)(xp + i, n - i, 0), g = K(loadTail)(gp + i, n - i, 0);        \
            K(storeTail)(yp + i, n - i, (expr));                                            \
        }                                                                                   \
    }

MAP1(exp, K(vexp)(x))
MAP1(erf, K(verf)(x))
MAP1(gelu, x * K(vcdf)(x))
MAP2(geluBackward, g * K(vgeluPrime)(x))
MAP1(sigmoid, K(vsigmoid)(x))
// GEGLU: x = hidden, g = gate.
MAP2(geglu, x * (g * K(vcdf)(g)))

static void K(gegluBackward)(const float *hp, const float *zp, const float *dyp, float *dhp, float *dzp, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i <= n; i += W) {
        ptrdiff_t m = n - i < W ? n - i : W;
        if (m == 0) break;
        VF h, z, dy;
        if (m == W) { h = K(load)(hp + i); z = K(load)(zp + i); dy = K(load)(dyp + i); }
        else { h = K(loadTail)(hp + i, m, 0); z = K(loadTail)(zp + i, m, 0); dy = K(loadTail)(dyp + i, m, 0); }
        VF cdf = K(vcdf)(z);
        VF pdf = K(vexp)(-0.5f * z * z) * 0.39894228040143268f;
        VF dh = dy * z * cdf, dz = dy * h * (cdf + z * pdf);
        if (m == W) { K(store)(dhp + i, dh); K(store)(dzp + i, dz); }
        else { K(storeTail)(dhp + i, m, dh); K(storeTail)(dzp + i, m, dz); }
    }
}

static void K(silu)(const float *xp, float *yp, ptrdiff_t n, float beta) {
    ptrdiff_t i = 0;
    const VF bv = K(splat)(beta);
    for (; i + W <= n; i += W) { VF x = K(load)(xp + i); K(store)(yp + i, x * K(vsigmoid)(bv * x)); }
    if (i < n) { VF x = K(loadTail)(xp + i, n - i, 0); K(storeTail)(yp + i, n - i, x * K(vsigmoid)(bv * x)); }
}

static void K(siluBackward)(const float *xp, const float *gp, float *dp, ptrdiff_t n, float beta) {
    const VF bv = K(splat)(beta);
    for (ptrdiff_t i = 0; i < n; i += W) {
        ptrdiff_t m = n - i < W ? n - i : W;
        VF x, g;
        if (m == W) { x = K(load)(xp + i); g = K(load)(gp + i); }
        else { x = K(loadTail)(xp + i, m, 0); g = K(loadTail)(gp + i, m, 0); }
        VF bx = bv * x, sg = K(vsigmoid)(bx);
        VF d = g * sg * (1.0f + bx * (1.0f - sg));
        if (m == W) K(store)(dp + i, d); else K(storeTail)(dp + i, m, d);
    }
}

/// ∂L/∂x̂ of group norm + SiLU: g·silu′(x·a + b)·gm.
static inline __attribute__((always_inline)) VF K(dxhat)(VF x, VF g, VF a, VF b, VF gm) {
    VF u = x * a + b, sg = K(vsigmoid)(u);
    return g * sg * (1.0f + u * (1.0f - sg)) * gm;
}

static void K(affineSiLUBackwardSums)(const float *xp, const float *gp, ptrdiff_t n, float a, float b, float gm, float mean,
                                      float *sums) {
    const VF av = K(splat)(a), bv = K(splat)(b), gmv = K(splat)(gm), mv = K(splat)(mean);
    VF sd = K(splat)(0), sdx = K(splat)(0);
    ptrdiff_t i = 0;
    for (; i + W <= n; i += W) {
        VF x = K(load)(xp + i), d = K(dxhat)(x, K(load)(gp + i), av, bv, gmv);
        sd += d;
        sdx += d * (x - mv);
    }
    if (i < n) {
        // Padding lanes have g = 0, so d = 0 there.
        VF x = K(loadTail)(xp + i, n - i, mean), d = K(dxhat)(x, K(loadTail)(gp + i, n - i, 0), av, bv, gmv);
        sd += d;
        sdx += d * (x - mv);
    }
    sums[0] = K(hsum)(sd);
    sums[1] = K(hsum)(sdx);
}

static void K(affineSiLUBackward)(const float *xp, const float *gp, float *dp, ptrdiff_t n, float a, float b, float gm, float mean,
                                  float rstd, float cx, float c0) {
    const VF av = K(splat)(a), bv = K(splat)(b), gmv = K(splat)(gm), mv = K(splat)(mean);
    const VF rv = K(splat)(rstd), cxv = K(splat)(cx), c0v = K(splat)(c0);
    for (ptrdiff_t i = 0; i < n; i += W) {
        ptrdiff_t m = n - i < W ? n - i : W;
        VF x, g;
        if (m == W) { x = K(load)(xp + i); g = K(load)(gp + i); }
        else { x = K(loadTail)(xp + i, m, 0); g = K(loadTail)(gp + i, m, 0); }
        VF d = rv * K(dxhat)(x, g, av, bv, gmv) + cxv * (x - mv) + c0v;
        if (m == W) K(store)(dp + i, d); else K(storeTail)(dp + i, m, d);
    }
}

static void K(affineSiLU)(const float *xp, float *yp, ptrdiff_t n, float a, float b) {
    ptrdiff_t i = 0;
    const VF av = K(splat)(a), bv = K(splat)(b);
    for (; i + W <= n; i += W) { VF u = K(load)(xp + i) * av + bv; K(store)(yp + i, u * K(vsigmoid)(u)); }
    if (i < n) { VF u = K(loadTail)(xp + i, n - i, 0) * av + bv; K(storeTail)(yp + i, n - i, u * K(vsigmoid)(u)); }
}

static float K(expShiftedRow)(float *row, ptrdiff_t width) {
    // The maximum: four independent vectors hide the compare latency. NaN never wins a
    // comparison, so it is skipped (and later gives NaN through e^x).
    const VF ninf = K(splat)(-__builtin_inff());
    VF m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    ptrdiff_t i = 0;
    for (; i + 4 * W <= width; i += 4 * W) {
        VF a = K(load)(row + i), b = K(load)(row + i + W), c = K(load)(row + i + 2 * W), d = K(load)(row + i + 3 * W);
        m0 = K(select)(a > m0, a, m0);
        m1 = K(select)(b > m1, b, m1);
        m2 = K(select)(c > m2, c, m2);
        m3 = K(select)(d > m3, d, m3);
    }
    for (; i + W <= width; i += W) { VF a = K(load)(row + i); m0 = K(select)(a > m0, a, m0); }
    if (i < width) { VF a = K(loadTail)(row + i, width - i, -__builtin_inff()); m0 = K(select)(a > m0, a, m0); }
    m0 = K(select)(m1 > m0, m1, m0);
    m2 = K(select)(m3 > m2, m3, m2);
    m0 = K(select)(m2 > m0, m2, m0);
    const VF shift = K(splat)(K(hmax)(m0));
    VF s0 = K(splat)(0), s1 = K(splat)(0);
    i = 0;
    for (; i + 2 * W <= width; i += 2 * W) {
        VF e0 = K(vexp)(K(load)(row + i) - shift), e1 = K(vexp)(K(load)(row + i + W) - shift);
        K(store)(row + i, e0);
        K(store)(row + i + W, e1);
        s0 += e0;
        s1 += e1;
    }
    for (; i + W <= width; i += W) { VF e = K(vexp)(K(load)(row + i) - shift); K(store)(row + i, e); s0 += e; }
    if (i < width) {
        // Padding lanes hold −∞, whose exponential adds 0 to the sum.
        VF e = K(vexp)(K(loadTail)(row + i, width - i, -__builtin_inff()) - shift);
        K(storeTail)(row + i, width - i, e);
        s0 += e;
    }
    return K(hsum)(s0 + s1);
}

static void K(softmaxRow)(float *row, ptrdiff_t width) {
    float sum = K(expShiftedRow)(row, width);
    const VF inv = K(splat)(1.0f / sum);
    ptrdiff_t i = 0;
    for (; i + W <= width; i += W) K(store)(row + i, K(load)(row + i) * inv);
    for (; i < width; i++) row[i] *= inv[0];
}

static void K(softmaxBackwardRow)(const float *y, const float *g, float *dx, ptrdiff_t width) {
    // Σ y·g with four independent accumulators (padding lanes are 0·0).
    VF s0 = K(splat)(0), s1 = K(splat)(0), s2 = K(splat)(0), s3 = K(splat)(0);
    ptrdiff_t i = 0;
    for (; i + 4 * W <= width; i += 4 * W) {
        s0 += K(load)(y + i) * K(load)(g + i);
        s1 += K(load)(y + i + W) * K(load)(g + i + W);
        s2 += K(load)(y + i + 2 * W) * K(load)(g + i + 2 * W);
        s3 += K(load)(y + i + 3 * W) * K(load)(g + i + 3 * W);
    }
    for (; i + W <= width; i += W) s0 += K(load)(y + i) * K(load)(g + i);
    if (i < width) s0 += K(loadTail)(y + i, width - i, 0) * K(loadTail)(g + i, width - i, 0);
    const VF dot = K(splat)(K(hsum)((s0 + s1) + (s2 + s3)));
    for (i = 0; i + W <= width; i += W) K(store)(dx + i, K(load)(y + i) * (K(load)(g + i) - dot));
    if (i < width) K(storeTail)(dx + i, width - i, K(loadTail)(y + i, width - i, 0) * (K(loadTail)(g + i, width - i, 0) - dot));
}

static const BlendKernelTable K(table) = {
    .level = LEVEL, .lanes = W,
    .expShiftedRow = K(expShiftedRow), .softmaxRow = K(softmaxRow), .softmaxBackwardRow = K(softmaxBackwardRow),
    .exp = K(exp), .erf = K(erf), .gelu = K(gelu), .geluBackward = K(geluBackward),
    .geglu = K(geglu), .gegluBackward = K(gegluBackward),
    .sigmoid = K(sigmoid), .silu = K(silu), .siluBackward = K(siluBackward), .affineSiLU = K(affineSiLU),
    .affineSiLUBackwardSums = K(affineSiLUBackwardSums), .affineSiLUBackward = K(affineSiLUBackward),
};

#undef MAP1
#undef MAP2
#undef VF
#undef VI
