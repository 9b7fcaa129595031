import BlendImage
import BlendPipeline
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import BlendServer

/// Issue 28's inputs through the web API: a 16-bit photo with a black-and-white mask that
/// has a stray transparent strip, a mask that marks nothing, and `maskFrom`.
@Suite struct MaskInputJobTests {
    /// A 40x30 black mask with a white box, its top 4 rows transparent (alpha `alpha` elsewhere).
    func stripMask(white: PixelBox, alpha: UInt8 = 255) throws -> [UInt8] {
        var pixels: [UInt8] = [], opacity: [UInt8] = []
        for y in 0..<30 {
            for x in 0..<40 {
                let v: UInt8 = white.contains(x: x, y: y) ? 255 : 0
                pixels += [v, v, v]
                opacity.append(y < 4 ? 0 : alpha)
            }
        }
        return try Photo(image: RGBImage(width: 40, height: 30, pixels: pixels), alpha: opacity).encodedPNG()
    }

    @Test func aSixteenBitPhotoAndAStripedMaskGoThroughTheAPIAsThroughTheCLI() async throws {
        try await withServer() { fixture, server, client in
            try await client.waitForModels()
            // The fixture's photo at 16 bits, with low bits no 8-bit file has.
            let eight = try Photo(encoded: fixture.photo)
            var deep = DeepSamples(rgb: eight.image.pixels.enumerated().map { UInt16($0.element) * 257 ^ UInt16($0.offset % 7) })
            deep.isGrey = false
            let photo = try Photo(image: eight.image, deep: deep).encodedPNG()
            let white = PixelBox(x: 12, y: 8, width: 16, height: 14)
            let created = try await client.post(.job(photo: photo, mask: stripMask(white: white),
                                                     settings: #"{"steps": "10", "skip": 7, "samples": 1, "augmentations": 2, "maskFrom": "auto"}"#))
            #expect(created.status == .created, "\(created.text)")
            let id = try #require((try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any])?["id"] as? String)
            let finished = try await client.waitForJob(id)
            #expect(finished["state"] as? String == "finished", "\(finished)")
            let notices = finished["notices"] as? [String] ?? []
            #expect(notices.contains { $0.contains("transparent pixels are kept") && $0.contains("maskFrom set to alpha") }, "\(notices)")
            #expect(!notices.contains { $0.contains("--") }, "\(notices)")
            let report = try await client.json("/api/jobs/\(id)/report")
            #expect(report.object["mask_rule"] as? String == "brightness" && report.object["bits_per_channel"] as? Int == 16, "\(report.object)")
            #expect((report.object["mask_options"] as? [String: Any])?["channel"] as? String == "auto")
            let result = try await client.execute(uri: "/api/jobs/\(id)/results/1", method: .get)
            let edited = try Photo(encoded: Array(buffer: result.body))
            let kept = try #require(edited.deep)
            for i in 0..<1200 where !white.contains(x: i % 40, y: i / 40) {
                #expect(kept.rgb[3 * i..<3 * i + 3] == deep.rgb[3 * i..<3 * i + 3], "pixel \(i)")
            }
        }
    }

    @Test func maskFromIsASettingAndAnEmptyMaskIsExplainedInThePagesWords() async throws {
        try await withServer() { fixture, server, client in
            try await client.waitForModels()
            // Forced to read the strip's transparency: only the strip is edited.
            let strip = try stripMask(white: PixelBox(x: 12, y: 8, width: 16, height: 14))
            let alpha = try await client.post(.job(photo: fixture.photo, mask: strip,
                                                   settings: #"{"steps": "10", "skip": 7, "samples": 1, "augmentations": 2, "maskFrom": "alpha"}"#))
            #expect(alpha.status == .created, "\(alpha.text)")
            let job = try JSONSerialization.jsonObject(with: Data(buffer: alpha.body)) as? [String: Any]
            #expect(abs((job?["maskFraction"] as? Double ?? 0) - 4.0 / 30) < 1e-9)
            // Every field is there, the empty ones as null.
            #expect(job?["error"] is NSNull && job?["finishedAt"] is NSNull, "\(job ?? [:])")
            // A bad value names the setting.
            let bad = try await client.post(.job(photo: fixture.photo, mask: strip, settings: #"{"maskFrom": "green"}"#))
            #expect(bad.status == .badRequest && bad.message == #"maskFrom must be one of auto, brightness, alpha; got "green""#, "\(bad.message)")
            // Every setting that takes a name lists the names.
            for (key, value, names) in [("method", "pixels", "pixel, blended, local-clip, latent"), ("scheduler", "euler", "dpm++2m, ddim"),
                                        ("blendLevel", "7", "same, next")] {
                let wrong = try await client.post(.job(photo: fixture.photo, mask: strip, settings: "{\"\(key)\": \"\(value)\"}"))
                #expect(wrong.status == .badRequest && wrong.message == "\(key) must be one of \(names); got \"\(value)\"", "\(wrong.message)")
            }
            // A mask channel without a mask, in the page's words.
            let cutOut = try await client.post(.job(photo: fixture.photo, mask: nil, settings: #"{"maskFrom": "alpha"}"#))
            #expect(cutOut.status.code / 100 == 4)
            #expect(cutOut.message.contains("chooses how a mask image is read, and there is none") && !cutOut.message.contains("--"),
                    "\(cutOut.message)")
            // All black at alpha 250: the rule that read it; its transparency marks nothing, so no other is offered.
            let black = try stripMask(white: PixelBox(x: 0, y: 0, width: 0, height: 0), alpha: 250)
            var noStrip = try Photo(encoded: black)
            noStrip.alpha = [UInt8](repeating: 250, count: 1200)
            let refused = try await client.post(.job(photo: fixture.photo, mask: noStrip.encodedPNG()))
            #expect(refused.status.code / 100 == 4)
            #expect(refused.message.contains("read by its brightness") && !refused.message.contains("maskFrom"), "\(refused.message)")
            // Read by brightness on request, a black mask with a transparent strip: the other rule is named.
            let forced = try await client.post(.job(photo: fixture.photo, mask: stripMask(white: PixelBox(x: 0, y: 0, width: 0, height: 0)),
                                                    settings: #"{"maskFrom": "brightness"}"#))
            #expect(forced.status.code / 100 == 4)
            #expect(forced.message.contains("read by its brightness") && forced.message.contains("with maskFrom set to alpha"), "\(forced.message)")
            #expect(forced.message.hasPrefix("the mask marks no pixel for editing"), "\(forced.message)")
            // A region box that holds none of the white: the box and where the white is.
            let outside = try await client.post(.job(photo: fixture.photo, mask: strip, settings: #"{"region": "0,20,10,10"}"#))
            #expect(outside.status.code / 100 == 4)
            #expect(outside.message.contains("no marked pixel lies inside the region 0,20,10,10") && outside.message.contains("lie in 12,8,16,14")
                    && outside.message.contains("or region set to auto") && !outside.message.contains("--"), "\(outside.message)")
            // A white drawing on a transparent layer whose empty pixels are white too, read by brightness.
            var layer = try Photo(encoded: stripMask(white: PixelBox(x: 0, y: 0, width: 40, height: 30)))
            layer.alpha = (0..<1200).map { PixelBox(x: 12, y: 8, width: 16, height: 14).contains(x: $0 % 40, y: $0 / 40) ? 255 : 0 }
            let hidden = try await client.post(.job(photo: fixture.photo, mask: layer.encodedPNG(), settings: #"{"maskFrom": "brightness"}"#))
            #expect(hidden.status.code / 100 == 4)
            #expect(hidden.message.contains("its 976 transparent pixels are white underneath") && hidden.message.contains("flatten it onto black")
                    && !hidden.message.contains("--"), "\(hidden.message)")
        }
    }
}
