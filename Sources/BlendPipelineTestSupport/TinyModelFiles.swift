import Foundation
import BlendCheckpoint
import BlendImage
import BlendModels
import BlendPipeline
import BlendTensor

/// Model files shared by the pipeline suites (made once; removed when the test process exits).
public let sharedTinyModels: TinyModelFiles = {
    let models = try! TinyModelFiles()
    sharedTinyModelsDirectory = models.directory
    atexit { if let directory = sharedTinyModelsDirectory { try? FileManager.default.removeItem(at: directory) } }
    return models
}()
nonisolated(unsafe) var sharedTinyModelsDirectory: URL?

/// Tiny random-weight model files written with our own safetensors writer, under the
/// official key names: a 16x16 UNet (with its JSON config), a CLIP with the full
/// 49,408-token vocabulary but 64-wide layers, and the head of CLIP's BPE vocabulary.
/// Enough to run the whole pipeline end to end in well under a second a step.
public struct TinyModelFiles: Sendable {
    public let directory: URL
    public var paths: EditModelPaths

    public static let unetConfig = UNetConfig(imageSize: 16, modelChannels: 32, numResBlocks: 1, channelMult: [1, 1],
                                       attentionResolutions: [8], numHeadChannels: 16)
    public static let clipConfig = ClipConfig(embedDim: 16, imageResolution: 16, visionLayers: 1, visionWidth: 64, visionPatchSize: 8,
                                       transformerWidth: 64, transformerHeads: 1, transformerLayers: 1)

    /// A working folder of its own (removed by ``remove()``) for a test that uses the shared
    /// model files: making the models is the slow part of a pipeline test.
    public static func scratch() throws -> TinyModelFiles {
        let shared = sharedTinyModels
        let directory = shared.directory.appendingPathComponent("scratch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return TinyModelFiles(directory: directory, paths: shared.paths)
    }

    private init(directory: URL, paths: EditModelPaths) {
        self.directory = directory
        self.paths = paths
    }

    /// New model files in `folder` (by default a new temporary folder); with
    /// `sharingClipWith`, only a new UNet (CLIP and its vocabulary are that one's).
    public init(unetConfig: UNetConfig = TinyModelFiles.unetConfig, sharingClipWith shared: TinyModelFiles? = nil,
                in folder: URL? = nil) throws {
        directory = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("blend-tiny-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var seed: UInt64 = 11
        func collect(_ build: (ModelWeights) throws -> Void) throws -> [SafetensorsTensor] {
            var made: [(String, Tensor)] = []
            let weights = ModelWeights(synthesizing: { key, shape in
                seed &+= 1
                var rng = SplitMix64(seed: seed)
                let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
                var t = try Tensor.randomNormal(shape, std: 1 / Float(fanIn).squareRoot(), using: &rng)
                if key.hasSuffix("norm.weight") || key.contains("ln_") || key.hasSuffix(".0.weight") && shape.count == 1 { t = t + 1 }
                made.append((key, t))
                return t
            }, modelName: "tiny")
            try build(weights)
            return try made.map { try SafetensorsTensor(name: $0.0, tensor: $0.1, as: .float16) }
        }
        let unet = try collect { _ = try UNetModel(config: unetConfig, weights: $0) }
        let unetPath = directory.appendingPathComponent("tiny_unet.safetensors")
        try SafetensorsWriter.write(unet, to: unetPath)
        var clipPath = directory.appendingPathComponent("tiny_clip.safetensors")
        if let shared {
            clipPath = URL(fileURLWithPath: shared.paths.clip)
        } else {
            let clip = try collect { _ = try ClipModel(weights: $0, config: Self.clipConfig) }
            try SafetensorsWriter.write(clip, to: clipPath)
        }
        let vocab = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/BlendModelsTests/Fixtures/clip_vocab_head.txt.gz")
        paths = EditModelPaths(diffusion: unetPath.path, diffusionConfig: unetConfig, clip: clipPath.path,
                               clipVocabulary: vocab.path, vgg16: directory.appendingPathComponent("missing-vgg16.pth").path,
                               lpipsLinear: directory.appendingPathComponent("missing-vgg.pth").path)
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }
}


/// Writes the tiny CLIP with a token table of `vocabularySize` rows to `url` (safetensors):
/// with fewer rows than a vocabulary has tokens, the two files do not belong together.
public func writeTinyClip(vocabularySize: Int, to url: URL) throws {
    var config = TinyModelFiles.clipConfig
    config.vocabSize = vocabularySize
    var tensors: [SafetensorsTensor] = []
    var rng = SplitMix64(seed: 5)
    _ = try ClipModel(weights: ModelWeights(synthesizing: { key, shape in
        let t = try Tensor.randomNormal(shape, std: 0.02, using: &rng)
        tensors.append(try SafetensorsTensor(name: key, tensor: t))
        return t
    }, modelName: "tiny"), config: config)
    try SafetensorsWriter.write(tensors, to: url)
}

/// A 40x30 photo (not square, not the model size) and a mask of its centre.
public func writePhotoAndMask(in directory: URL, maskSize: (Int, Int) = (40, 30), maskValue: (Int, Int) -> UInt8 = { x, y in
    (12..<28).contains(x) && (8..<22).contains(y) ? 255 : 0
}) throws -> (photo: String, mask: String) {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var pixels: [UInt8] = []
    for y in 0..<30 { for x in 0..<40 { pixels += [UInt8(x * 6), UInt8(y * 8), UInt8((x * y) % 256)] } }
    let photo = try RGBImage(width: 40, height: 30, pixels: pixels)
    let photoPath = directory.appendingPathComponent("photo.png").path
    try photo.write(to: photoPath)
    var maskPixels: [UInt8] = []
    for y in 0..<maskSize.1 { for x in 0..<maskSize.0 { let v = maskValue(x, y); maskPixels += [v, v, v] } }
    let maskPath = directory.appendingPathComponent("mask.png").path
    try RGBImage(width: maskSize.0, height: maskSize.1, pixels: maskPixels).write(to: maskPath)
    return (photoPath, maskPath)
}
