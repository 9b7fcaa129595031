import BlendTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The editor's only source of randomness: seeded ``SplitMix64`` streams, so that one
/// seed always gives the same edit (on any machine: no platform RNG is involved).
public struct NoiseSource: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// An independent stream for one purpose of one step: mixing the edit's seed with
    /// the stream's coordinates keeps each stream reproducible on its own (a test can
    /// regenerate the background noise of any step without replaying the whole edit).
    public init(seed: UInt64, stream: UInt64, iteration: Int, timestep: Int) {
        var mixer = NoiseSource(seed: seed ^ (stream &* 0xD6E8_FEB8_6659_FD93))
        let a = mixer.next() ^ UInt64(truncatingIfNeeded: iteration) &* 0x9E37_79B9_7F4A_7C15
        generator = SplitMix64(seed: a ^ UInt64(truncatingIfNeeded: timestep) &* 0xC2B2_AE3D_27D4_EB4F)
    }

    /// The stream of the source's noise that sample `sample` is blended with at `timestep`.
    public static func background(seed: UInt64, sample: Int, timestep: Int) -> NoiseSource {
        NoiseSource(seed: seed, stream: 1, iteration: sample, timestep: timestep)
    }

    /// Sample `index`'s own stream: its start noise, step noise, augmentations and class
    /// labels, in the order the editor draws them. Depends only on the seed and the index,
    /// so sample i is the same whatever the batch size or which samples a run makes.
    public static func sample(seed: UInt64, index: Int) -> NoiseSource {
        NoiseSource(seed: seed, stream: 2, iteration: index, timestep: 0)
    }

    public mutating func next() -> UInt64 { generator.next() }

    /// Standard normal noise of `shape`.
    public mutating func gaussian(_ shape: [Int]) throws -> Tensor {
        try Tensor.randomNormal(shape, using: &self)
    }

    /// A uniform value in `range`.
    public mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * Float(next() >> 40) / Float(1 << 24)
    }
}
