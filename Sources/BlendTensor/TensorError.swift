/// Errors thrown by tensor operations. Each message names the operation and the
/// shapes involved, so a caller (or a model author) can see what to fix.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Two shapes cannot be broadcast together.
    case broadcastMismatch(op: String, lhs: [Int], rhs: [Int])
    /// An operand has the wrong shape for an operation.
    case shapeMismatch(op: String, expected: String, got: [Int])
    /// A parameter (axis, group count, stride, ...) is out of range.
    case invalidArgument(op: String, message: String)
    /// The element count of a literal or reshape does not match the shape.
    case elementCountMismatch(op: String, shape: [Int], count: Int)
    /// A gradient was requested for a tensor that does not take part in the computation.
    case notDifferentiable(message: String)

    public var description: String {
        switch self {
        case let .broadcastMismatch(op, lhs, rhs):
            return "\(op): shapes \(lhs) and \(rhs) cannot be broadcast together (each dimension must match or be 1)"
        case let .shapeMismatch(op, expected, got):
            return "\(op): expected \(expected), got shape \(got)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .elementCountMismatch(op, shape, count):
            return "\(op): shape \(shape) holds \(shape.reduce(1, *)) elements, but \(count) were given"
        case let .notDifferentiable(message):
            return "gradient: \(message)"
        }
    }
}
