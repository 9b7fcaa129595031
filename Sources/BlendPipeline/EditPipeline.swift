import BlendCheckpoint
import BlendDiffusion
import BlendEditor
import BlendImage
import BlendModels
import BlendTensor
import Foundation

/// The model files an edit reads.
public struct EditModelPaths: Sendable {
    public var diffusion: String
    /// A JSON config for a diffusion checkpoint that is not an official one.
    public var diffusionConfig: UNetConfig?
    public var clip: String
    public var clipVocabulary: String
    /// LPIPS, for the local-CLIP baseline only.
    public var vgg16: String
    public var lpipsLinear: String

    public init(diffusion: String, diffusionConfig: UNetConfig? = nil, clip: String, clipVocabulary: String,
                vgg16: String, lpipsLinear: String) {
        self.diffusion = diffusion
        self.diffusionConfig = diffusionConfig
        self.clip = clip
        self.clipVocabulary = clipVocabulary
        self.vgg16 = vgg16
        self.lpipsLinear = lpipsLinear
    }

    /// The official files in the model cache (`blend models download ...`).
    public static func standard(_ files: ModelFiles = .standard()) -> EditModelPaths {
        EditModelPaths(diffusion: files.diffusion256, diffusionConfig: nil, clip: files.clipViTB16,
                       clipVocabulary: files.clipVocabulary, vgg16: files.vgg16, lpipsLinear: files.lpipsLinear)
    }
}

/// One edit from files to files.
public struct EditRequest: Sendable {
    public var imagePath: String
    public var maskPath: String
    public var outputDirectory: String
    public var settings: EditSettings
    public var models: EditModelPaths
    /// Also write each sample's x0 prediction at a fifth of the steps, as the reference shows them.
    public var saveIntermediates: Bool = false

    public init(imagePath: String, maskPath: String, outputDirectory: String, settings: EditSettings, models: EditModelPaths) {
        self.imagePath = imagePath
        self.maskPath = maskPath
        self.outputDirectory = outputDirectory
        self.settings = settings
        self.models = models
    }
}

/// What an edit wrote, and how it went: saved as `report.json`.
public struct EditReport: Codable, Sendable {
    public struct Sample: Codable, Sendable {
        public var rank: Int
        public var file: String
        public var distance: Float
        public var iteration: Int
        public var batchIndex: Int
    }
    public struct Timings: Codable, Sendable {
        public var loadModelsSeconds: Double
        public var editSeconds: Double
        public var secondsPerStep: Double
        public var totalSeconds: Double
    }
    public var prompt: String
    public var image: String
    public var imageSize: [Int]
    public var mask: String
    public var modelSize: Int
    public var settings: EditSettings
    public var models: [String: String]
    public var samples: [Sample]
    public var contactSheet: String
    public var timings: Timings
    public var blendVersion: String
}

/// What the pipeline is doing, for progress display.
public enum EditEvent: Sendable {
    case checkedInputs
    case loadingModels
    case loadedModels(seconds: Double)
    case step(EditProgress)
    case wroteOutputs(directory: String)
}

/// Errors about the output location.
public enum OutputError: Error, Equatable, CustomStringConvertible {
    case notWritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notWritable(path, reason):
            return "cannot write to the output directory \(path) (\(reason)): choose another with --out"
        }
    }
}

public enum EditPipeline {
    public static let version = "0.1.0"

    /// Runs `request`: checks every input before loading the (large) models, edits, and
    /// writes `ranked/` (full-resolution results, best first), `contact_sheet.png` and
    /// `report.json` into the output directory. Every file is written atomically.
    public static func run(_ request: EditRequest, events: (EditEvent) throws -> Void = { _ in }) throws -> EditReport {
        let start = Date()
        let settings = request.settings
        // 1. Inputs, cheapest first, so that a typo fails in milliseconds rather than after
        //    loading 2.5 GB of weights.
        try prepareOutputDirectory(request.outputDirectory)
        let photo = try RGBImage(contentsOf: request.imagePath)
        var mask = try EditMask(contentsOf: request.maskPath)
        try EditMask.checkAspectRatio(mask: mask.size, image: photo.size)
        if settings.invertMask { mask = mask.inverted() }
        try mask.requireEditedRegion()
        if settings.method == .blended { try mask.requireBackground() }
        let tokenizer = try ClipTokenizer(vocabularyFile: request.models.clipVocabulary)
        let tokens = try tokenizer.tokenize(settings.prompt)
        try settings.validate(totalSteps: try spacedTimesteps(original: 1000, spec: settings.timestepRespacing).count)
        try ModelLoader.requireFile(request.models.diffusion, role: .diffusion)
        try ModelLoader.requireFile(request.models.clip, role: .clip)
        if settings.method == .localClip && settings.lpipsSimLambda != 0 {
            try ModelLoader.requireFile(request.models.vgg16, role: .vgg16)
            try ModelLoader.requireFile(request.models.lpipsLinear, role: .lpipsLinear)
        }
        try events(.checkedInputs)

        // 2. Models.
        try events(.loadingModels)
        let loadStart = Date()
        let unet = try ModelLoader.unet(path: request.models.diffusion, config: request.models.diffusionConfig)
        let clip = try ModelLoader.clip(path: request.models.clip)
        let lpips = settings.method == .localClip && settings.lpipsSimLambda != 0
            ? try ModelLoader.lpips(vggPath: request.models.vgg16, linearPath: request.models.lpipsLinear) : nil
        let loadSeconds = Date().timeIntervalSince(loadStart)
        try events(.loadedModels(seconds: loadSeconds))

        // 3. The edit at the model's resolution. The editor gets the mask as the user gave it;
        //    inversion has already been applied here.
        var editorSettings = settings
        editorSettings.invertMask = false
        let size = unet.config.imageSize
        let modelImage = try photo.resizedLanczos(width: size, height: size)
        let modelMask = try mask.resized(to: ImageSize(width: size, height: size))
        let editor = try BlendedDiffusionEditor(models: EditorModels(unet: unet, clip: clip, lpips: lpips), settings: editorSettings)
        let text = try editor.promptEmbedding(tokens: tokens)
        let editStart = Date()
        let intermediates = URL(fileURLWithPath: request.outputDirectory).appendingPathComponent("intermediates")
        if request.saveIntermediates {
            try FileManager.default.createDirectory(at: intermediates, withIntermediateDirectories: true)
        }
        var stepsDone = 0
        let results = try editor.edit(image: modelImage.tensor(), mask: modelMask.tensor(), promptEmbedding: text) { progress in
            stepsDone += 1
            if request.saveIntermediates && (progress.step % max(1, progress.steps / 5) == 0 || progress.step == progress.steps) {
                for b in 0..<progress.predictedImage.dim(0) {
                    let image = try RGBImage(tensor: progress.predictedImage.sliced(b..<b + 1, axis: 0))
                    try image.write(to: intermediates.appendingPathComponent(
                        String(format: "iteration%02d_sample%02d_step%03d.png", progress.iteration + 1, b + 1, progress.step)).path)
                }
            }
            try events(.step(progress))
        }
        let editSeconds = Date().timeIntervalSince(editStart)

        // 4. Outputs: full-resolution results with the untouched background pasted back. They
        //    are written into a staging folder and moved into place together at the end, so a
        //    run that dies here leaves the previous results (or nothing), never a mix.
        let output = URL(fileURLWithPath: request.outputDirectory)
        let staging = output.appendingPathComponent(".blend-staging-\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        defer { try? FileManager.default.removeItem(at: staging) }
        let ranked = staging.appendingPathComponent("ranked")
        try FileManager.default.createDirectory(at: ranked, withIntermediateDirectories: true)
        var samples: [EditReport.Sample] = []
        var sheetResults: [(image: RGBImage, score: Float)] = []
        for (rank, result) in results.enumerated() {
            let modelResult = try RGBImage(tensor: result.image)
            let full = try pasteEdit(modelResult, into: photo, mask: mask)
            let name = String(format: "%02d_distance_%.4f.png", rank + 1, result.distance)
            try full.write(to: ranked.appendingPathComponent(name).path)
            samples.append(.init(rank: rank + 1, file: "ranked/\(name)", distance: result.distance,
                                 iteration: result.iteration, batchIndex: result.batchIndex))
            sheetResults.append((modelResult, result.distance))
        }
        let sheetPath = staging.appendingPathComponent("contact_sheet.png").path
        try ContactSheet(source: modelImage, mask: modelMask, results: sheetResults).write(to: sheetPath)

        let report = EditReport(
            prompt: settings.prompt, image: request.imagePath, imageSize: [photo.width, photo.height], mask: request.maskPath,
            modelSize: size, settings: settings,
            models: ["diffusion": request.models.diffusion, "clip": request.models.clip],
            samples: samples, contactSheet: "contact_sheet.png",
            timings: .init(loadModelsSeconds: loadSeconds, editSeconds: editSeconds,
                           secondsPerStep: stepsDone > 0 ? editSeconds / Double(stepsDone) : 0,
                           totalSeconds: Date().timeIntervalSince(start)),
            blendVersion: version)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let json = try encoder.encode(report)
        try writeFileAtomically(Array(json) + [0x0A], to: staging.appendingPathComponent("report.json").path)
        // report.json last: its presence means the run finished.
        for name in ["ranked", "contact_sheet.png", "report.json"] {
            let destination = output.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: destination)
            do {
                try FileManager.default.moveItem(at: staging.appendingPathComponent(name), to: destination)
            } catch {
                throw OutputError.notWritable(path: destination.path, reason: "the result could not be moved into place")
            }
        }
        try events(.wroteOutputs(directory: request.outputDirectory))
        return report
    }

    /// Creates the output directory if needed and proves it writable with a probe file.
    static func prepareOutputDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw OutputError.notWritable(path: path, reason: "it cannot be created")
        }
        let probe = URL(fileURLWithPath: path).appendingPathComponent(".blend-write-test-\(getpid())").path
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
            throw OutputError.notWritable(path: path, reason: "permission denied")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }
}
