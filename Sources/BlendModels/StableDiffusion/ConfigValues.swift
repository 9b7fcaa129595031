/// A config.json value that diffusers accepts either as one number for every block or as a
/// list with one per block (`attention_head_dim: 8` in SD 1.x, `[5, 10, 20, 20]` in SD 2.x).
public enum PerBlockInt: Codable, Equatable, Sendable {
    case all(Int)
    case perBlock([Int])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let value = try? c.decode(Int.self) { self = .all(value) } else { self = .perBlock(try c.decode([Int].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .all(value): try c.encode(value)
        case let .perBlock(values): try c.encode(values)
        }
    }

    /// The values for `count` blocks; nil when a list has another length.
    public func values(count: Int) -> [Int]? {
        switch self {
        case let .all(value): return Array(repeating: value, count: count)
        case let .perBlock(values): return values.count == count ? values : nil
        }
    }
}
