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
        .library(name: "BlendTensor", targets: ["BlendTensor"]),
        .library(name: "BlendCheckpoint", targets: ["BlendCheckpoint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS from Debian (libopenblas-dev) through pkg-config.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // The tensor engine: float32 tensors, BLAS-backed ops, input gradients.
        // Knows nothing of diffusion, CLIP or images on disk.
        .target(
            name: "BlendTensor",
            dependencies: ["COpenBLAS"],
            swiftSettings: engineSettings
        ),
        // Reading (and writing) weight files: torch.save zip and legacy archives,
        // TorchScript archives, safetensors; plus the model registry and downloader.
        // Never executes anything from a file; knows no model beyond recognising one.
        // Optimised even in debug builds (safely: -O, not -Ounchecked, since it
        // parses untrusted files): converting gigabytes of fp16 is too slow at -Onone.
        .target(
            name: "BlendCheckpoint",
            dependencies: ["BlendTensor"],
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        // The `blend` command-line front end.
        .executableTarget(
            name: "BlendCLI",
            dependencies: [
                "BlendTensor",
                "BlendCheckpoint",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Release-mode micro-benchmarks of the engine (see BENCHMARKS.md).
        .executableTarget(
            name: "BlendBench",
            dependencies: ["BlendTensor"],
            swiftSettings: engineSettings
        ),
        .testTarget(
            name: "BlendTensorTests",
            dependencies: ["BlendTensor"]
        ),
        .testTarget(
            name: "BlendCheckpointTests",
            dependencies: ["BlendCheckpoint", "BlendTensor"],
            exclude: ["Fixtures"]
        ),
    ]
)
