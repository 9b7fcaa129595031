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
        .library(name: "BlendDiffusion", targets: ["BlendDiffusion"]),
        .library(name: "BlendImage", targets: ["BlendImage"]),
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
        // libpng through pkg-config. Only its simplified API (png_image_*) is used: it reports
        // errors in a message field, so no longjmp ever crosses a Swift frame.
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        // libjpeg-turbo's TurboJPEG API (libturbojpeg0-dev): its setjmp/longjmp error
        // handling stays inside the C library, and failures come back as return codes.
        .systemLibrary(
            name: "CJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
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
            dependencies: ["BlendTensor"]
        ),
        // Gaussian diffusion: schedules, respacing, posterior and samplers (DDPM, DDIM).
        // Pure values over engine tensors; knows nothing of CLIP or the CLI.
        .target(
            name: "BlendDiffusion",
            dependencies: ["BlendTensor"]
        ),
        // Photos and masks on disk: PNG/JPEG decoding (EXIF orientation) and atomic encoding,
        // Pillow-exact Lanczos and nearest resizing, edit masks, paste-back, contact sheets,
        // and conversion to and from engine tensors. Knows nothing of the models.
        .target(
            name: "BlendImage",
            dependencies: ["BlendTensor", "CPNG", "CJPEG"]
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
            name: "BlendDiffusionTests",
            dependencies: ["BlendDiffusion", "BlendTensor"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "BlendImageTests",
            dependencies: ["BlendImage", "BlendTensor"],
            // Read in place through #filePath: written by scripts/make-image-fixtures.py.
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "BlendModelsTests",
            dependencies: ["BlendModels", "BlendTensor"],
            // Read in place through #filePath: parity fixtures written by scripts/make-*-fixtures.py.
            exclude: ["Fixtures"]
        ),
    ]
)
