import BlendTensor
import Foundation
import Testing
@testable import BlendCheckpoint

@Suite struct SafetensorsTests {
    @Test func writeThenReadRoundTripsEveryWritableType() throws {
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let url = scratch.appendingPathComponent("model.safetensors")
        let values: [Float] = [0, -0.0, 1, -2.5, 65504, 1e-7, .infinity, 3.1415927]
        let tensor = try Tensor(shape: [2, 4], scalars: values)
        try SafetensorsWriter.write([
            SafetensorsTensor(name: "w32", tensor: tensor),
            SafetensorsTensor(name: "w16", tensor: tensor, as: .float16),
            SafetensorsTensor(name: "wbf", tensor: tensor, as: .bfloat16),
            SafetensorsTensor(name: "ids", integers: [Int64.min, -1, 0, Int64.max], shape: [2, 2]),
            SafetensorsTensor(name: "scalar", tensor: Tensor(scalar: 0.25)),
            SafetensorsTensor(name: "quote\"name", tensor: Tensor.zeros([0])),
        ], metadata: ["format": "pt", "note": "a \"quoted\" value"], to: url)

        let checkpoint = try CheckpointFile.load(path: url.path)
        #expect(checkpoint.format == .safetensors)
        #expect(checkpoint.entries.map(\.name) == ["w32", "w16", "wbf", "ids", "scalar", "quote\"name"])
        #expect(checkpoint.entries.map(\.dtype) == [.float32, .float16, .bfloat16, .int64, .float32, .float32])
        #expect(checkpoint.metadata == ["format": "pt", "note": "a \"quoted\" value"])
        #expect(try checkpoint.tensor(named: "w32").scalars.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(try checkpoint.tensor(named: "w16").scalars.map(\.bitPattern) == values.map { floatFromHalfBits(halfBitsFromFloat($0)).bitPattern })
        #expect(try checkpoint.tensor(named: "wbf").scalars.map(\.bitPattern) == values.map { floatFromBFloat16Bits(bfloat16BitsFromFloat($0)).bitPattern })
        #expect(try checkpoint.integers(named: "ids") == [Int64.min, -1, 0, Int64.max])
        #expect(try checkpoint.tensor(named: "scalar").shape == [])
        // The data starts 8-byte aligned, as the reference writer leaves it.
        let raw = try Data(contentsOf: url)
        let headerLength = raw.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
    }

    @Test func everyHalfRoundTripsThroughFloat() {
        for bits in UInt16.min...UInt16.max {
            let f = floatFromHalfBits(bits)
            if f.isNaN { continue }
            #expect(halfBitsFromFloat(f) == bits, "half 0x\(String(bits, radix: 16))")
        }
    }

    @Test func halfAndBFloat16RoundToNearestEven() {
        // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
        #expect(halfBitsFromFloat(1 + 0x1p-11) == 0x3C00)
        #expect(halfBitsFromFloat(1 + 0x1p-11 + 0x1p-20) == 0x3C01)
        #expect(halfBitsFromFloat(65520) == 0x7C00)  // rounds up to infinity
        #expect(halfBitsFromFloat(0x1p-25) == 0)      // halfway to the smallest subnormal: even is zero
        #expect(halfBitsFromFloat(0x1p-24) == 1)
        #expect(floatFromHalfBits(0x0001) == 0x1p-24)
        #expect(bfloat16BitsFromFloat(1 + 0x1p-8) == 0x3F80)
        #expect(bfloat16BitsFromFloat(1 + 0x1p-8 + 0x1p-9) == 0x3F81)
        #expect(floatFromBFloat16Bits(bfloat16BitsFromFloat(.nan)).isNaN)
    }

    @Test func rejectsDuplicateNames() throws {
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let t = try Tensor.zeros([1])
        #expect(throws: CheckpointError.self) {
            try SafetensorsWriter.write([SafetensorsTensor(name: "a", tensor: t), SafetensorsTensor(name: "a", tensor: t)],
                                        to: scratch.appendingPathComponent("x.safetensors"))
        }
    }
}

@Suite struct HalfPrecisionRoundingTests {
    @Test func writerRoundsExactlyAsPyTorchDoes() throws {
        // rounding.safetensors holds random float32s over a wide range, and PyTorch's .half() and .bfloat16() of them.
        let checkpoint = try CheckpointFile.load(path: Fixtures.path("rounding.safetensors"))
        let inputs = try checkpoint.tensor(named: "input").scalars
        let half = try checkpoint.tensor(named: "half").scalars
        let bfloat = try checkpoint.tensor(named: "bfloat16").scalars
        #expect(inputs.count == 4096)
        for (i, x) in inputs.enumerated() {
            #expect(floatFromHalfBits(halfBitsFromFloat(x)).bitPattern == half[i].bitPattern, "half of \(x)")
            #expect(floatFromBFloat16Bits(bfloat16BitsFromFloat(x)).bitPattern == bfloat[i].bitPattern, "bfloat16 of \(x)")
        }
    }
}
