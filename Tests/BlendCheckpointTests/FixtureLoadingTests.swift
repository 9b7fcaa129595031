import Foundation
import BlendTensor
import Testing
@testable import BlendCheckpoint

/// Every fixture written by real torch.save / torch.jit.save / safetensors loads
/// with the names, order, dtypes, shapes and bit-exact values PyTorch reports.
@Suite struct FixtureLoadingTests {
    static let files = ["state_dict_zip.pt", "state_dict_legacy.pt", "module_state_dict.pt", "scripted.pt", "tensors.safetensors"]

    @Test(arguments: files)
    func loadsBitExactly(file: String) throws {
        let expected = try #require(try Fixtures.expected()[file])
        let checkpoint = try CheckpointFile.load(path: Fixtures.path(file))
        #expect(checkpoint.format.rawValue == expected.format)
        #expect(checkpoint.entries.map(\.name) == expected.entries.map(\.name))
        for entry in expected.entries {
            let found = try #require(checkpoint.entry(named: entry.name))
            #expect(found.dtype.rawValue == entry.dtype, "\(entry.name)")
            #expect(found.shape == entry.shape, "\(entry.name)")
            if let bits = entry.f32bits {
                let tensor = try checkpoint.tensor(named: entry.name)
                #expect(tensor.shape == entry.shape)
                #expect(tensor.scalars.map(\.bitPattern) == bits, "\(file): \(entry.name)")
            } else if let ints = entry.ints {
                #expect(try checkpoint.integers(named: entry.name) == ints, "\(file): \(entry.name)")
                let converted = try checkpoint.tensor(named: entry.name, convertingIntegers: true)
                #expect(converted.scalars == ints.map { Float($0) })
            }
        }
        let total = expected.entries.reduce(0) { $0 + $1.shape.reduce(1, *) }
        #expect(checkpoint.parameterCount == total)
        if let metadata = expected.metadata { #expect(checkpoint.metadata == metadata) }
    }

    @Test func nonContiguousViewsAreMaterialisedRowMajor() throws {
        let checkpoint = try CheckpointFile.load(path: Fixtures.path("state_dict_zip.pt"))
        // `transposed` is base.t() with base 4x6: element [i][j] is base[j][i].
        let transposed = try checkpoint.tensor(named: "transposed")
        let strided = try checkpoint.tensor(named: "strided")  // base[1::2, 1::3]
        #expect(transposed.shape == [6, 4])
        #expect(strided.shape == [2, 2])
        let t = transposed.scalars
        func base(_ r: Int, _ c: Int) -> Float { t[c * 4 + r] }
        #expect(strided.scalars == [base(1, 1), base(1, 4), base(3, 1), base(3, 4)])
        // Two tensors on one storage agree where they overlap.
        let whole = try checkpoint.tensor(named: "shared_whole").scalars
        #expect(try checkpoint.tensor(named: "shared_view").scalars == Array(whole[2..<6]))
    }

    @Test func integerTensorsNeedAnExplicitConversion() throws {
        let checkpoint = try CheckpointFile.load(path: Fixtures.path("state_dict_zip.pt"))
        #expect(throws: CheckpointError.integerTensorAsFloat(file: checkpoint.path, tensor: "i64", dtype: .int64)) {
            try checkpoint.tensor(named: "i64")
        }
        #expect(throws: CheckpointError.self) { try checkpoint.integers(named: "f32") }
    }

    @Test func missingTensorErrorNamesTheKeyAndSuggests() throws {
        let checkpoint = try CheckpointFile.load(path: Fixtures.path("state_dict_zip.pt"))
        do {
            _ = try checkpoint.tensor(named: "inner.weight")
            Issue.record("expected an error")
        } catch let error as CheckpointError {
            guard case let .missingTensor(_, name, similar) = error else { Issue.record("wrong error \(error)"); return }
            #expect(name == "inner.weight")
            #expect(similar == ["nested.inner.weight"])
            #expect(error.description.contains("inner.weight"))
        }
    }

    @Test func torchScriptSkipsPlainAttributesAndNoneParameters() throws {
        let checkpoint = try CheckpointFile.load(path: Fixtures.path("scripted.pt"))
        #expect(!checkpoint.contains("mask"))
        #expect(!checkpoint.contains("conv.bias"))
        #expect(checkpoint.entry(named: "proj.weight")?.dtype == .float16)
    }

    @Test func lpipsLegacyWeightsLoadWhenTheDevVenvIsPresent() throws {
        // LPIPS ships vgg.pth in the legacy (non-zip) format; the dev venv has a copy.
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".venv/lib/python3.11/site-packages/lpips/weights/v0.1/vgg.pth").path
        let fallback = "/work/main/.venv/lib/python3.11/site-packages/lpips/weights/v0.1/vgg.pth"
        guard let found = [path, fallback].first(where: { FileManager.default.fileExists(atPath: $0) }) else { return }
        let checkpoint = try CheckpointFile.load(path: found)
        #expect(checkpoint.format == .torchLegacy)
        #expect(checkpoint.entries.map(\.name) == (0..<5).map { "lin\($0).model.1.weight" })
        #expect(checkpoint.entries.map(\.shape) == [[1, 64, 1, 1], [1, 128, 1, 1], [1, 256, 1, 1], [1, 512, 1, 1], [1, 512, 1, 1]])
        #expect(try checkpoint.tensor(named: "lin4.model.1.weight").count == 512)
    }
}
