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
        .library(name: "BlendModels", targets: ["BlendModels"]),
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
        // zlib from Debian (zlib1g-dev): reads gzip'd files such as CLIP's BPE vocabulary.
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The tensor engine: float32 tensors, BLAS-backed ops, input gradients.
        // Knows nothing of diffusion, CLIP or images on disk.
        .target(
            name: "BlendTensor",
            dependencies: ["COpenBLAS"],
            swiftSettings: engineSettings
        ),
        // The networks: guided-diffusion UNet, CLIP, LPIPS. Know nothing of the CLI.
        .target(
            name: "BlendModels",
            dependencies: ["BlendTensor", "CZlib"]
        ),
        // The `blend` command-line front end.
        .executableTarget(
            name: "BlendCLI",
            dependencies: [
                "BlendTensor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Release-mode micro-benchmarks of the engine (see BENCHMARKS.md).
        .executableTarget(
            name: "BlendBench",
            dependencies: ["BlendTensor", "BlendModels"],
            swiftSettings: engineSettings
        ),
        .testTarget(
            name: "BlendTensorTests",
            dependencies: ["BlendTensor"]
        ),
        .testTarget(
            name: "BlendModelsTests",
            dependencies: ["BlendModels", "BlendTensor"]
        ),
    ]
)
