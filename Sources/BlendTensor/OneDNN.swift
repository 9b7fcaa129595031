import CDNNL
import BlendConcurrency
#if canImport(Glibc)
import Glibc
#endif

/// oneDNN (Debian's libdnnl, the CPU primitives library PyTorch uses) as a second
/// convolution backend: its bf16 kernels (AVX512_BF16 / AMX), and its fp32 kernels for the
/// shapes where they beat the engine's own. One CPU engine and stream for the process;
/// primitives are created once per shape and kept, with scratchpads the engine allocates
/// (so executions never share library-owned buffers).
enum OneDNN {
    /// The CPU engine and its stream. oneDNN runs its kernels on its own OpenMP threads.
    struct Context: @unchecked Sendable {
        let engine: dnnl_engine_t
        let stream: dnnl_stream_t
    }

    /// nil when oneDNN cannot create a CPU engine (then every convolution stays on the engine).
    static let context: Context? = {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success,
              let stream else { return nil }
        return Context(engine: engine, stream: stream)
    }()

    /// Executions are serialised: each already uses every core.
    static let executionLock = PThreadMutex<Void>(())

    static var versionString: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    static var cpuISA: dnnl_cpu_isa_t { dnnl_get_effective_cpu_isa() }

    static var cpuISAName: String {
        switch cpuISA {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_sse41: return "sse41"
        default: return "isa 0x" + String(cpuISA.rawValue, radix: 16)
        }
    }

    /// Whether bf16 convolutions run on bf16 instructions: oneDNN sees AVX512_BF16 (or AMX,
    /// which includes it) and creates a bf16 convolution. (oneDNN would also emulate bf16 on
    /// plain AVX-512, more slowly than fp32; that does not count.)
    static let supportsBF16: Bool = {
        let bf16Bits = dnnl_cpu_isa_avx512_core_bf16.rawValue
        guard context != nil, cpuISA.rawValue & bf16Bits == bf16Bits else { return false }
        let probe = OneDNNConvolution.Shape(batch: 1, inChannels: 16, height: 8, width: 8, outChannels: 16,
                                            kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1,
                                            bf16: true, bias: true)
        return OneDNNConvolution.make(probe) != nil
    }()

    /// A memory descriptor of `dims` with `type` in layout `tag` (`dnnl_format_tag_any`: the
    /// primitive's choice).
    static func descriptor(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t? {
        var md = dnnl_memory_desc_t()
        var d = dims.map(Int64.init)
        guard dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), &d, type, tag) == dnnl_success else { return nil }
        return md
    }

    /// The descriptor a primitive descriptor reports for `what` (a zero descriptor, of size 0,
    /// when it has none, e.g. no scratchpad).
    static func query(_ pd: dnnl_primitive_desc_t, _ what: dnnl_query_t) -> dnnl_memory_desc_t {
        guard let md = dnnl_primitive_desc_query_md(pd, what, 0) else { return dnnl_memory_desc_t() }
        return md.pointee
    }

    static func bytes(_ md: dnnl_memory_desc_t) -> Int {
        var md = md
        return dnnl_memory_desc_get_size(&md)
    }

    static func equal(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
        var a = a, b = b
        return dnnl_memory_desc_equal(&a, &b) != 0
    }

    /// A primitive from `pd` (which is kept alive with it by the caller).
    static func primitive(_ pd: dnnl_primitive_desc_t) -> dnnl_primitive_t? {
        var p: dnnl_primitive_t?
        guard dnnl_primitive_create(&p, pd) == dnnl_success else { return nil }
        return p
    }

    /// Runs `primitive` on the memory `args` (argument index, descriptor, data) on `threads`
    /// OpenMP threads and waits.
    static func execute(_ primitive: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)],
                        threads: Int = EngineThreads.count) {
        guard let context else { preconditionFailure("oneDNN primitive without an engine") }
        var memories: [dnnl_memory_t] = []
        memories.reserveCapacity(args.count)
        defer { for m in memories { dnnl_memory_destroy(m) } }
        var execArgs: [dnnl_exec_arg_t] = []
        for (index, md, data) in args {
            var md = md
            var memory: dnnl_memory_t?
            guard dnnl_memory_create(&memory, &md, context.engine, data) == dnnl_success, let memory else {
                preconditionFailure("oneDNN could not wrap a buffer")
            }
            memories.append(memory)
            execArgs.append(dnnl_exec_arg_t(arg: index, memory: memory))
        }
        let status = executionLock.withLock { _ in
            useThreads(threads)
            let s = dnnl_primitive_execute(primitive, context.stream, Int32(execArgs.count), execArgs)
            return s == dnnl_success ? dnnl_stream_wait(context.stream) : s
        }
        // The shapes and layouts were accepted when the primitive was created; a failure
        // here is a broken library, not a bad input.
        precondition(status == dnnl_success, "oneDNN execution failed (status \(status.rawValue))")
    }
}

extension OneDNN {
    /// OpenMP's `omp_set_num_threads`, from the libgomp that Debian's libdnnl runs its kernels
    /// on (nil where oneDNN was built on another runtime: it then picks its own count).
    private static let ompSetNumThreads: (@convention(c) (Int32) -> Void)? = {
        #if canImport(Glibc)
        guard let gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD), let symbol = dlsym(gomp, "omp_set_num_threads") else {
            return nil
        }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Void).self)
        #else
        return nil
        #endif
    }()

    /// Gives oneDNN's next primitive creation or execution on this thread `threads` OpenMP
    /// threads: OpenMP's count is per calling thread, and by default all the CPUs it sees,
    /// ignoring `--threads` and a cgroup quota. oneDNN fixes a primitive's threads when it is
    /// created, so primitives are kept per count (``OneDNNConvolution/Shape/threads``).
    static func useThreads(_ threads: Int) {
        ompSetNumThreads?(Int32(threads))
    }
}

/// A reorder between two layouts (and data types) of the same tensor.
final class OneDNNReorder: @unchecked Sendable {
    let from: dnnl_memory_desc_t, to: dnnl_memory_desc_t
    private let pd: dnnl_primitive_desc_t
    private let primitive: dnnl_primitive_t

    init?(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t) {
        guard let context = OneDNN.context else { return nil }
        var src = from, dst = to
        var pd: dnnl_primitive_desc_t?
        guard dnnl_reorder_primitive_desc_create(&pd, &src, context.engine, &dst, context.engine, nil) == dnnl_success,
              let pd else { return nil }
        guard let primitive = OneDNN.primitive(pd) else { dnnl_primitive_desc_destroy(pd); return nil }
        self.from = from
        self.to = to
        self.pd = pd
        self.primitive = primitive
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(pd)
    }

    func run(_ source: UnsafeMutableRawPointer, _ destination: UnsafeMutableRawPointer) {
        OneDNN.execute(primitive, [(Int32(CDNNL_ARG_FROM), from, source), (Int32(CDNNL_ARG_TO), to, destination)])
    }
}
