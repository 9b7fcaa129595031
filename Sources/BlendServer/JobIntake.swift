import BlendDiffusion
import BlendEditor
import BlendImage
import BlendPipeline
import BlendModels
import Foundation

/// Reading and checking the upload that creates a job: every problem is a 4xx
/// ``ServerError`` with a sentence the page shows, found before anything is queued, and the
/// sizes are checked from the file headers before any pixel is decoded.
enum JobIntake {
    /// Caps on what one job may ask for, beyond the pipeline's own checks: a local server
    /// should not be made to allocate without bound by one form.
    static let maxSamples = 1024
    static let maxBatch = 32
    static let maxAugmentations = 64
    static let maxPromptCharacters = 2000

    /// What a well-formed upload holds: the form checked, the images' sizes within the limit
    /// (from their headers); the images themselves are checked by the pipeline
    /// (``EditPipeline/check(_:)``) once they are saved.
    struct Form: Sendable {
        var prompt: String
        var settings: JobSettings
        var photo: [UInt8]
        var photoFormat: ImageFormat
        var photoName: String
        /// Nil: no mask; the photo's transparent area is edited.
        var mask: [UInt8]?
        var maskFormat: ImageFormat?
    }

    /// Checks the form's fields, cheapest first, and the images' headers.
    static func checkForm(_ parts: [String: FormPart], maxPixels: Int) throws -> Form {
        guard let promptPart = parts["prompt"] else {
            throw ServerError.badRequest("the prompt is missing: say what the masked region should become")
        }
        guard let promptText = String(validating: promptPart.body, as: UTF8.self) else {
            throw ServerError.badRequest("the prompt is not valid UTF-8 text")
        }
        let prompt = promptText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !prompt.isEmpty else { throw ServerError.badRequest("the prompt is empty: say what the masked region should become") }
        guard prompt.count <= maxPromptCharacters else { throw ServerError.badRequest("the prompt is over \(maxPromptCharacters) characters") }
        let settings = try decodeSettings(parts["settings"]?.body)
        guard let photoPart = parts["photo"], !photoPart.body.isEmpty else {
            throw ServerError.badRequest("the photo is missing: choose a PNG or JPEG photo")
        }
        let photoName = displayName(photoPart.filename ?? "photo")
        let photoFormat = try checkHeader(photoPart.body, what: "the photo", name: photoName, maxPixels: maxPixels)
        var mask: [UInt8]?, maskFormat: ImageFormat?
        if let maskPart = parts["mask"], !maskPart.body.isEmpty {
            mask = maskPart.body
            maskFormat = try checkHeader(maskPart.body, what: "the mask", name: displayName(maskPart.filename ?? "mask"), maxPixels: maxPixels)
        }
        return Form(prompt: prompt, settings: settings, photo: photoPart.body, photoFormat: photoFormat, photoName: photoName,
                    mask: mask, maskFormat: maskFormat)
    }

    /// The pipeline's errors about a job's inputs, in the page's words: it has settings, not
    /// command-line flags, and the files are the user's photo and mask, not paths on the server.
    static func message(for error: any Error, photoPath: String, photoName: String, maskPath: String?) -> String {
        var text: String
        switch error {
        case let error as MaskError:
            // The same sentence as blend edit's, with the API's names for the settings.
            text = error.message.text(.api)
        case let error as EditError:
            text = error.text(.api)
        case let error as ImageError:
            switch error {
            case let .unsupportedFormat(source, _): text = "\(source) is not a PNG or JPEG image: convert it to PNG or JPEG first"
            case let .truncated(source, _): text = "\(source) is cut short (an interrupted download or copy?): use a complete file"
            case let .corrupt(source, format, _): text = "\(source) is damaged \(format) data: re-export it from an image editor"
            default: text = String(describing: error)
            }
        default:
            text = String(describing: error)
        }
        return inPageWords(text, photoPath: photoPath, photoName: photoName, maskPath: maskPath)
    }

    /// A pipeline message (an error or a notice, its settings already in the API's words) in
    /// the page's words for the files: "the photo" and "the mask" for their paths on the server.
    static func inPageWords(_ text: String, photoPath: String, photoName: String, maskPath: String?) -> String {
        var text = text
        if !photoPath.isEmpty { text = text.replacingOccurrences(of: photoPath, with: "the photo (\(photoName))") }
        if let maskPath, !maskPath.isEmpty {
            // "PATH: the mask marks ..." would read "the mask: the mask marks ...".
            text = text.replacingOccurrences(of: maskPath + ": the mask ", with: "the mask ")
                .replacingOccurrences(of: maskPath + ": ", with: "the mask: ")
                .replacingOccurrences(of: maskPath, with: "the mask")
        }
        return text
    }

    /// The settings field (JSON), with the CLI's defaults for what it leaves out.
    static func decodeSettings(_ bytes: [UInt8]?) throws -> JobSettings {
        guard let bytes, !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else { return JobSettings() }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw ServerError.badRequest("settings must be a JSON object")
            }
            object = parsed
        } catch let error as ServerError {
            throw error
        } catch {
            throw ServerError.badRequest("settings are not valid JSON")
        }
        let known = JobSettings.allKeys
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ServerError.badRequest("unknown setting \"\(unknown)\"; known: \(known.sorted().joined(separator: ", "))")
        }
        // A fraction where a whole number belongs: named here, as the decoder's own message does not.
        for key in ["samples", "batch", "skip", "augmentations", "regionPadding", "feather", "reconstructBackground", "maskDilations"] {
            if let number = object[key] as? NSNumber, number.doubleValue != number.doubleValue.rounded(.towardZero) {
                throw ServerError.badRequest("\(key) must be a whole number, got \(number)")
            }
        }
        let settings: JobSettings
        do {
            settings = try APIJSON.decoder.decode(JobSettings.self, from: Data(bytes))
        } catch let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            if let choices = JobSettings.choices[key] {
                let given = (object[key] as? String).map { "\"\($0)\"" } ?? "\(object[key] ?? "null")"
                throw ServerError.badRequest("\(key) must be one of \(choices.joined(separator: ", ")); got \(given)")
            }
            // The decoders' own messages mostly name the setting already ("steps must be ...").
            let detail = context.debugDescription
            throw ServerError.badRequest(detail.hasPrefix(key + " ") ? detail : "setting \(key): \(detail)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ServerError.badRequest("setting \(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw ServerError.badRequest("settings cannot be read: \(error)")
        }
        guard (1...maxSamples).contains(settings.samples) else {
            throw ServerError.badRequest("samples must be 1 to \(maxSamples), got \(settings.samples)")
        }
        guard (1...maxBatch).contains(settings.batch) else { throw ServerError.badRequest("batch must be 1 to \(maxBatch), got \(settings.batch)") }
        guard (1...maxAugmentations).contains(settings.pixel.augmentations) else {
            throw ServerError.badRequest("augmentations must be 1 to \(maxAugmentations), got \(settings.pixel.augmentations)")
        }
        do {
            if settings.method == .latent {
                guard settings.latent.negativePrompt.utf8.count <= ClipTokenizer.maximumTextBytes else {
                    throw ServerError.badRequest("the negative prompt is over \(ClipTokenizer.maximumTextBytes) bytes: shorten it")
                }
            }
            try EditPipeline.validateOptions(settings.editSettings(prompt: "-"), latent: settings.latent, mask: settings.maskOptions)
        } catch let error as ServerError {
            throw error
        } catch let error as EditError {
            throw ServerError.badRequest(error.text(.api))
        }
        return settings
    }

    /// Settings given for another method than the job's, which it does not use: one notice
    /// each, naming the methods the setting belongs to (`blend edit` refuses such options; the
    /// API takes them, as the page sends every field, but says so). A setting left at its
    /// default is not mentioned. Which method a setting belongs to is its settings type's word
    /// (``PixelOptions/descriptions``, ``LatentOptions``).
    static func unusedSettings(_ settings: JobSettings) -> [String] {
        // `steps` is every method's, so never another method's setting.
        let pixel = PixelOptions.descriptions.filter { $0.key != .timestepRespacing }.map { (key: $0.key.rawValue, methods: $0.methods) }
        let latent = LatentOptions.CodingKeys.allCases.filter { $0 != .steps }.map { (key: $0.rawValue, methods: Set([EditMethod.latent])) }
        let changedPixel = Set(changedKeys(settings.pixel, from: PixelOptions(), keys: pixel.map(\.key)))
        let changedLatent = Set(changedKeys(settings.latent, from: LatentOptions(), keys: latent.map(\.key)))
        let all: [(name: String, methods: Set<EditMethod>)] = pixel.filter { changedPixel.contains($0.key) }.map { ($0.key, $0.methods) }
            + (settings.enforceBackground != JobSettings().enforceBackground ? [("enforceBackground", EditMethod.enforceBackgroundMethods)] : [])
            + latent.filter { changedLatent.contains($0.key) }.map { ($0.key, $0.methods) }
        func name(_ method: EditMethod) -> String { method.name(in: .api) }
        return all.filter { !$0.methods.contains(settings.method) }.map { setting in
            let owners = EditMethod.allCases.filter(setting.methods.contains).map(name).joined(separator: " and ")
            return "\(setting.name) is a setting of the \(owners) method\(setting.methods.count > 1 ? "s" : ""): not used by the"
                + " \(name(settings.method)) method"
        }
    }

    /// Those of `keys` whose values in `options` differ from `defaults`.
    static func changedKeys<Options: Encodable>(_ options: Options, from defaults: Options, keys: [String]) -> [String] {
        func object(_ value: Options) -> [String: NSObject] {
            guard let data = try? JSONEncoder().encode(value),
                  let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: NSObject] else { return [:] }
            return object
        }
        let given = object(options), d = object(defaults)
        return keys.filter { given[$0] != d[$0] }
    }

    /// Checks an upload's header (its format and its size against the pixel limit) without
    /// decoding it.
    static func checkHeader(_ bytes: [UInt8], what: String, name: String, maxPixels: Int) throws -> ImageFormat {
        let size: ImageSize
        do {
            size = try ImageSize(header: bytes, source: "\(what) (\(name))")
        } catch let error as ImageError {
            throw ServerError.badRequest(message(for: error, photoPath: "", photoName: name, maskPath: nil))
        }
        guard size.pixelCount <= maxPixels else {
            throw ServerError.tooLarge("\(what) (\(name)) is \(size), \(pixelCount(size.pixelCount)); the limit is \(pixelCount(maxPixels)): downscale it first")
        }
        return ImageFormat.detect(bytes) ?? .png
    }

    /// `50 MP`, `1.5 MP`, `1500 pixels`.
    static func pixelCount(_ pixels: Int) -> String {
        let value = Double(pixels) / 1_000_000
        if value >= 10 { return "\(Int(value.rounded())) MP" }
        if value >= 0.1 { return String(format: "%.1f MP", value) }
        return "\(pixels) pixels"
    }

    /// `32 MB`, `1.5 MB`, `6000 bytes`.
    static func byteCount(_ bytes: Int) -> String {
        let value = Double(bytes) / 1_048_576
        if value >= 10 { return "\(Int(value.rounded())) MB" }
        if value >= 0.1 { return String(format: "%.1f MB", value) }
        return "\(bytes) bytes"
    }

    /// A file name fit for display: no path, no control characters, at most 100 characters.
    static func displayName(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: last.unicodeScalars.filter { !$0.properties.isDefaultIgnorableCodePoint && $0.value >= 0x20 && $0.value != 0x7F })
        let clean = String(scalars)
        return clean.isEmpty ? "photo" : String(clean.prefix(100))
    }
}
