// Runtime-dispatched elementwise kernels: see include/CBlendKernels.h.

#include "CBlendKernels.h"

#include <stdlib.h>
#include <string.h>

// a·b + c in one expression may become one FMA where the ISA has it (the AVX variants).
#pragma STDC FP_CONTRACT ON

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#if defined(__x86_64__) || defined(__i386__)

// Baseline x86-64: SSE2, 4 lanes.
#define W 4
#define LEVEL 0
#define K(name) CAT(name, _base)
#include "KernelBody.h"
#undef W
#undef LEVEL
#undef K

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#define W 8
#define LEVEL 1
#define K(name) CAT(name, _avx2)
#include "KernelBody.h"
#undef W
#undef LEVEL
#undef K
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#define W 16
#define LEVEL 2
#define K(name) CAT(name, _avx512)
#include "KernelBody.h"
#undef W
#undef LEVEL
#undef K
#pragma clang attribute pop

static int cpuLevel(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

const BlendKernelTable *blend_kernels_level(int level) {
    if (level < 0 || level > cpuLevel()) return NULL;
    switch (level) {
    case 2: return &table_avx512;
    case 1: return &table_avx2;
    default: return &table_base;
    }
}

#else

// Other architectures: the target's own vectors (NEON on aarch64), 4 lanes.
#define W 4
#define LEVEL 0
#define K(name) CAT(name, _base)
#include "KernelBody.h"
#undef W
#undef LEVEL
#undef K

const BlendKernelTable *blend_kernels_level(int level) { return level == 0 ? &table_base : NULL; }

#endif

const BlendKernelTable *blend_kernels(void) {
    // Racing first calls compute the same pointer; a relaxed atomic keeps ThreadSanitizer quiet.
    static const BlendKernelTable *chosen;
    const BlendKernelTable *t = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (t) return t;
    int cap = 2;
    const char *env = getenv("BLEND_KERNELS");
    if (env) {
        if (strcmp(env, "baseline") == 0) cap = 0;
        else if (strcmp(env, "avx2") == 0) cap = 1;
    }
    for (int level = cap; level >= 0; level--) {
        if ((t = blend_kernels_level(level))) break;
    }
    __atomic_store_n(&chosen, t, __ATOMIC_RELAXED);
    return t;
}
