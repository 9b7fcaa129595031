import Testing
@testable import BlendTensor

/// The BLAS kernel choice by instruction set (issue 22): the rule is a pure function of what
/// OpenBLAS picked, the CPU's flags and the environment.
@Suite struct BLASKernelsTests {
    let xeon = CPUFeatures(flags: ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"])
    let zen3 = CPUFeatures(flags: ["sse3", "avx", "avx2", "fma"])
    let skylakeServer = CPUFeatures(flags: ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"])
    let sandy = CPUFeatures(flags: ["avx"])
    let old = CPUFeatures(flags: ["sse3"])

    @Test func aFallbackBelowTheCPUIsReplacedByTheFamilyOfItsTier() {
        // The Xeon: OpenBLAS 0.3.21 does not know it and takes Prescott.
        let xeonChoice = BLASKernels.decide(autodetected: "Prescott", cpu: xeon, request: .automatic)
        #expect(xeonChoice.family == "Cooperlake" && !xeonChoice.isBelowCPU)
        #expect(xeonChoice.reason.contains("Prescott") && xeonChoice.reason.contains("does not know"))
        #expect(BLASKernels.decide(autodetected: "Prescott", cpu: skylakeServer, request: .automatic).family == "SkylakeX")
        #expect(BLASKernels.decide(autodetected: "Sandybridge", cpu: zen3, request: .automatic).family == "Haswell")
        #expect(BLASKernels.decide(autodetected: "Core2", cpu: sandy, request: .automatic).family == "Sandybridge")
        // AVX2 kernels on an AVX-512 CPU are a tier below too.
        #expect(BLASKernels.decide(autodetected: "Haswell", cpu: xeon, request: .automatic).family == "Cooperlake")
    }

    @Test func aFamilyOfTheCPUsTierOrAnUnknownOneIsKept() {
        for (picked, cpu) in [("Zen", zen3), ("Haswell", zen3), ("Cooperlake", xeon), ("SkylakeX", xeon), ("Prescott", old),
                              ("NEOVERSEN1", zen3), ("ARMV8", old)] {
            let choice = BLASKernels.decide(autodetected: picked, cpu: cpu, request: .automatic)
            #expect(choice.family == picked && !choice.isBelowCPU, "\(picked)")
        }
    }

    @Test func theUsersChoiceIsKeptAndAFallbackIsAWarning() {
        let forced = BLASKernels.decide(autodetected: "Prescott", cpu: xeon, request: .openBLASCoreType("Prescott"))
        #expect(forced.family == "Prescott" && forced.isBelowCPU && forced.reason.contains("OPENBLAS_CORETYPE=Prescott"))
        let kept = BLASKernels.decide(autodetected: "Prescott", cpu: xeon, request: .openBLAS)
        #expect(kept.family == "Prescott" && kept.isBelowCPU)
        let named = BLASKernels.decide(autodetected: "Cooperlake", cpu: xeon, request: .family("Haswell"))
        #expect(named.family == "Haswell" && named.isBelowCPU)
        #expect(!BLASKernels.decide(autodetected: "Haswell", cpu: zen3, request: .openBLAS).isBelowCPU)
    }

    @Test func theEnvironmentNamesTheRequest() {
        #expect(BLASKernels.Request(environment: [:]) == .automatic)
        #expect(BLASKernels.Request(environment: ["BLEND_BLAS_KERNELS": "auto"]) == .automatic)
        #expect(BLASKernels.Request(environment: ["BLEND_BLAS_KERNELS": "openblas"]) == .openBLAS)
        #expect(BLASKernels.Request(environment: ["BLEND_BLAS_KERNELS": "SkylakeX"]) == .family("SkylakeX"))
        // OpenBLAS's own variable wins: it was applied when the library loaded.
        #expect(BLASKernels.Request(environment: ["BLEND_BLAS_KERNELS": "SkylakeX", "OPENBLAS_CORETYPE": "Zen"]) == .openBLASCoreType("Zen"))
    }

    @Test func flagsAndTiers() {
        #expect(xeon.hasAVX512 && xeon.avx512BF16 && !xeon.amx && BLASKernels.tier(of: xeon) == .avx512)
        #expect(!CPUFeatures(flags: ["avx512f", "avx2", "fma"]).hasAVX512)   // F alone is not enough for SkylakeX
        #expect(BLASKernels.tier(of: zen3) == .avx2 && BLASKernels.tier(of: old) == .sse)
        #expect(BLASKernels.tier(of: "COOPERLAKE") == .avx512 && BLASKernels.tier(of: "zen") == .avx2 && BLASKernels.tier(of: "ARMV8") == nil)
        #expect(xeon.summary == "AVX-512 (F, BW, DQ, VL), AVX512_BF16" && old.summary == "SSE only")
        // This process: whatever it chose, it is a family OpenBLAS reports.
        #expect(BLASKernels.current.family == blasCoreName)
    }
}
