import BlendTensor

/// Several weight files read as one state dict (the shards of a sharded model). Names are
/// unique across the group; a tensor is read from its file only when asked for.
public final class CheckpointGroup: @unchecked Sendable {
    public let checkpoints: [Checkpoint]
    /// Every tensor of the group by (unwrapped) name, in file order.
    public let entries: [CheckpointEntry]
    private let owner: [String: (checkpoint: Int, name: String)]

    /// Throws `CheckpointError.duplicateTensorName` when two files hold the same tensor name.
    public init(_ checkpoints: [Checkpoint]) throws {
        var owner: [String: (checkpoint: Int, name: String)] = [:]
        var entries: [CheckpointEntry] = []
        for (index, checkpoint) in checkpoints.enumerated() {
            for entry in checkpoint.entries {
                let name = entry.name
                guard owner[name] == nil else {
                    throw CheckpointError.duplicateTensorName(file: checkpoint.path, name: name)
                }
                owner[name] = (index, entry.name)
                entries.append(CheckpointEntry(name: name, dtype: entry.dtype, shape: entry.shape))
            }
        }
        self.checkpoints = checkpoints
        self.entries = entries
        self.owner = owner
    }

    /// Names and shapes of every tensor.
    public var shapes: [String: [Int]] { Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.shape) }) }
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.elementCount } }
    public func contains(_ name: String) -> Bool { owner[name] != nil }
    /// The file that holds `name`.
    public func path(of name: String) -> String? { owner[name].map { checkpoints[$0.checkpoint].path } }

    /// The tensor as float32 (see ``Checkpoint/tensor(named:convertingIntegers:)``).
    public func tensor(named name: String, convertingIntegers: Bool = false) throws -> Tensor {
        guard let (index, stored) = owner[name] else {
            throw CheckpointError.missingTensor(file: checkpoints.map(\.path).joined(separator: ", "), name: name, similar: [])
        }
        return try checkpoints[index].tensor(named: stored, convertingIntegers: convertingIntegers)
    }
}
