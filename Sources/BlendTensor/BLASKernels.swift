import COpenBLAS
import Foundation

/// Which OpenBLAS kernel family the engine's GEMMs run on, chosen by what the CPU can do.
///
/// Why: OpenBLAS (Debian's 0.3.21, built with DYNAMIC_ARCH) picks its kernels from a table of
/// CPU model numbers. A CPU newer than the release is not in it, and then OpenBLAS may fall
/// back to kernels far below what the CPU runs: on an Intel Xeon with AVX-512 and AVX512_BF16
/// it takes its Prescott (SSE3) kernels, and the ADM-256 UNet forward takes 15.1 s instead of
/// 5.55 s with its SkylakeX kernels (2.2–3.7× on every GEMM-bound row, issue 22's table). So
/// at the first BLAS call the engine compares the family OpenBLAS chose with the CPU's
/// instruction sets (``CPUFeatures``) and, where the family is of a lower tier, re-initialises
/// OpenBLAS's dispatch with the family made for the CPU's tier (``decide(autodetected:cpu:request:)``
/// and its table). A family of the CPU's own tier is kept: OpenBLAS's model table then knew the
/// CPU (Zen kernels on AMD, Haswell on Zen 5, which it has measured). Measured on the Zen 4
/// (2026-12-08, BENCHMARKS.md "OpenBLAS kernel families"): the AVX2 families (Haswell, Zen)
/// instead of OpenBLAS's Cooperlake change the ADM-256 forward and forward+backward, the SD 1.5
/// CFG step and the VAE decode by −17 % to +3 %, with no family ahead on all four and most of
/// it within the runs' ±10 %: no case for overriding a family of the CPU's own tier yet.
///
/// Results do not depend on the family: every GEMM split the engine makes is bit-exact under
/// each of them (`GEMMSplitTests`, `scripts/test-kernel-sets.sh`); only the speed does.
///
/// Overrides: `OPENBLAS_CORETYPE` (OpenBLAS's own) is respected as the user's choice;
/// `BLEND_BLAS_KERNELS=auto` (the default), `openblas` (keep OpenBLAS's choice, for
/// measurements) or a family name (e.g. `SkylakeX`) through the same re-initialisation.
public enum BLASKernels {
    /// OpenBLAS's kernel families by the widest instruction set they use.
    public enum Tier: Int, Comparable, Sendable, CustomStringConvertible {
        case sse = 1, avx, avx2, avx512

        public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }

        public var description: String {
            switch self {
            case .sse: return "SSE"
            case .avx: return "AVX"
            case .avx2: return "AVX2+FMA"
            case .avx512: return "AVX-512"
            }
        }
    }

    /// The tier of each x86-64 family OpenBLAS 0.3.21 names (`openblas_get_corename`, lower
    /// case); unknown names (other architectures) have none and are never replaced.
    static let tiers: [String: Tier] = [
        "prescott": .sse, "core2": .sse, "penryn": .sse, "dunnington": .sse, "nehalem": .sse, "atom": .sse,
        "opteron": .sse, "opteron_sse3": .sse, "barcelona": .sse, "bobcat": .sse, "nano": .sse,
        "sandybridge": .avx, "bulldozer": .avx, "piledriver": .avx, "steamroller": .avx,
        "haswell": .avx2, "zen": .avx2, "excavator": .avx2, "skylake": .avx2,
        "skylakex": .avx512, "cooperlake": .avx512, "sapphirerapids": .avx512,
    ]

    /// The tier of `family` (OpenBLAS's name, any case); nil for a name not in the table.
    public static func tier(of family: String) -> Tier? { tiers[family.lowercased()] }

    /// The family made for `cpu`'s widest tier: Cooperlake where AVX512_BF16 is there (the
    /// SkylakeX kernels plus bf16 ones), SkylakeX for AVX-512 F/BW/DQ/VL, Haswell for AVX2+FMA,
    /// Sandybridge for AVX; nil for a CPU with none of them (SSE only: nothing better to pick).
    /// Measured: on the Xeon (AVX-512, AVX512_BF16) SkylakeX runs the GEMM-bound rows 2.2–3.7×
    /// faster than the Prescott fallback (issue 22); on the Zen 4 (2026-12-07) OpenBLAS itself
    /// picks Cooperlake, and Prescott would take 1.96× its time on the ADM-256 UNet forward
    /// (BENCHMARKS.md, "OpenBLAS kernel families").
    public static func family(for cpu: CPUFeatures) -> String? {
        if cpu.hasAVX512 { return cpu.avx512BF16 ? "Cooperlake" : "SkylakeX" }
        if cpu.avx2 && cpu.fma { return "Haswell" }
        if cpu.avx { return "Sandybridge" }
        return nil
    }

    /// The CPU's widest tier.
    public static func tier(of cpu: CPUFeatures) -> Tier {
        cpu.hasAVX512 ? .avx512 : cpu.avx2 && cpu.fma ? .avx2 : cpu.avx ? .avx : .sse
    }

    /// What the user asked for.
    public enum Request: Equatable, Sendable {
        /// The default: replace a family below the CPU's tier.
        case automatic
        /// `BLEND_BLAS_KERNELS=openblas`: keep OpenBLAS's choice.
        case openBLAS
        /// `BLEND_BLAS_KERNELS=<family>`.
        case family(String)
        /// `OPENBLAS_CORETYPE` was set: OpenBLAS already followed it.
        case openBLASCoreType(String)

        /// From `BLEND_BLAS_KERNELS` and `OPENBLAS_CORETYPE` in `environment`.
        public init(environment: [String: String]) {
            if let forced = environment["OPENBLAS_CORETYPE"], !forced.isEmpty {
                self = .openBLASCoreType(forced)
                return
            }
            switch environment["BLEND_BLAS_KERNELS"]?.trimmingCharacters(in: .whitespaces) {
            case nil, "", "auto": self = .automatic
            case "openblas": self = .openBLAS
            case let name?: self = .family(name)
            }
        }
    }

    /// What was chosen, and why (``current``).
    public struct Choice: Sendable, Equatable {
        /// The family OpenBLAS picked by itself.
        public var autodetected: String
        /// The family to run on: `autodetected`, or the one OpenBLAS is re-initialised with.
        public var family: String
        /// Why, in a sentence for `blend engine`.
        public var reason: String
        /// The kernels are of a lower tier than the CPU runs (a generic fallback that stays):
        /// the user should hear of it.
        public var isBelowCPU: Bool
    }

    /// The choice for a CPU with `cpu` whose OpenBLAS picked `autodetected`, under `request`.
    /// A pure function: the table below is the whole rule.
    ///
    /// | OpenBLAS picked | request | result |
    /// |---|---|---|
    /// | a family below the CPU's tier | automatic | the CPU's tier's family (``family(for:)``) |
    /// | a family of the CPU's tier (or unknown) | automatic | kept |
    /// | anything | `openblas`, `OPENBLAS_CORETYPE` | kept (a warning if below the CPU) |
    /// | anything | a family name | that family (a warning if below the CPU) |
    public static func decide(autodetected: String, cpu: CPUFeatures, request: Request) -> Choice {
        let cpuTier = tier(of: cpu)
        func below(_ family: String) -> Bool { tier(of: family).map { $0 < cpuTier } ?? false }
        switch request {
        case let .openBLASCoreType(forced):
            return Choice(autodetected: autodetected, family: autodetected,
                          reason: "OPENBLAS_CORETYPE=\(forced) chose them", isBelowCPU: below(autodetected))
        case .openBLAS:
            return Choice(autodetected: autodetected, family: autodetected,
                          reason: "OpenBLAS chose them (BLEND_BLAS_KERNELS=openblas)", isBelowCPU: below(autodetected))
        case let .family(name):
            return Choice(autodetected: autodetected, family: name,
                          reason: "BLEND_BLAS_KERNELS=\(name) chose them (OpenBLAS chose \(autodetected))", isBelowCPU: below(name))
        case .automatic:
            guard let autoTier = tier(of: autodetected), autoTier < cpuTier, let better = family(for: cpu) else {
                return Choice(autodetected: autodetected, family: autodetected,
                              reason: "OpenBLAS chose them; they are made for this CPU's widest instructions (\(cpuTier))",
                              isBelowCPU: false)
            }
            return Choice(autodetected: autodetected, family: better,
                          reason: "OpenBLAS chose its \(autodetected) kernels (\(autoTier)), which this CPU (\(cpuTier)) outruns:"
                            + " it does not know the CPU's model; \(better) was chosen by instruction set", isBelowCPU: false)
        }
    }

    /// The choice this process runs on, made (and applied) at its first BLAS call.
    public static var current: Choice { applied }

    private static let applied: Choice = {
        let autodetected = String(cString: openblas_get_corename())
        var choice = decide(autodetected: autodetected, cpu: .current, request: Request(environment: ProcessInfo.processInfo.environment))
        if choice.family.lowercased() != autodetected.lowercased() {
            if let now = reinitialize(family: choice.family) {
                choice.family = now
            } else {
                choice = Choice(autodetected: autodetected, family: autodetected,
                                reason: "OpenBLAS chose them; \(choice.family) could not be set (this OpenBLAS build cannot switch kernels)",
                                isBelowCPU: tier(of: autodetected).map { $0 < tier(of: CPUFeatures.current) } ?? false)
            }
        }
        return choice
    }()

    /// Points OpenBLAS's dispatch at `family`: what `OPENBLAS_CORETYPE=family` does at load
    /// time, done again (`gotoblas_dynamic_quit`, then `gotoblas_dynamic_init` reading the
    /// variable). Safe only before any BLAS call is in flight, hence once, at the first call.
    /// Returns the family now in use, or nil where the library has no dynamic dispatch.
    private static func reinitialize(family: String) -> String? {
        typealias Hook = @convention(c) () -> Void
        let library = dlopen(nil, RTLD_NOW)
        guard let quitSymbol = dlsym(library, "gotoblas_dynamic_quit"), let initSymbol = dlsym(library, "gotoblas_dynamic_init") else {
            return nil
        }
        let previous = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        setenv("OPENBLAS_CORETYPE", family, 1)
        unsafeBitCast(quitSymbol, to: Hook.self)()
        unsafeBitCast(initSymbol, to: Hook.self)()
        if let previous { setenv("OPENBLAS_CORETYPE", previous, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        return String(cString: openblas_get_corename())
    }
}

/// The x86-64 instruction sets the BLAS choice depends on, as the kernel reports them
/// (`/proc/cpuinfo`'s flags, which also say the OS saves the registers).
public struct CPUFeatures: Sendable, Equatable {
    public var avx = false
    public var avx2 = false
    public var fma = false
    public var avx512f = false
    public var avx512bw = false
    public var avx512dq = false
    public var avx512vl = false
    public var avx512BF16 = false
    public var amx = false

    public init() {}

    /// From a `flags` line's words (`avx2`, `avx512_bf16`, `amx_tile`, ...).
    public init(flags: Set<String>) {
        avx = flags.contains("avx")
        avx2 = flags.contains("avx2")
        fma = flags.contains("fma")
        avx512f = flags.contains("avx512f")
        avx512bw = flags.contains("avx512bw")
        avx512dq = flags.contains("avx512dq")
        avx512vl = flags.contains("avx512vl")
        avx512BF16 = flags.contains("avx512_bf16")
        amx = flags.contains("amx_tile")
    }

    /// The four AVX-512 subsets OpenBLAS's SkylakeX kernels need.
    public var hasAVX512: Bool { avx512f && avx512bw && avx512dq && avx512vl }

    /// This machine's (none outside Linux or where `/proc/cpuinfo` cannot be read).
    public static let current: CPUFeatures = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return CPUFeatures() }
        return CPUFeatures(flags: Set(line[line.index(after: colon)...].split(separator: " ").map(String.init)))
    }()

    /// E.g. "AVX-512 (F, BW, DQ, VL), AVX512_BF16" — what `blend engine` prints.
    public var summary: String {
        var parts: [String] = []
        if hasAVX512 { parts.append("AVX-512 (F, BW, DQ, VL)") } else if avx2 && fma { parts.append("AVX2+FMA") } else if avx { parts.append("AVX") }
        if avx512BF16 { parts.append("AVX512_BF16") }
        if amx { parts.append("AMX") }
        return parts.isEmpty ? "SSE only" : parts.joined(separator: ", ")
    }
}
