#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors in diffusion settings, phrased for the person who chose them.
public enum DiffusionError: Error, Equatable, CustomStringConvertible {
    case invalidRespacing(String)
    case invalidTimestep(Int, count: Int)
    case invalidSchedule(String)
    case invalidSampling(String)

    public var description: String {
        switch self {
        case let .invalidRespacing(message): return "invalid timestep respacing: \(message)"
        case let .invalidTimestep(t, count): return "timestep \(t) is outside 0..<\(count)"
        case let .invalidSchedule(message): return "invalid noise schedule: \(message)"
        case let .invalidSampling(message): return "invalid sampling setting: \(message)"
        }
    }
}

/// The noise schedules of guided-diffusion (`get_named_beta_schedule`), in float64 as there.
public enum BetaSchedule: String, Codable, Sendable, CaseIterable {
    /// Ho et al.'s linear schedule, rescaled so that any step count spans the same range.
    case linear
    /// Nichol & Dhariwal's cosine schedule (ᾱ(t) = cos²((t + 0.008)/1.008 · π/2)), β capped at 0.999.
    case cosine

    public func betas(steps: Int) -> [Double] {
        switch self {
        case .linear:
            let scale = 1000 / Double(steps)
            let start = scale * 0.0001, end = scale * 0.02
            // numpy.linspace: start + i·step, with the last value exactly `end`.
            guard steps > 1 else { return [start] }
            let step = (end - start) / Double(steps - 1)
            return (0..<steps).map { $0 == steps - 1 ? end : start + Double($0) * step }
        case .cosine:
            func alphaBar(_ t: Double) -> Double {
                let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
                return c * c
            }
            return (0..<steps).map { i in
                let t1 = Double(i) / Double(steps), t2 = Double(i + 1) / Double(steps)
                return min(1 - alphaBar(t2) / alphaBar(t1), 0.999)
            }
        }
    }
}

/// Which steps of the original process a respaced sampler visits (guided-diffusion's
/// `space_timesteps`): "100" or "25,25,50" pick evenly spaced steps per equal section;
/// "ddim50" uses the integer stride of the DDIM paper.
public func spacedTimesteps(original steps: Int, spec: String) throws -> [Int] {
    let trimmed = spec.trimmingCharacters(in: " ")
    if trimmed.hasPrefix("ddim") {
        guard let desired = Int(trimmed.dropFirst(4)), desired > 0 else {
            throw DiffusionError.invalidRespacing("'\(spec)': expected ddimN with a positive N")
        }
        for step in 1..<max(steps, 2) where (steps + step - 1) / step == desired {
            return Array(stride(from: 0, to: steps, by: step))
        }
        throw DiffusionError.invalidRespacing("cannot take exactly \(desired) of \(steps) steps with an integer stride")
    }
    let counts = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { Int(String($0).trimmingCharacters(in: " ")) }
    guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw DiffusionError.invalidRespacing("'\(spec)': expected a step count such as \"100\", a comma list such as \"10,20,30\", or \"ddim50\"")
    }
    let sections = counts.map { $0! }
    let sizePer = steps / sections.count, extra = steps % sections.count
    var start = 0
    var all = Set<Int>()
    for (i, count) in sections.enumerated() {
        let size = sizePer + (i < extra ? 1 : 0)
        guard size >= count else {
            throw DiffusionError.invalidRespacing("cannot divide a section of \(size) steps into \(count)")
        }
        let stride = count <= 1 ? 1 : Double(size - 1) / Double(count - 1)
        var current = 0.0
        for _ in 0..<count {
            all.insert(start + Int(current.roundedHalfEven()))
            current += stride
        }
        start += size
    }
    return all.sorted()
}

extension String {
    func trimmingCharacters(in character: Character) -> String {
        var s = Substring(self)
        while s.first == character { s.removeFirst() }
        while s.last == character { s.removeLast() }
        return String(s)
    }
}

extension Double {
    /// Python 3's `round()`: ties go to the even neighbour.
    func roundedHalfEven() -> Double { rounded(.toNearestOrEven) }
}
