/// How a solver spreads its steps over the training timesteps 0 ..< T (diffusers'
/// `timestep_spacing`; Lin et al. 2023, "Common diffusion noise schedules and sample steps
/// are flawed", Table 2). What SD's published scheduler configs give: DDIM "leading" with
/// `steps_offset` 1 (25 steps: 961, 921, …, 1); DPM-Solver++ "linspace" (999, 959, …, 40),
/// since diffusers' `from_config` drops the spacing the config only inherited as a default.
public enum TimestepSpacing: String, Codable, Sendable, CaseIterable {
    /// Multiples of an integer stride from 0, plus `steps_offset`.
    case leading
    /// Evenly spaced from 0 to T − 1, rounded.
    case linspace
    /// Evenly spaced down from T − 1.
    case trailing

    /// The descending timesteps of diffusers' `DDIMScheduler.set_timesteps(steps)`.
    public func ddimTimesteps(steps: Int, trainSteps: Int = 1000, stepsOffset: Int = 0) throws -> [Int] {
        try Self.check(steps: steps, trainSteps: trainSteps)
        switch self {
        case .leading:
            let ratio = trainSteps / steps
            return (0..<steps).reversed().map { $0 * ratio + stepsOffset }
        case .linspace:
            return Self.linspace(0, Double(trainSteps - 1), count: steps).reversed().map { Int($0.rounded(.toNearestOrEven)) }
        case .trailing:
            return Self.trailing(from: trainSteps, trainSteps: trainSteps, steps: steps)
        }
    }

    /// The descending timesteps of diffusers' `DPMSolverMultistepScheduler.set_timesteps(steps)`:
    /// `steps + 1` points with the last (0) dropped, since the final step goes to σ = 0.
    public func dpmSolverTimesteps(steps: Int, trainSteps: Int = 1000, stepsOffset: Int = 0) throws -> [Int] {
        try Self.check(steps: steps, trainSteps: trainSteps)
        switch self {
        case .leading:
            let ratio = trainSteps / (steps + 1)
            return (1...steps).reversed().map { $0 * ratio + stepsOffset }
        case .linspace:
            return Self.linspace(0, Double(trainSteps - 1), count: steps + 1).dropFirst().reversed()
                .map { Int($0.rounded(.toNearestOrEven)) }
        case .trailing:
            return Self.trailing(from: trainSteps, trainSteps: trainSteps, steps: steps)
        }
    }

    private static func check(steps: Int, trainSteps: Int) throws {
        guard steps >= 1, steps <= trainSteps else {
            throw DiffusionError.invalidSampling("the number of steps must be from 1 to \(trainSteps), got \(steps)")
        }
    }

    /// numpy.linspace with the endpoint: `start + i·step`, the last value exactly `stop`.
    static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        guard count > 1 else { return [start] }
        let step = (stop - start) / Double(count - 1)
        return (0..<count).map { $0 == count - 1 ? stop : start + Double($0) * step }
    }

    /// `round(arange(start, 0, −T/steps)) − 1`.
    static func trailing(from start: Int, trainSteps: Int, steps: Int) -> [Int] {
        let ratio = Double(trainSteps) / Double(steps)
        let count = Int((Double(start) / ratio).rounded(.up))
        return (0..<count).map { Int((Double(start) - Double($0) * ratio).rounded(.toNearestOrEven)) - 1 }
    }
}
