import ArgumentParser

/// The largest `--max-megapixels` accepted: beyond it the pixel count no longer fits the
/// decoders' arithmetic, and no machine has the memory anyway.
let largestMegapixelLimit = 10_000

/// Checks a `--max-megapixels` value (`blend edit`, `blend serve`).
/// - Throws: `ValidationError` unless 1 ≤ `megapixels` ≤ ``largestMegapixelLimit``.
func validateMegapixels(_ megapixels: Int) throws {
    guard (1...largestMegapixelLimit).contains(megapixels) else {
        throw ValidationError("--max-megapixels must be 1 to \(largestMegapixelLimit) (millions of pixels), got \(megapixels)")
    }
}
