import BlendCheckpoint
import BlendDiffusion
import BlendEditor
import BlendImage
import BlendModels
import BlendTensor
import Foundation

/// What a run makes, recorded as `job.json` in its folder: `--resume` continues a run only
/// when this is the same (the batch size aside, which changes nothing in the results).
struct EditJob: Codable, Equatable {
    var image: String
    var imageChecksum: UInt32
    var mask: String?
    var maskChecksum: UInt32
    var settings: EditSettings
    var maskOptions: MaskOptions
    var region: PixelBox
    var modelSize: Int
    var diffusion: String
    var clip: String
    /// The latent method's options and Stable Diffusion model (nil for the pixel methods).
    var latent: LatentOptions?
    var stableDiffusion: String?
    var stableDiffusionConfig: String?

    func matches(_ other: EditJob, ignoringSeed: Bool) -> Bool {
        var a = self, b = other
        a.settings = a.settings.withUnusedAtDefaults
        b.settings = b.settings.withUnusedAtDefaults
        a.settings.batchSize = 1
        b.settings.batchSize = 1
        if ignoringSeed { b.settings.seed = a.settings.seed }
        return a == b
    }
}

/// An edit's inputs, read and checked by ``EditPipeline/check(_:)``.
public struct CheckedEdit: Sendable {
    /// The photo as read (transparency and colour profile included).
    public let photo: Photo
    /// The mask's values at the photo's size, inverted if asked.
    public let softMask: SoftMask
    /// The prompt's CLIP tokens (truncated if asked and needed).
    public let tokens: [Int]
    /// The share of the photo's pixels to edit.
    public let editedFraction: Double
    /// Notes and warnings about the inputs, for the user.
    public let notices: [String]
    /// The part of the photo the model edits, and the model's size.
    public var region: PixelBox { geometry.region }
    public var modelSize: Int { geometry.modelSize }
    let geometry: EditGeometry
    /// The UNet, when it had to be loaded to learn its size.
    let preloadedUNet: UNetModel?
    let loadSeconds: Double
    /// For the latent method: what the Stable Diffusion files are and the prediction type used.
    let latentModel: (info: StableDiffusionInfo, predictionType: PredictionType)?
    /// Tokens in CLIP's vocabulary file, checked against the CLIP model's table once it is loaded.
    let vocabularySize: Int
}

public enum EditPipeline {
    public static let version = "0.2.0"

    /// Runs `request`: reads and checks every input before anything is created or any model
    /// loaded, then edits in a new run folder `OUT/runs/<id>/` (or the resumed one), writing
    /// each sample the moment it is finished, and at the end `ranked/`, `contact_sheet.png`
    /// and `report.json`, and points `OUT/latest` at the run.
    ///
    /// Cancelling: a throw from `events` (e.g. `CancellationError()`, at any `.step` or
    /// `.sampleFinished`) stops the run there and is rethrown. Finished samples stay in the
    /// run folder, and the same request with `resume = true` continues from them; a run that
    /// finished no sample is removed. The output folder's lock is released either way.
    ///
    /// - Throws: ``ImageError``, ``MaskError``, `ClipTokenizerError`, ``ModelLoadingError``,
    ///   `EditError` for bad inputs (before anything is written); ``OutputError`` when the
    ///   output folder is unusable or busy (another run holds its lock); whatever `events` throws.
    public static func run(_ request: EditRequest, events: (EditEvent) throws -> Void = { _ in }) throws -> EditReport {
        let start = Date()
        // 1. Inputs, before anything is created or any model loaded.
        let checked = try check(request)
        var notices: [String] = []
        func notice(_ text: String) throws {
            notices.append(text)
            try events(.notice(text))
        }
        for text in checked.notices { try notice(text) }
        let precision = request.precision.effective
        if request.precision == .bf16, let note = ComputePrecision.bf16Unavailable { try notice(note) }
        try events(.checkedInputs)
        var settings = request.settings
        let photo = checked.photo, soft = checked.softMask, geometry = checked.geometry
        let editedFraction = checked.editedFraction
        var loadSeconds = checked.loadSeconds
        let isLatent = settings.method == .latent

        if request.resume && OutputFolder.unfinishedRunNames(in: request.outputDirectory).isEmpty
            && OutputFolder.unpublishedRunNames(in: request.outputDirectory).isEmpty {
            throw OutputError.nothingToResume(path: request.outputDirectory, reason: "it holds no unfinished run")
        }

        // 2. The output folder: locked, cleaned of what killed runs left, and a run folder.
        let existed = FileManager.default.fileExists(atPath: request.outputDirectory)
        let folder = try OutputFolder(path: request.outputDirectory, hook: request.fileOperationHook)
        // Declared before the run folder's cleanup, so it runs after it: a run that failed
        // into a folder it created, keeping nothing, removes the folder too.
        var keptSomething = false
        defer {
            folder.unlock()
            if !existed && !keptSomething { try? FileManager.default.removeItem(at: folder.root) }
        }
        let photoChecksum = contentChecksum(photo.image.pixels + (photo.alpha ?? []))
        func job() -> EditJob {
            EditJob(image: request.imagePath, imageChecksum: photoChecksum, mask: request.maskPath,
                    maskChecksum: contentChecksum(soft.values), settings: settings, maskOptions: request.maskOptions,
                    region: geometry.region, modelSize: geometry.modelSize,
                    diffusion: isLatent ? "" : request.models.diffusion, clip: request.models.clip,
                    latent: isLatent ? request.latent : nil, stableDiffusion: isLatent ? request.models.stableDiffusion : nil,
                    stableDiffusionConfig: isLatent ? request.models.stableDiffusionConfig : nil)
        }
        var resumed: RunFolder?
        if request.resume {
            switch try resumePoint(request, folder: folder, job: job()) {
            case let .unpublished(finished, report):
                try folder.publish(finished)
                keptSomething = true
                try notice("\(finished.id) had finished but was not yet OUT/latest (interrupted at its end): it is now")
                try events(.wroteOutputs(directory: finished.directory.path))
                return report
            case let .unfinished(run, seed):
                resumed = run
                settings.seed = seed
            }
        } else if request.randomSeed {
            settings.seed = EditSettings.randomSeed()
        }
        if request.randomSeed { try notice("random seed: \(settings.seed)") }
        let kept = try folder.removeStale(keeping: resumed)
        for run in kept {
            try notice("the unfinished run \(run.id) (\(run.finishedSamples().count) samples) is kept in"
                + " \(folder.runsDirectory.path): --resume with its inputs and settings continues it")
        }
        let run = try resumed ?? folder.createRun()
        run.removeTemporaryFiles()
        var done = resumed?.finishedSamples().filter { $0.key < settings.samples } ?? [:]
        if resumed != nil { try notice("resuming \(run.id): \(done.count) of \(settings.samples) samples already finished") }
        var finishedAnything = !done.isEmpty
        // A failed or cancelled run that finished nothing leaves nothing.
        var completed = false
        defer {
            if !completed && !finishedAnything && resumed == nil { try? FileManager.default.removeItem(at: run.directory) }
            keptSomething = completed || finishedAnything || resumed != nil
        }
        if resumed == nil { try run.writeJSON(job(), to: run.jobFile, step: "write job.json") }

        // 3. Models (not needed when a resumed run has every sample).
        let remaining = (0..<settings.samples).filter { done[$0] == nil }
        var editSeconds = 0.0, stepsDone = 0
        var thumbnails: [Int: RGBImage] = [:]
        let tileHeight = 256
        try events(.planned(EditPlan(runDirectory: run.directory.path, region: geometry.region, modelSize: geometry.modelSize,
                                     editedFraction: editedFraction, seed: settings.seed, resumedSamples: done.keys.sorted(),
                                     totalSamples: settings.samples,
                                     reconstructionSteps: isLatent ? request.latent.backgroundReconstructionSteps * remaining.count : 0)))
        // A finished sample: pasted into the photo, written, recorded, announced.
        var weights: [Float] = []
        func finish(index: Int, image: Tensor, distance: Float) throws {
            let full = try pasteEdit(RGBImage(tensor: image), into: photo, region: geometry.region, weights: weights)
            let file = RunFolder.sampleFileName(index)
            try folder.step("write \(file)")
            try full.writePNG(to: run.directory.appendingPathComponent(file).path)
            let entry = RunFolder.Progress(index: index, file: file, distance: distance)
            try run.appendProgress(entry)
            done[index] = entry
            finishedAnything = true
            thumbnails[index] = try thumbnail(full.image, height: tileHeight)
            try events(.sampleFinished(FinishedSample(index: index, file: run.directory.appendingPathComponent(file).path,
                                                      distance: distance, finished: done.count, total: settings.samples)))
        }
        if !remaining.isEmpty {
            weights = settings.pastesBackground
                ? pasteWeights(mask: geometry.mask, soft: soft, threshold: request.maskOptions.threshold, feather: request.maskOptions.feather)
                : regionWeights(geometry.region, photo: photo.size)
            try events(.loadingModels)
            let loadStart = Date()
            // What the loaders say about the files (e.g. which weights of a training checkpoint
            // were used) reaches the front end as notices once the models are in.
            var loaderNotes: [String] = []
            let note: (String) -> Void = { loaderNotes.append($0) }
            let method = try loadMethod(request, checked: checked, note: note)
            for text in loaderNotes { try notice(text) }
            loadSeconds += Date().timeIntervalSince(loadStart)
            try events(.loadedModels(seconds: loadSeconds))

            // 4. The edit at the model's resolution (the mask already inverted).
            let size = geometry.modelSize
            let regionImage = try photo.flattened(over: RGBColor(red: 128, green: 128, blue: 128)).cropped(to: geometry.region)
            let modelImage = try regionImage.resizedLanczos(width: size, height: size)
            let intermediates = run.directory.appendingPathComponent("intermediates")
            if request.saveIntermediates {
                try folder.step("create intermediates")
                try FileManager.default.createDirectory(at: intermediates, withIntermediateDirectories: true)
            }
            let editStart = Date()
            try ComputePrecision.$current.withValue(precision) {
                try method.edit(image: modelImage.tensor(), mask: geometry.modelMask.tensor(), tokens: checked.tokens,
                                indices: remaining, progress: { progress in
                    stepsDone += 1
                    if request.saveIntermediates && (progress.step % max(1, progress.steps / 5) == 0 || progress.step == progress.steps) {
                        try saveIntermediates(progress, to: intermediates, folder: folder, colorProfile: photo.colorProfile)
                    }
                    try events(.step(progress))
                }, reconstruction: { r in
                    try events(.reconstructionStep(r))
                }, finished: { sample, distance in
                    try finish(index: sample.index, image: sample.image, distance: distance)
                })
            }
            editSeconds = Date().timeIntervalSince(editStart)
        }

        // 5. Ranked results, the contact sheet, the report; then `latest`.
        let samples = try writeRanked(Array(done.values), thumbnails: thumbnails, tileHeight: tileHeight, run: run, folder: folder,
                                      photo: photo, mask: geometry.mask)

        let report = EditReport(
            prompt: settings.prompt, image: request.imagePath, imageSize: [photo.size.width, photo.size.height],
            mask: request.maskPath, maskRule: soft.origin, maskOptions: request.maskOptions, editedFraction: editedFraction,
            region: geometry.region, modelSize: geometry.modelSize, settings: settings,
            latent: checked.latentModel.map { model in
                LatentReport(options: request.latent, stableDiffusion: request.models.stableDiffusion, model: model.info.description,
                             predictionType: model.predictionType,
                             stepsRun: min(Int(Double(request.latent.steps) * request.latent.strength), request.latent.steps))
            },
            models: Dictionary(uniqueKeysWithValues: requiredModelFiles(request).compactMap { file in
                file.role.reportKey.map { ($0, file.path) }
            }),
            samples: samples, contactSheet: "contact_sheet.png", notices: notices, runId: run.id, directory: run.directory.path,
            resumedSamples: settings.samples - remaining.count,
            timings: .init(loadModelsSeconds: loadSeconds, editSeconds: editSeconds,
                           secondsPerStep: stepsDone > 0 ? editSeconds / Double(stepsDone) : 0,
                           totalSeconds: Date().timeIntervalSince(start)),
            blendVersion: version, bitsPerChannel: photo.bitsPerChannel, precision: precision, compute: .current)
        // report.json last: its presence means the run finished.
        try run.writeJSON(report, to: run.reportFile, step: "write report.json")
        try folder.publish(run)
        completed = true
        try events(.wroteOutputs(directory: run.directory.path))
        return report
    }

    /// Where a resumed run starts, in `folder`: a finished run that a kill kept from becoming
    /// `OUT/latest` (published as it is: nothing is left to make), else the newest unfinished
    /// run made from `job`'s inputs and settings, with the seed it drew.
    enum ResumePoint {
        case unpublished(RunFolder, EditReport)
        case unfinished(RunFolder, seed: UInt64)
    }

    /// The ``ResumePoint`` of `request` (`resume` set) in `folder`, matching runs to `job`
    /// (its seed ignored for `randomSeed`).
    /// - Throws: ``OutputError/nothingToResume(path:reason:)`` when no run matches.
    static func resumePoint(_ request: EditRequest, folder: OutputFolder, job: EditJob) throws -> ResumePoint {
        func matches(_ run: RunFolder) -> Bool {
            run.job(EditJob.self).map { $0.matches(job, ignoringSeed: request.randomSeed) } ?? false
        }
        // A run killed after its report.json but before `latest` was pointed at it is
        // finished: resuming it publishes it (newest first), with nothing left to make.
        let unpublished = Set(OutputFolder.unpublishedRunNames(in: request.outputDirectory))
        if !folder.runs().contains(where: { !$0.isFinished && matches($0) }),
           let finished = folder.runs().reversed().first(where: { unpublished.contains($0.id) && matches($0) }),
           let data = try? Data(contentsOf: finished.reportFile), let report = try? decodeJSON(EditReport.self, from: data) {
            return .unpublished(finished, report)
        }
        let candidates = folder.runs().filter { !$0.isFinished }
        guard !candidates.isEmpty else {
            throw OutputError.nothingToResume(path: request.outputDirectory, reason: "it holds no unfinished run")
        }
        // Newest first.
        guard let resumed = candidates.reversed().first(where: matches), let recorded = resumed.job(EditJob.self) else {
            throw OutputError.nothingToResume(path: request.outputDirectory,
                                              reason: "its unfinished runs were made from other inputs or settings")
        }
        return .unfinished(resumed, seed: recorded.settings.seed)
    }

    /// Links the finished samples `done` into `ranked/` best first and writes the contact sheet
    /// (the photo, the mask and each sample's thumbnail: `thumbnails`' where made in this
    /// process, else read back from the run folder); returns the report's entries.
    static func writeRanked(_ done: [RunFolder.Progress], thumbnails: [Int: RGBImage], tileHeight: Int, run: RunFolder,
                            folder: OutputFolder, photo: Photo, mask: EditMask) throws -> [EditReport.Sample] {
        var samples: [EditReport.Sample] = []
        var sheetResults: [(image: RGBImage, score: Float)] = []
        for (rank, entry) in ranked(done).enumerated() {
            let name = String(format: "%02d_distance_%.4f.png", rank + 1, entry.distance)
            try run.link(sample: entry.file, asRanked: name)
            samples.append(.init(rank: rank + 1, file: "ranked/\(name)", sampleFile: entry.file, index: entry.index, distance: entry.distance))
            let image = try thumbnails[entry.index]
                ?? thumbnail(RGBImage(contentsOf: run.directory.appendingPathComponent(entry.file).path), height: tileHeight)
            sheetResults.append((image, entry.distance))
        }
        let sheet = try ContactSheet(source: thumbnail(photo.flattened(over: .white), height: tileHeight),
                                     mask: mask, results: sheetResults, tileHeight: tileHeight).render()
        try folder.step("write contact_sheet.png")
        try Photo(image: sheet, colorProfile: photo.colorProfile).writePNG(to: run.directory.appendingPathComponent("contact_sheet.png").path)
        return samples
    }

    /// Reads and checks every input of `request`, cheapest first, so that a typo fails in
    /// milliseconds rather than after loading 2.5 GB of weights. Creates nothing; a front end
    /// can call it to validate a job before queueing it.
    ///
    /// Order: the settings and options (``validateSettings(_:)``), the photo and the mask, then
    /// the model files — so that a bad setting or input is reported as such even where the
    /// model files are missing, and every missing file of the method is named at once.
    ///
    /// - Throws: ``OutputError/notWritable(path:reason:)``, ``ImageError``, ``MaskError``,
    ///   `ClipTokenizerError`, `EditError` (settings, a prompt too long without
    ///   `truncatePrompt`), ``ModelLoadingError`` (missing model files: all of the method's in
    ///   one ``ModelLoadingError/missingFiles(_:)``; a damaged file in the model cache),
    ///   ``MemoryError`` (with `checksMemory`: clearly too little memory available for the
    ///   models and batch).
    public static func check(_ request: EditRequest) throws -> CheckedEdit {
        let settings = request.settings
        var notices: [String] = []
        try OutputFolder.checkCanCreate(request.outputDirectory)
        try validateSettings(request)
        let photo = try Photo(contentsOf: request.imagePath, maximumPixels: request.maximumPixels)
        var soft: SoftMask
        if let maskPath = request.maskPath {
            soft = try SoftMask(contentsOf: maskPath, photoSize: photo.size, channel: request.maskOptions.channel,
                                threshold: request.maskOptions.threshold, maximumPixels: request.maximumPixels)
            if let note = soft.note { notices.append(note.text(request.wording)) }
            if photo.alpha != nil {
                notices.append("the photo has transparent pixels: the mask decides what is edited; outside it the photo keeps its transparency")
            }
        } else {
            soft = try SoftMask(transparencyOf: photo, source: request.imagePath)
            notices.append("no mask given: the photo's transparent area is edited")
        }
        if photo.bitsPerChannel == 16 {
            notices.append("the photo has 16 bits per channel: the samples are written at 16 bits, every pixel outside the edit"
                + " exactly as it was; the edit itself is made at 8 bits")
        }
        if settings.invertMask { soft = soft.inverted() }
        let fullMask = soft.thresholded(request.maskOptions.threshold)
        try requireRegions(fullMask, soft: soft, request: request)
        try requireMarksInRegion(fullMask, photo: photo.size, options: request.maskOptions)
        let editedFraction = Double(fullMask.editedPixelCount) / Double(fullMask.size.pixelCount)
        if editedFraction > 0.9 {
            // Rounded down, so that a mask that keeps a pixel never reads "100.0 %".
            let kept = fullMask.size.pixelCount - fullMask.editedPixelCount
            let share = String(format: "%.1f %%", (editedFraction * 1000).rounded(.down) / 10)
                + (kept <= 100 ? " (all but \(kept) pixel\(kept == 1 ? "" : "s"))" : "")
            let warning: SettingMessage = settings.invertMask
                ? "warning: with \(setting: "invertMask") the mask marks \(share) of the photo for editing; did you mean to \(turnOff: "invertMask")?"
                : "warning: the mask marks \(share) of the photo for editing; is it inverted (\(setting: "invertMask")), or not a mask?"
            notices.append(warning.text(request.wording))
        }
        if (0.5...0.9).contains(editedFraction), soft.origin == .maskTransparency, request.maskOptions.channel == .auto, !settings.invertMask {
            // A drawing on a transparent layer reads as "edit the transparent area" (the hosted
            // APIs' convention): most of the photo. Likely meant the other way round.
            let warning: SettingMessage = "warning: read by its transparency (transparent = edit), the mask marks \(Int(editedFraction * 100)) %"
                + " of the photo, its transparent area; if you drew the region to change on a transparent layer, \(turnOn: "invertMask")"
                + " to edit the drawing instead"
            notices.append(warning.text(request.wording))
        }
        if soft.midToneFraction > 0.2 {
            let share = String(format: "%.0f", soft.midToneFraction * 100), cut = String(format: "%g", request.maskOptions.threshold * 100)
            let warning: SettingMessage = "warning: \(share) % of the mask is neither black nor white: is it really a mask? It is cut at"
                + " \(cut) % (\(setting: "maskThreshold"))"
            notices.append(warning.text(request.wording))
        }
        // The method's checks that need no model file (the geometry, where the model's size is known).
        let method = settings.method.definition
        let knownGeometry = try method.checkBeforeModelFiles(request, mask: fullMask, photo: photo.size)
        // The model files: every one the method needs, named at once.
        try ModelLoader.requireFiles(requiredModelFiles(request))
        if let cache = request.models.cacheDirectory {
            try ModelLoader.requireCachedFilesIntact(requiredModelFiles(request).map(\.path), cacheDirectory: cache)
        }
        let tokenizer = try ClipTokenizer(vocabularyFile: request.models.clipVocabulary)
        let tokens: [Int]
        do {
            tokens = try tokenizer.tokenize(settings.prompt)
        } catch ClipTokenizerError.promptTooLong(let count, let context) where request.truncatePrompt {
            tokens = try tokenizer.tokenize(settings.prompt, truncate: true)
            notices.append("the prompt is \(count) tokens long; CLIP reads \(context): only its first \(context - 2) tokens are used")
        } catch ClipTokenizerError.promptTooLong(let count, let context) {
            throw EditError.badInput("the prompt is \(count) tokens long, counting the start and end markers, but CLIP reads at most"
                + " \(context): shorten it, or \(turnOn: "truncatePrompt") to keep its first \(context - 2) tokens")
        }
        let shared = SharedCheck(photo: photo, softMask: soft, fullMask: fullMask, tokens: tokens, tokenizer: tokenizer,
                                 editedFraction: editedFraction, notices: notices)
        return try method.checkWithModelFiles(request, shared: shared, geometry: knownGeometry)
    }

    /// Checks the settings and options of `request` that need no file: the mask options, the
    /// method's settings and their combinations. Reads nothing; a front end can call it
    /// while parsing its options (`blend edit` does, to report a bad value as a usage error).
    ///
    /// - Throws: `EditError.invalidSetting` or `EditError.badInput`
    ///   naming the option, its range or the method it belongs to.
    public static func validateSettings(_ request: EditRequest) throws {
        try validateOptions(request.settings, latent: request.latent, mask: request.maskOptions,
                            savingIntermediates: request.saveIntermediates)
        if request.maskPath == nil && request.maskOptions.channel != .auto {
            throw EditError.invalidSetting("\(setting: "maskFrom", to: request.maskOptions.channel.rawValue) chooses how a mask image is read,"
                + " and there is none: without a mask the photo's transparent area is edited; give a mask, or leave \(setting: "maskFrom") out")
        }
    }

    /// The part of ``validateSettings(_:)`` that needs only the settings, not the request's
    /// files: the mask options, the shared settings, the method's own options and their
    /// combinations. The web API checks a job's settings with it as it reads them.
    ///
    /// - Throws: `EditError.invalidSetting` or `EditError.badInput` naming the option.
    public static func validateOptions(_ settings: EditSettings, latent: LatentOptions, mask: MaskOptions,
                                       savingIntermediates: Bool = false) throws {
        try mask.validate()
        // The shared settings, and the pixel methods' options for those methods.
        try settings.validate()
        if settings.method == .latent {
            try latent.validate()
            if savingIntermediates {
                throw EditError.invalidSetting("\(setting: "saveIntermediates") is for the pixel methods (x0 predictions); the latent method has none to save")
            }
        }
    }

    /// The mask must mark something to edit and (but for the local-CLIP baseline) leave some
    /// background; the error says what to do, with `--invert-mask` taken into account.
    static func requireRegions(_ mask: EditMask, soft: SoftMask, request: EditRequest) throws {
        let inverted = request.settings.invertMask
        let source = request.maskPath ?? request.imagePath
        do {
            try mask.requireEditedRegion()
            if EditMethod.enforceBackgroundMethods.contains(request.settings.method) { try mask.requireBackground() }
        } catch MaskError.empty where !inverted && soft.origin == .brightness && (soft.values.max() ?? 0) > 0 {
            // Not black, only darker than the cut: say so, and which setting moves it.
            throw MaskError.belowThreshold(source: source, brightest: soft.values.max() ?? 0, threshold: request.maskOptions.threshold)
        } catch MaskError.empty where !inverted {
            // Name the rule that read the mask, and the other one where the image allows it.
            throw MaskError.nothingMarked(source: source, rule: soft.origin, otherRule: soft.otherRuleMarks)
        } catch MaskError.full where !inverted && soft.origin == .brightness && soft.hiddenColourMarks > 0 {
            throw MaskError.fullUnderTransparency(source: source, transparentPixels: soft.hiddenColourMarks)
        } catch MaskError.empty where inverted {
            throw EditError.badInput("\(source): with \(setting: "invertMask") the black of the mask is edited, and it has none (it is all white):"
                + " paint the region to change in black, or \(turnOff: "invertMask") and paint the region to change in white")
        } catch MaskError.full where inverted {
            throw EditError.badInput("\(source): with \(setting: "invertMask") the black of the mask is edited, and it is all black, leaving no"
                + " background to keep: paint the region to keep in white")
        }
    }

    /// The model files `request`'s method reads: CLIP's vocabulary and CLIP (every method
    /// ranks with it), then the pixel methods' UNet or the latent method's Stable Diffusion
    /// model, and LPIPS's two files for the local-CLIP baseline with an LPIPS loss.
    public static func requiredModelFiles(_ request: EditRequest) -> [(path: String, role: ModelRole)] {
        [(request.models.clipVocabulary, .clipVocabulary), (request.models.clip, .clip)]
            + request.settings.method.definition.modelFiles(request)
    }

    /// The latent editor's settings for `options` and the shared `settings` (samples, batch, seed).
    static func latentEditSettings(_ options: LatentOptions, _ settings: EditSettings) -> LatentEditSettings {
        var s = LatentEditSettings()
        s.start = .strength(options.strength)
        s.guidanceScale = options.guidanceScale
        s.initialLatent = options.initialLatent
        s.blendLevel = options.blendLevel
        s.maskDilations = options.maskDilations
        s.backgroundReconstructionSteps = options.backgroundReconstructionSteps
        s.samples = settings.samples
        s.batchSize = settings.batchSize
        s.seed = settings.seed
        return s
    }

    /// The peak memory estimate of `request` with a model of `modelSize` (for the latent method,
    /// the Stable Diffusion model `stableDiffusion` as its files were recognised).
    public static func memoryEstimate(_ request: EditRequest, modelSize: Int,
                                      stableDiffusion: StableDiffusionInfo? = nil) -> MemoryEstimate? {
        func size(_ path: String) -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        }
        let settings = request.settings
        return EditMemory.estimate(EditMemory.Workload(
            method: settings.method, modelSize: modelSize, batch: max(1, min(settings.batchSize, settings.samples)),
            augmentations: settings.pixel.augmentations, diffusionFileBytes: size(request.models.diffusion),
            clipFileBytes: size(request.models.clip), lpipsFileBytes: settings.usesLPIPS ? size(request.models.vgg16) : 0,
            stableDiffusion: stableDiffusion))
    }

    /// Writes the x0 estimates of `progress` as `intermediates/sample_NNNN_stepSSS.png` (at
    /// the model's size, for `--save-intermediates`).
    static func saveIntermediates(_ progress: EditProgress, to directory: URL, folder: OutputFolder, colorProfile: ColorProfile?) throws {
        let predicted = try progress.predictedImage()
        for (b, index) in progress.sampleIndices.enumerated() {
            let image = try RGBImage(tensor: predicted.sliced(b..<b + 1, axis: 0))
            let name = String(format: "sample_%04d_step%03d.png", index + 1, progress.step)
            try folder.step("write intermediates/\(name)")
            try Photo(image: image, colorProfile: colorProfile).writePNG(to: directory.appendingPathComponent(name).path)
        }
    }

    /// Weight 1 over the whole region: the model's own output there, background included
    /// (`enforceBackground` off, or the local-CLIP baseline).
    static func regionWeights(_ region: PixelBox, photo: ImageSize) -> [Float] {
        var weights = [Float](repeating: 0, count: photo.pixelCount)
        for y in region.y..<region.y + region.height {
            for x in region.x..<region.x + region.width { weights[y * photo.width + x] = 1 }
        }
        return weights
    }

    /// `image` scaled (Lanczos) to `height`, keeping its aspect ratio.
    static func thumbnail(_ image: RGBImage, height: Int) throws -> RGBImage {
        let width = max(1, (image.width * height * 2 + image.height) / (2 * image.height))
        return try image.resizedLanczos(width: width, height: height)
    }

    /// The JSON of blend's files: snake_case keys, and non-finite numbers (a diverged
    /// sample's distance) as the strings "nan", "inf", "-inf".
    static func encodeJSON<Value: Encodable>(_ value: Value, pretty: Bool = true) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(value)
    }

    /// Reads what ``encodeJSON(_:pretty:)`` wrote.
    static func decodeJSON<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(type, from: data)
    }

    /// Best first; a diverged (NaN) sample last.
    static func ranked(_ entries: [RunFolder.Progress]) -> [RunFolder.Progress] {
        func key(_ e: RunFolder.Progress) -> (Float, Int) { (e.distance.isNaN ? .infinity : e.distance, e.index) }
        return entries.sorted { key($0) < key($1) }
    }
}
