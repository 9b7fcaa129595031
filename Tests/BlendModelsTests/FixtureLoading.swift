import Foundation
import Testing
import BlendCheckpoint
import BlendTensor
@testable import BlendModels

let modelFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// Every tensor of a checkpoint file (through the real loader), by name.
func loadTensors(_ name: String) throws -> [String: Tensor] {
    try CheckpointFile.load(url: modelFixtures.appendingPathComponent(name)).tensors()
}

/// Max |a − b| relative to max |b|: the parity measure (1e-4 or better is required).
func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    let scale = max(b.scalars.map { Swift.abs($0) }.max() ?? 0, 1e-12)
    return zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max()! / scale
}

/// The thread counts every parity fixture is also checked at (the machine's own count runs in
/// the other suites): one, odd, and more than the CI machine's cores.
let parityThreadCounts = [1, 3, 16]
