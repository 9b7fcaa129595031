import BlendTensor
import Testing
@testable import BlendImage

@Suite struct TensorConversionTests {
    @Test func toTensorMatchesTorchvision() throws {
        let image = try RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 1, 2, 3])
        let unit = try image.tensor(range: .zeroToOne)
        #expect(unit.shape == [1, 3, 1, 2])
        // NCHW: the red plane, then green, then blue.
        #expect(unit.scalars == [0, Float(1) / 255, Float(128) / 255, Float(2) / 255, 1, Float(3) / 255])
        let model = try image.tensor()
        #expect(model.scalars == unit.scalars.map { $0 * 2 - 1 })
        #expect(model.scalars[0] == -1 && model.scalars[4] == 1)
    }

    /// Truncation makes a byte → tensor → byte round trip lose 1 wherever float rounding
    /// lands just below the integer, exactly as the reference's to_tensor/to_pil_image pair.
    @Test func roundTripsMatchTheReferenceArithmetic() throws {
        let all = try RGBImage(width: 256, height: 1, pixels: (0..<256).flatMap { [UInt8($0), UInt8($0), UInt8($0)] })
        for range in [PixelRange.minusOneToOne, .zeroToOne] {
            let back = try RGBImage(tensor: all.tensor(range: range), range: range)
            for value in 0..<256 {
                var unit = Float(value) / 255
                if range == .minusOneToOne { unit = ((unit * 2 - 1) + 1) / 2 }
                #expect(back[value, 0].red == UInt8(unit * 255), "\(range) \(value)")
                #expect(Int(back[value, 0].red) >= value - 1 && back[value, 0].red <= UInt8(value))
            }
        }
    }

    /// torchvision's `to_pil_image(x.add(1).div(2).clamp(0, 1))`: `(v · 255).astype(uint8)`
    /// truncates, and out-of-range values are clamped first.
    @Test func fromTensorClampsAndTruncatesLikeTheReference() throws {
        let values: [Float] = [-3, -1, 0, 0.999, 1, 7, .nan, 0.5]
        let tensor = try Tensor(shape: [3, 1, 8], scalars: values + values + values)
        let image = try RGBImage(tensor: tensor)
        // (0 + 1) / 2 · 255 = 127.5 → 127; (0.999 + 1) / 2 · 255 = 254.87 → 254; 0.5 → 191.25 → 191.
        #expect((0..<8).map { image[$0, 0].red } == [0, 0, 127, 254, 255, 255, 0, 191])
        let unit = try RGBImage(tensor: tensor, range: .zeroToOne)
        #expect((0..<8).map { unit[$0, 0].green } == [0, 0, 0, 254, 255, 255, 0, 127])
    }

    @Test func wrongShapesThrow() throws {
        for shape in [[1, 1, 4, 4], [2, 3, 4, 4], [4, 4], [1, 3, 0, 4]] {
            let tensor = try Tensor.zeros(shape)
            #expect(throws: ImageError.self, "\(shape)") { try RGBImage(tensor: tensor) }
        }
        #expect(String(describing: ImageError.tensorShape(got: [1, 1, 4, 4])).contains("[1, 3, H, W]"))
    }
}
