import BlendEditor
import BlendImage
import BlendPipeline
import BlendPipelineTestSupport
import BlendTensor
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import BlendServer

@Suite(.serialized) struct APITests {
    @Test func servesThePageAndTheStatus() async throws {
        try await withServer() { fixture, server, client in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("<canvas id=\"stage-canvas\">"))
            #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'self'") == true)
            for asset in ["/app.js", "/style.css", "/favicon.svg"] {
                let response = try await client.execute(uri: asset, method: .get)
                #expect(response.status == .ok && response.body.readableBytes > 100, "\(asset)")
            }
            try await client.waitForModels()
            let (status, object) = try await client.json("/api/status")
            #expect(status == .ok)
            let defaults = try #require(object["defaults"] as? [String: Any])
            #expect(defaults["samples"] as? Int == 32 && defaults["steps"] as? String == "100" && defaults["skip"] as? Int == 25)
            #expect(defaults["seed"] as? Int == 404 && defaults["method"] as? String == "blended")
            #expect((object["queue"] as? [String: Any])?["limit"] as? Int == 8)
            let missing = try await client.execute(uri: "/api/nothing", method: .get)
            #expect(missing.status == .notFound && missing.message.contains("no such page"))
        }
    }

    @Test func aJobRunsEndToEndAndItsResultsAreServed() async throws {
        try await withServer() { fixture, server, client in
            try await client.waitForModels()
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(created.status == .created, "\(created.text)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any]
            let id = try #require(job?["id"] as? String)
            #expect(created.headers[.location] == "/api/jobs/\(id)")
            #expect((job?["photo"] as? [String: Any])?["width"] as? Int == 40)
            let maskFraction = try #require(job?["maskFraction"] as? Double)
            #expect(abs(maskFraction - Double(16 * 14) / 1200) < 1e-9)

            let finished = try await client.waitForJob(id)
            #expect(finished["state"] as? String == "finished", "\(finished)")
            let results = try #require(finished["results"] as? [[String: Any]])
            #expect(results.map { $0["rank"] as? Int } == [1, 2, 3])
            let distances = results.compactMap { $0["distance"] as? Double }
            #expect(distances == distances.sorted())

            // Full resolution, the background untouched, the masked region edited.
            let photo = try RGBImage(encoded: fixture.photo)
            let mask = try EditMask(image: RGBImage(encoded: fixture.mask))
            for result in results {
                let response = try await client.execute(uri: try #require(result["url"] as? String), method: .get)
                #expect(response.status == .ok && response.headers[.contentType] == "image/png")
                let image = try RGBImage(encoded: Array(buffer: response.body))
                #expect(image.width == 40 && image.height == 30)
                var changedInside = 0
                for i in 0..<1200 {
                    let same = image.pixels[3 * i..<3 * i + 3] == photo.pixels[3 * i..<3 * i + 3]
                    if mask.isEdited[i] { changedInside += same ? 0 : 1 } else { #expect(same) }
                }
                #expect(changedInside > 0)
            }
            let download = try await client.execute(uri: "/api/jobs/\(id)/results/1?download=1", method: .get)
            #expect(download.headers[.contentDisposition]?.contains("attachment") == true)
            let noSuch = try await client.execute(uri: "/api/jobs/\(id)/results/9", method: .get)
            #expect(noSuch.status == .notFound && noSuch.message.contains("has no result rank 9"))
            // By sample number too: the address does not change as ranks do.
            let byIndex = try await client.execute(uri: "/api/jobs/\(id)/samples/\(results[0]["index"] as? Int ?? -1)", method: .get)
            let byRank = try await client.execute(uri: "/api/jobs/\(id)/results/1", method: .get)
            #expect(byIndex.status == .ok && byIndex.body == byRank.body)

            // The zip of all results.
            let zip = try await client.execute(uri: "/api/jobs/\(id)/results.zip", method: .get)
            #expect(zip.status == .ok && zip.headers[.contentType] == "application/zip")
            let entries = try zipEntries(Array(buffer: zip.body))
            #expect(entries.count == 5 && entries["blend-\(id)/report.json"] != nil && entries["blend-\(id)/contact_sheet.png"] != nil)
            let first = try await client.execute(uri: "/api/jobs/\(id)/results/1", method: .get)
            let firstName = try #require((results[0]["file"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent })
            #expect(entries["blend-\(id)/\(firstName)"] == Array(buffer: first.body))

            // Inputs, report, list.
            #expect(try await client.execute(uri: "/api/jobs/\(id)/photo", method: .get).body.readableBytes == fixture.photo.count)
            #expect(try await client.execute(uri: "/api/jobs/\(id)/mask", method: .get).status == .ok)
            let report = try await client.json("/api/jobs/\(id)/report")
            #expect(report.status == .ok && (report.object["samples"] as? [Any])?.count == 3)
            let list = try await client.json("/api/jobs")
            #expect((list.object["jobs"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])

            // Cancelling a finished job changes nothing; resuming it is refused.
            #expect(try await client.json("/api/jobs/\(id)/cancel", method: .post).object["state"] as? String == "finished")
            let resume = try await client.execute(uri: "/api/jobs/\(id)/resume", method: .post)
            #expect(resume.status == .conflict && resume.message.contains("only interrupted, cancelled or failed"))

            // Delete: the job and its folder are gone.
            #expect(try await client.execute(uri: "/api/jobs/\(id)", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/api/jobs/\(id)", method: .get).status == .notFound)
            #expect(!FileManager.default.fileExists(atPath: fixture.data.appendingPathComponent("jobs/\(id)").path))
            #expect(try await client.execute(uri: "/api/jobs/../../etc", method: .get).status == .notFound)
        }
    }

    /// `blend serve --precision bf16` reaches every job: bf16 where the CPU has it, else fp32
    /// with the fallback in the job's report.
    @Test func theServersPrecisionReachesEveryJob() async throws {
        try await withServer(configure: { $0.precision = .bf16 }) { fixture, server, client in
            try await client.waitForModels()
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            let id = try #require((try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])?["id"] as? String)
            let finished = try await client.waitForJob(id)
            #expect(finished["state"] as? String == "finished", "\(finished)")
            let report = try await client.json("/api/jobs/\(id)/report").object
            let notices = report["notices"] as? [String] ?? []
            if let fallback = ComputePrecision.bf16Unavailable {
                #expect(report["precision"] as? String == "fp32" && notices.contains(fallback), "\(report)")
            } else {
                #expect(report["precision"] as? String == "bf16", "\(report)")
            }
        }
    }

    @Test func cancelStopsQueuedAndRunningJobs() async throws {
        try await withServer() { fixture, server, client in
            try await client.waitForModels()
            let long = #"{"steps": "20", "skip": 0, "samples": 50, "batch": 1, "augmentations": 1}"#
            let first = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: long))
            let second = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            let firstID = try #require(try JSONSerialization.jsonObject(with: Data(buffer: first.body)) as? [String: Any])["id"] as! String
            let secondID = try #require(try JSONSerialization.jsonObject(with: Data(buffer: second.body)) as? [String: Any])["id"] as! String

            let secondRevision = try #require(try JSONSerialization.jsonObject(with: Data(buffer: second.body)) as? [String: Any])["revision"] as? Int
            // The queued one stops at once.
            let cancelled = try await client.json("/api/jobs/\(secondID)/cancel", method: .post)
            #expect(cancelled.object["state"] as? String == "cancelled")
            // Every change of a record raises its revision (the page keeps the newer of two copies).
            let cancelledRevision = try #require(cancelled.object["revision"] as? Int)
            #expect(cancelledRevision > (secondRevision ?? .max))
            // The running one at its next step, keeping the samples it finished.
            _ = try await client.waitForJob(firstID) { ($0["results"] as? [Any])?.isEmpty == false }
            let busy = try await client.execute(uri: "/api/jobs/\(firstID)", method: .delete)
            #expect(busy.status == .conflict && busy.message.contains("cancel it first"))
            // A running job's cancel answer is the record before it stops; the stopped one is newer.
            let cancelling = try await client.json("/api/jobs/\(firstID)/cancel", method: .post)
            let stopped = try await client.waitForJob(firstID)
            #expect(stopped["state"] as? String == "cancelled")
            #expect(try #require(stopped["revision"] as? Int) > (cancelling.object["revision"] as? Int ?? .max))
            let progress = try #require(stopped["progress"] as? [String: Any])
            #expect((progress["completedSteps"] as? Int ?? 0) < 5000)
            let kept = try #require(stopped["results"] as? [[String: Any]])
            #expect(!kept.isEmpty && kept.count < 50)
            for result in kept {
                #expect(try await client.execute(uri: try #require(result["url"] as? String), method: .get).status == .ok)
            }
            // A stopped one can be deleted.
            #expect(try await client.execute(uri: "/api/jobs/\(firstID)", method: .delete).status == .noContent)
            // A cancelled job can be resumed, and then runs to the end.
            let resumed = try await client.json("/api/jobs/\(secondID)/resume", method: .post)
            #expect(resumed.status == .accepted && resumed.object["state"] as? String == "queued")
            #expect(try #require(resumed.object["revision"] as? Int) > cancelledRevision)
            #expect(try await client.waitForJob(secondID)["state"] as? String == "finished")
        }
    }

    @Test func recordsWrittenBeforeRevisionsStillLoad() throws {
        // A job.json of 0.2.0 has no `revision` (nor, earlier, `notices` and `runs`).
        let settings = try JSONEncoder().encode(JobSettings())
        let json = #"{"id": "20261130-120000-abcd", "state": "finished", "prompt": "a red ball", "settings": "#
            + String(decoding: settings, as: UTF8.self)
            + #", "photo": {"file": "photo.png", "name": "p.png", "width": 40, "height": 30}, "maskFraction": 0.25,"#
            + #" "region": "0,0,40,30", "modelSize": 256, "createdAt": "2026-11-30T12:00:00Z", "results": []}"#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let record = try decoder.decode(JobRecord.self, from: Data(json.utf8))
        #expect(record.revision == 0 && record.runs == 0 && record.notices.isEmpty && record.state == .finished)
        // A record without a required field is still refused.
        #expect(throws: DecodingError.self) {
            try decoder.decode(JobRecord.self, from: Data(json.replacingOccurrences(of: #""prompt": "a red ball", "#, with: "").utf8))
        }
    }

    @Test func aFullQueueAnswers429() async throws {
        // Not started: the models never load, so jobs wait in the queue.
        try await withServer(loadModels: false, configure: { $0.queueLimit = 2 }) { fixture, server, client in
            for _ in 0..<2 {
                #expect(try await client.post(.job(photo: fixture.photo, mask: fixture.mask)).status == .created)
            }
            let refused = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(refused.status == .tooManyRequests)
            #expect(refused.message == "the queue is full (2 jobs waiting): wait for one to finish, or cancel one")
            let (_, status) = try await client.json("/api/status")
            #expect(((status["queue"] as? [String: Any])?["queued"] as? [String])?.count == 2)
            #expect((status["models"] as? [String: Any])?["state"] as? String == "loading")
            // The refused job left nothing behind.
            let folders = try FileManager.default.contentsOfDirectory(atPath: fixture.data.appendingPathComponent("jobs").path)
            #expect(folders.count == 2)
        }
    }

    @Test func uploadLimitsAreCheckedBeforeDecoding() async throws {
        try await withServer(loadModels: false, configure: { $0.maxUploadBytes = 6000; $0.maxUploadPixels = 1500 }) { fixture, server, client in
            // Bytes: by Content-Length, and by the body itself.
            let big = Multipart.job(photo: fixture.photo + [UInt8](repeating: 0, count: 8000), mask: fixture.mask)
            let tooBig = try await client.post(big)
            #expect(tooBig.status == .contentTooLarge)
            #expect(tooBig.message.hasSuffix("the limit is 6000 bytes: send a smaller photo"), "\(tooBig.message)")
            // Pixels: a PNG header claiming 100000 x 100000 is refused without decoding.
            var header = Array(fixture.photo.prefix(33))
            header.replaceSubrange(16..<24, with: [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0])
            let huge = try await client.post(.job(photo: header, mask: fixture.mask))
            #expect(huge.status == .contentTooLarge)
            #expect(huge.message.contains("100000x100000") && huge.message.contains("10000 MP; the limit is 1500 pixels"), "\(huge.message)")
            // A 40x30 photo is 1200 pixels: within the limit.
            #expect(try await client.post(.job(photo: fixture.photo, mask: fixture.mask)).status == .created)
        }
    }

    @Test func badUploadsAreClear4xxAndTheServerCarriesOn() async throws {
        let otherShape = try RGBImage(width: 30, height: 30, filledWith: RGBColor(red: 255, green: 255, blue: 255)).encoded(as: .png)
        let black = try RGBImage(width: 40, height: 30, filledWith: RGBColor(red: 0, green: 0, blue: 0)).encoded(as: .png)
        let white = try RGBImage(width: 40, height: 30, filledWith: RGBColor(red: 255, green: 255, blue: 255)).encoded(as: .png)
        try await withServer { fixture, server, client in
            try await client.waitForModels()
            func expect(_ form: Multipart, _ status: HTTPResponse.Status, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let response = try await client.post(form)
                #expect(response.status == status, "\(response.text)", sourceLocation: sourceLocation)
                #expect(response.message.contains(message), "\(response.message)", sourceLocation: sourceLocation)
            }
            let notMultipart = try await client.execute(uri: "/api/jobs", method: .post, headers: [.contentType: "application/json"],
                                                        body: ByteBuffer(string: "{}"))
            #expect(notMultipart.status == .badRequest && notMultipart.message.contains("multipart/form-data"))
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, prompt: nil), .badRequest, "the prompt is missing")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, prompt: "   "), .badRequest, "the prompt is empty")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, prompt: Array(repeating: "a very long prompt", count: 40).joined(separator: " ")),
                             .badRequest, "CLIP reads at most 77: shorten it, or turn on \"truncate prompt\"")
            try await expect(.job(photo: nil, mask: fixture.mask), .badRequest, "the photo is missing")
            // No mask: the photo's transparent area would be edited, and this one has none.
            try await expect(.job(photo: fixture.photo, mask: nil), .badRequest,
                             "the photo (photo.png): no mask was given and the photo has no transparent pixels to edit; pass a mask image (white = edit) as mask")
            try await expect(.job(photo: Array("just some notes".utf8), mask: fixture.mask), .badRequest, "is not a PNG or JPEG image")
            try await expect(.job(photo: Array(fixture.photo.prefix(fixture.photo.count / 2)), mask: fixture.mask), .badRequest, "photo")
            try await expect(.job(photo: [0xFF, 0xD8, 0xFF, 0xE0, 0, 16] + Array(repeating: 7, count: 40), mask: fixture.mask), .badRequest, "the photo (photo.png)")
            try await expect(.job(photo: fixture.photo, mask: otherShape), .badRequest, "the mask is 30x30 but the image is 40x30")
            try await expect(.job(photo: fixture.photo, mask: black), .badRequest, "the mask marks no pixel for editing: read by its brightness")
            try await expect(.job(photo: fixture.photo, mask: white), .badRequest, "the mask marks every pixel for editing")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: "{not json"), .badRequest, "not valid JSON")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"sample": 3}"#), .badRequest, "unknown setting \"sample\"")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"samples": "many"}"#), .badRequest, "samples has the wrong type")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"samples": 0}"#), .badRequest, "samples must be 1 to 1024")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"steps": "10", "skip": 10}"#), .badRequest, "skip (10) must be")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"steps": "ten"}"#), .badRequest, "steps")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"seed": "abc"}"#), .badRequest, "seed must be a whole number")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"method": "magic"}"#), .badRequest, "method")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"region": "diagonal"}"#), .badRequest,
                             "region must be auto, full or X,Y,W,H")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"maskThreshold": 1.5}"#), .badRequest,
                             "maskThreshold must be at least 0 and below 1")
            try await expect(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"region": "30,20,40,40"}"#), .badRequest,
                             "30,20,40,40")
            // None of them created a job, and the server still answers.
            #expect((try await client.json("/api/jobs").object["jobs"] as? [Any])?.isEmpty == true)
            #expect(try await client.execute(uri: "/api/status", method: .get).status == .ok)
            // An inverted mask is checked after inversion; a random seed is drawn and recorded.
            let inverted = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"invertMask": true, "seed": "random", "steps": "10", "skip": 8, "samples": 1}"#))
            #expect(inverted.status == .created, "\(inverted.text)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: inverted.body)) as? [String: Any]
            let seed = try #require((job?["settings"] as? [String: Any])?["seed"] as? Int)
            #expect(seed != 404 && seed >= 0)
            let done = try await client.waitForJob(job?["id"] as! String)
            #expect(done["state"] as? String == "finished", "\(done)")
        }
    }

    @Test func missingModelFilesAreNamedWithTheirDownloadCommands() async throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("blend-empty-cache-\(UUID().uuidString)")
        try await withServer(configure: { $0.models = .standard(.init(directory: cache)) }) { fixture, server, client in
            var models: [String: Any] = [:]
            for _ in 0..<500 {
                models = try await client.json("/api/status").object["models"] as? [String: Any] ?? [:]
                if models["state"] as? String != "loading" { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(models["state"] as? String == "missing")
            func commands(_ key: String) -> [String]? { (models[key] as? [[String: Any]])?.compactMap { $0["command"] as? String } }
            func options(_ key: String) -> [String]? { (models[key] as? [[String: Any]])?.compactMap { $0["option"] as? String } }
            // Per method: what every method needs, then each generator under its method.
            #expect(commands("missing") == ["blend models download ViT-B-16", "blend models download clip-vocab"])
            #expect(options("missing") == ["--clip-model", "--clip-vocab"])
            #expect(commands("missingForPixel") == ["blend models download 256x256_diffusion_uncond"])
            #expect(options("missingForPixel") == ["--diffusion-model"])
            #expect(commands("missingForLatent") == ["blend models download stable-diffusion-v1-5"])
            #expect(commands("missingForLocalClip") == ["blend models download vgg16", "blend models download lpips-vgg"])
            #expect((models["message"] as? String)?.contains("blend models download ViT-B-16") == true)
            // Neither generator is there: the message also names the latent method's download.
            #expect((models["message"] as? String)?.contains("blend models download stable-diffusion-v1-5") == true)
            // A pixel job's 503 names every file the pixel method needs (and nothing of the latent one's) ...
            let refused = try await client.post(.job(photo: fixture.photo, mask: fixture.mask))
            #expect(refused.status == .serviceUnavailable, "\(refused.message)")
            for name in ["256x256_diffusion_uncond", "ViT-B-16", "clip-vocab"] {
                #expect(refused.message.contains("blend models download \(name)"), "\(refused.message)")
            }
            #expect(refused.message.contains("--clip-vocab") && !refused.message.contains("stable-diffusion"), "\(refused.message)")
            // ... a latent job's only the latent method's ...
            let latent = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"method": "latent", "steps": "4"}"#))
            #expect(latent.status == .serviceUnavailable && latent.message.contains("blend models download stable-diffusion-v1-5")
                    && !latent.message.contains("256x256_diffusion_uncond"), "\(latent.message)")
            // ... and bad settings or inputs are a 400 even so: they are checked before the model files.
            let badSettings = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"steps": "0"}"#))
            #expect(badSettings.status == .badRequest, "\(badSettings.message)")
            let badStrength = try await client.post(.job(photo: fixture.photo, mask: fixture.mask, settings: #"{"method": "latent", "strength": 2}"#))
            #expect(badStrength.status == .badRequest && badStrength.message.contains("strength"), "\(badStrength.message)")
            let wrongMask = try await client.post(.job(photo: fixture.photo, mask: try squareMask()))
            #expect(wrongMask.status == .badRequest && wrongMask.message.contains("another image"), "\(wrongMask.message)")
            // The console's lines: one per missing file, each with what to do.
            let lines = server.status().models.missingLines
            #expect(lines.count == 6 && lines.allSatisfy { $0.contains("blend models download") }, "\(lines)")
            #expect(lines.contains { $0.contains("--clip-vocab") && $0.contains("every method") }, "\(lines)")
        }
    }

    /// A 30x30 PNG mask: not the fixture photo's shape.
    func squareMask() throws -> [UInt8] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("blend-square-mask-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (_, mask) = try writePhotoAndMask(in: folder, maskSize: (30, 30))
        return Array(try Data(contentsOf: URL(fileURLWithPath: mask)))
    }

    /// A CLIP vocabulary with more tokens than the CLIP model's table: the models fail to
    /// load with a message naming both files, not at the first prompt.
    @Test func aVocabularyThatDoesNotFitCLIPFailsTheModelsNamingBothFiles() async throws {
        let clip = FileManager.default.temporaryDirectory.appendingPathComponent("blend-small-table-clip-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: clip) }
        try writeTinyClip(vocabularySize: 100, to: clip)
        try await withServer(configure: { $0.models.clip = clip.path }) { fixture, server, client in
            var models: [String: Any] = [:]
            for _ in 0..<500 {
                models = try await client.json("/api/status").object["models"] as? [String: Any] ?? [:]
                if models["state"] as? String != "loading" { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(models["state"] as? String == "failed")
            let message = models["message"] as? String ?? ""
            #expect(message.contains(clip.path) && message.contains(fixture.models.paths.clipVocabulary)
                    && message.contains("do not belong together"), "\(message)")
        }
    }

    /// The API takes every field (the page sends them all) but says which ones the job's
    /// method does not use, as `blend edit` refuses them.
    @Test func settingsOfAnotherMethodAreNamedInTheJobsNotices() async throws {
        let pixel = try JobIntake.decodeSettings(Array(#"{"strength": 0.5, "lpipsLambda": 3, "skip": 7}"#.utf8))
        #expect(JobIntake.unusedSettings(pixel) == [
            "lpipsLambda is a setting of the local-clip method: not used by the pixel (blended) method",
            "strength is a setting of the latent method: not used by the pixel (blended) method",
        ])
        let latent = try JobIntake.decodeSettings(Array(#"{"method": "latent", "steps": "4", "ddim": true, "enforceBackground": false}"#.utf8))
        #expect(JobIntake.unusedSettings(latent) == ["ddim is a setting of the pixel (blended) and local-clip methods: not used by the latent method"])
        let localClip = try JobIntake.decodeSettings(Array(#"{"method": "local-clip", "enforceBackground": false}"#.utf8))
        #expect(JobIntake.unusedSettings(localClip).first?.contains("enforceBackground is a setting of the pixel (blended) and latent methods") == true)
        // Defaults are never mentioned (the page sends every field).
        #expect(JobIntake.unusedSettings(JobSettings()).isEmpty)
        try await withServer() { fixture, _, client in
            let created = try await client.post(.job(photo: fixture.photo, mask: fixture.mask,
                                                     settings: #"{"steps": "10", "skip": 7, "samples": 1, "augmentations": 2, "guidanceScale": 3}"#))
            #expect(created.status == .created, "\(created.message)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any]
            let notices = job?["notices"] as? [String] ?? []
            #expect(notices.contains { $0.hasPrefix("guidanceScale is a setting of the latent method") }, "\(notices)")
            _ = try await client.waitForJob(job?["id"] as! String)
        }
    }

    @Test func settingsDefaultsAreTheCLIs() throws {
        let defaults = JobSettings()
        let settings = defaults.editSettings(prompt: "x")
        var expected = BlendEditor.EditSettings(prompt: "x")
        expected.batchSize = 4
        #expect(settings == expected)
        // A partial request keeps the defaults for what it leaves out.
        #expect(defaults.maskOptions == MaskOptions())
        let partial = try JobIntake.decodeSettings(Array(#"{"samples": 2, "seed": 7, "region": "full", "feather": 0}"#.utf8))
        #expect(partial.samples == 2 && partial.seed == 7 && partial.steps == "100" && partial.batch == 4)
        #expect(partial.maskOptions == MaskOptions(threshold: 0.5, region: .full, regionPadding: nil, feather: 0))
    }

    @Test func aJobRecordsOnlyTheSettingsItsMethodUsesAndTakesPixelForBlended() throws {
        // The page sends every field: a blended job's local-CLIP weights are not what it ran with.
        let blended = try JobIntake.decodeSettings(Array(#"{"method": "pixel", "lpipsLambda": 100, "l2Lambda": 200, "skip": 5}"#.utf8))
        #expect(blended.method == .blended)
        let run = blended.editSettings(prompt: "x")
        #expect(run.pixel.lpipsSimLambda == PixelOptions().lpipsSimLambda && run.pixel.l2SimLambda == PixelOptions().l2SimLambda)
        #expect(run.pixel.skipTimesteps == 5)
        // The local-CLIP baseline pastes nothing back, so its enforceBackground is not recorded as given.
        let localClip = try JobIntake.decodeSettings(Array(#"{"method": "local-clip", "enforceBackground": false, "lpipsLambda": 100}"#.utf8))
        #expect(localClip.editSettings(prompt: "x").enforceBackground == true && localClip.editSettings(prompt: "x").pixel.lpipsSimLambda == 100)
    }

    @Test func aSeedTooLargeForJavaScriptNumbersTravelsAsDigits() throws {
        // 2^64 − 59 sent as digits (a JSON number that large would reach a JavaScript client rounded).
        let big = try JobIntake.decodeSettings(Array(#"{"seed": "18446744073709551557"}"#.utf8))
        #expect(big.seed == 18_446_744_073_709_551_557)
        func encodedSeed(_ settings: JobSettings) throws -> Any? {
            (try JSONSerialization.jsonObject(with: JSONEncoder().encode(settings)) as? [String: Any])?["seed"]
        }
        #expect(try encodedSeed(big) as? String == "18446744073709551557")
        #expect(try JSONDecoder().decode(JobSettings.self, from: JSONEncoder().encode(big)).seed == big.seed)
        // Below 2^53 it stays a number, as every seed the page or blend edit draws is.
        var small = JobSettings()
        small.seed = (1 << 53) - 1
        #expect(try encodedSeed(small) as? Int == (1 << 53) - 1)
        #expect((0..<1000).allSatisfy { _ in EditSettings.randomSeed() < EditSettings.exactJavaScriptSeedLimit })
        // report.json's settings (EditSettings), which the API serves too, the same way.
        var report = EditSettings(prompt: "x")
        report.seed = big.seed
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
        #expect(encoded?["seed"] as? String == "18446744073709551557")
        #expect(try JSONDecoder().decode(EditSettings.self, from: JSONEncoder().encode(report)).seed == big.seed)
        // A seed setting that is no number: the message names it once.
        #expect(throws: ServerError.badRequest("seed must be a whole number >= 0, or \"random\" (or -1) for a random one")) {
            try JobIntake.decodeSettings(Array(#"{"seed": "abc"}"#.utf8))
        }
    }
}
