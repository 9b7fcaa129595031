// swift-tools-version:6.0
import PackageDescription

// The engine is compiled optimised even in debug builds: its hot loops are
// unusable at -Onone, and the test suite runs real convolutions.
let engineSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

let package = Package(
    name: "blend",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "blend", targets: ["BlendCLI"]),
        .executable(name: "blend-bench", targets: ["BlendBench"]),
        .executable(name: "blend-tiny-models", targets: ["BlendTinyModels"]),
        .library(name: "BlendConcurrency", targets: ["BlendConcurrency"]),
        .library(name: "BlendTensor", targets: ["BlendTensor"]),
        .library(name: "BlendModels", targets: ["BlendModels"]),
        .library(name: "BlendDiffusion", targets: ["BlendDiffusion"]),
        .library(name: "BlendEditor", targets: ["BlendEditor"]),
        .library(name: "BlendCheckpoint", targets: ["BlendCheckpoint"]),
        .library(name: "BlendPipeline", targets: ["BlendPipeline"]),
        .library(name: "BlendImage", targets: ["BlendImage"]),
        .library(name: "BlendServer", targets: ["BlendServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 for verifying downloads.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The web app (`blend serve`): HTTP server, multipart uploads, graceful shutdown.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // OpenBLAS from Debian (libopenblas-dev) through pkg-config.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // oneDNN from Debian (libdnnl-dev, no pkg-config file): the engine's second convolution
        // backend, for bf16 (AVX512_BF16 / AMX) and the fp32 shapes where it is faster.
        .systemLibrary(
            name: "CDNNL",
            providers: [.apt(["libdnnl-dev"])]
        ),
        // zlib from Debian (zlib1g-dev): gzip'd files such as CLIP's BPE vocabulary, the raw
        // DEFLATE and CRC-32 of zip archives, and the colour profiles carried into PNG outputs.
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libpng through pkg-config. From Swift only its simplified API (png_image_*) is used: it
        // reports errors in a message field, so no longjmp ever crosses a Swift frame.
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        // 16-bit PNG samples exactly as stored (the simplified API gives them only as linear light
        // with premultiplied alpha): libpng's classic API in C, its setjmp and longjmp inside C.
        .target(name: "CPNG16", dependencies: ["CPNG"]),
        // libjpeg-turbo's TurboJPEG API (libturbojpeg0-dev): its setjmp/longjmp error
        // handling stays inside the C library, and failures come back as return codes.
        .systemLibrary(
            name: "CJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
        ),
        // The bottom module: the lock every other module uses (PThreadMutex, a pthread mutex that
        // ThreadSanitizer can see, in place of Synchronization.Mutex). Knows nothing of tensors.
        .target(name: "BlendConcurrency"),
        // The engine's elementwise hot loops (softmax sweeps, erf/GELU/GEGLU, sigmoid/SiLU) in C,
        // compiled for baseline x86-64, AVX2+FMA and AVX-512 and chosen at run time (see its
        // header). Used only by BlendTensor.
        .target(name: "CBlendKernels"),
        // The tensor engine: float32 tensors, BLAS-backed ops, input gradients.
        // Knows nothing of diffusion, CLIP or images on disk.
        .target(
            name: "BlendTensor",
            dependencies: ["BlendConcurrency", "COpenBLAS", "CDNNL", "CBlendKernels"],
            swiftSettings: engineSettings
        ),
        // The networks: guided-diffusion UNet, CLIP, LPIPS. Know nothing of the CLI.
        .target(
            name: "BlendModels",
            dependencies: ["BlendConcurrency", "BlendTensor", "CZlib"]
        ),
        // Gaussian diffusion: schedules, respacing, posterior and samplers (DDPM, DDIM).
        // Pure values over engine tensors; knows nothing of CLIP or the CLI.
        .target(
            name: "BlendDiffusion",
            dependencies: ["BlendTensor"]
        ),
        // The editor: Blended Diffusion and the local-CLIP baseline, composing the UNet,
        // the diffusion process and CLIP. Knows nothing of files or the CLI.
        .target(
            name: "BlendEditor",
            dependencies: ["BlendMessages", "BlendTensor", "BlendModels", "BlendDiffusion"]
        ),
        // Reading (and writing) weight files: torch.save zip and legacy archives,
        // TorchScript archives, safetensors; plus the model registry and downloader.
        // Never executes anything from a file; knows no model beyond recognising one.
        // Optimised even in debug builds (safely: -O, not -Ounchecked, since it
        // parses untrusted files): converting gigabytes of fp16 is too slow at -Onone.
        .target(
            name: "BlendCheckpoint",
            dependencies: ["BlendTensor", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // Application services shared by the front ends: finding and loading model files,
        // running an edit from files to files.
        .target(
            name: "BlendPipeline",
            dependencies: ["BlendConcurrency", "BlendTensor", "BlendCheckpoint", "BlendModels", "BlendDiffusion", "BlendEditor", "BlendImage"]
        ),
        // Photos and masks on disk: PNG/JPEG decoding (EXIF orientation) and atomic encoding,
        // Pillow-exact Lanczos and nearest resizing, edit masks, paste-back, contact sheets,
        // and conversion to and from engine tensors. Knows nothing of the models.
        .target(
            name: "BlendImage",
            dependencies: ["BlendMessages", "BlendTensor", "CPNG", "CPNG16", "CJPEG", "CZlib"]
        ),
        // Sentences about the user's settings that each front end words its own way (blend
        // edit's flags, the web API's fields): errors and notices are phrased once, where they
        // are found. Depends on nothing.
        .target(name: "BlendMessages"),
        // `blend serve`: the local web app (Hummingbird 2): a JSON API over the pipeline, a job
        // queue with a data directory, progress as server-sent events, and the one page
        // (vanilla HTML/CSS/JS, compiled into the binary).
        .target(
            name: "BlendServer",
            dependencies: [
                "BlendConcurrency",
                "BlendPipeline",
                "BlendImage",
                "BlendEditor",
                "BlendModels",
                "BlendDiffusion",
                "BlendTensor",
                "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [
                .embedInCode("Page/index.html"), .embedInCode("Page/app.js"),
                .embedInCode("Page/style.css"), .embedInCode("Page/favicon.svg"),
            ]
        ),
        // The tiny random-weight model files and small inputs with which the pipeline and
        // server suites run whole edits in well under a second.
        .target(
            name: "BlendPipelineTestSupport",
            dependencies: ["BlendPipeline", "BlendCheckpoint", "BlendDiffusion", "BlendImage", "BlendModels", "BlendTensor"]
        ),
        // Helpers for the test suites (seeded inputs, finite-difference gradient checks, float64
        // references of the engine's ops, a JPEG with a colour profile).
        .target(
            name: "BlendTestSupport",
            dependencies: ["BlendTensor"],
            // The float64 references loop over every multiply-add: optimised, so that the
            // property tests over many shapes and thread counts take seconds in debug builds.
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // The `blend` command-line front end.
        .executableTarget(
            name: "BlendCLI",
            dependencies: [
                "BlendConcurrency",
                "BlendTensor",
                "BlendCheckpoint",
                "BlendModels",
                "BlendPipeline",
                "BlendImage",
                "BlendServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Release-mode micro-benchmarks of the engine (see BENCHMARKS.md).
        .executableTarget(
            name: "BlendBench",
            dependencies: ["BlendTensor", "BlendModels", "BlendDiffusion", "BlendEditor"],
            swiftSettings: engineSettings
        ),
        // Development tool: the suites' tiny random-weight models written to a folder, for
        // manual runs without the real weights (DEVELOPERS.md).
        .executableTarget(
            name: "BlendTinyModels",
            dependencies: ["BlendPipelineTestSupport"]
        ),
        .testTarget(
            name: "BlendConcurrencyTests",
            dependencies: ["BlendConcurrency"]
        ),
        .testTarget(
            name: "BlendTensorTests",
            dependencies: ["BlendTensor", "BlendTestSupport", "CBlendKernels"]
        ),
        .testTarget(
            name: "BlendDiffusionTests",
            dependencies: ["BlendDiffusion", "BlendTensor", "BlendCheckpoint"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "BlendEditorTests",
            dependencies: ["BlendEditor", "BlendModels", "BlendDiffusion", "BlendTensor", "BlendCheckpoint"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "BlendImageTests",
            dependencies: ["BlendImage", "BlendTensor", "BlendTestSupport"],
            // Read in place through #filePath: written by scripts/make-image-fixtures.py.
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "BlendPipelineTests",
            dependencies: ["BlendPipeline", "BlendPipelineTestSupport", "BlendEditor", "BlendImage", "BlendModels", "BlendCheckpoint",
                           "BlendTensor", "BlendTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "BlendServerTests",
            dependencies: [
                "BlendServer", "BlendConcurrency", "BlendPipeline", "BlendPipelineTestSupport", "BlendImage", "BlendModels", "BlendCheckpoint",
                "BlendTensor", "BlendEditor", "CZlib",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "BlendCLITests",
            dependencies: ["BlendConcurrency", "BlendCLI", "BlendServer", "BlendEditor", "BlendPipeline", "BlendPipelineTestSupport", "BlendDiffusion", "BlendImage", "BlendModels", "BlendCheckpoint", "BlendTensor"]
        ),
        .testTarget(
            name: "BlendModelsTests",
            dependencies: ["BlendModels", "BlendTensor", "BlendCheckpoint", "BlendTestSupport"],
            // Read in place through #filePath: parity fixtures written by scripts/make-*-fixtures.py.
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "BlendCheckpointTests",
            dependencies: ["BlendCheckpoint", "BlendTensor"],
            exclude: ["Fixtures"]
        ),
    ]
)
