import Foundation
import Testing
@testable import BlendDiffusion

let diffusionFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

@Suite struct ScheduleTests {
    typealias Tables = [String: [String: [Double]]]
    let tables: Tables = try! JSONDecoder().decode(Tables.self, from: Data(contentsOf: diffusionFixtures.appendingPathComponent("schedules.json")))

    @Test(arguments: ["linear/100", "linear/ddim50", "linear/25,25,50", "cosine/50"])
    func matchesGuidedDiffusion(key: String) throws {
        let parts = key.split(separator: "/")
        let d = try GaussianDiffusion.spaced(schedule: BetaSchedule(rawValue: String(parts[0]))!, respacing: String(parts[1]))
        let ref = try #require(tables[key])
        #expect(d.timestepMap == ref["timestep_map"]!.map { Int($0) })
        func close(_ a: [Double], _ b: [Double], _ name: String) {
            #expect(a.count == b.count, "\(name) count")
            let worst = zip(a, b).map { Swift.abs($0 - $1) / Swift.max(Swift.abs($1), 1e-300) }.max() ?? 0
            #expect(worst < 1e-12, "\(key) \(name): relative error \(worst)")
        }
        close(d.betas, ref["betas"]!, "betas")
        close(d.alphasCumprod, ref["alphas_cumprod"]!, "alphas_cumprod")
        close(d.posteriorLogVarianceClipped, ref["posterior_log_variance_clipped"]!, "posterior_log_variance_clipped")
        close(d.posteriorMeanCoef1, ref["posterior_mean_coef1"]!, "posterior_mean_coef1")
        close(d.posteriorMeanCoef2, ref["posterior_mean_coef2"]!, "posterior_mean_coef2")
        close(d.sqrtOneMinusAlphasCumprod, ref["sqrt_one_minus_alphas_cumprod"]!, "sqrt_one_minus_alphas_cumprod")
    }

    @Test func respacingRules() throws {
        #expect(try spacedTimesteps(original: 1000, spec: "ddim50") == Array(stride(from: 0, to: 1000, by: 20)))
        #expect(try spacedTimesteps(original: 10, spec: "3") == [0, 4, 9])   // stride 4.5: round(4.5) = 4
        #expect(try spacedTimesteps(original: 1000, spec: "100").count == 100)
        #expect(try spacedTimesteps(original: 1000, spec: "1000") == Array(0..<1000))
    }

    @Test func badRespacingsThrow() {
        for spec in ["", "abc", "0", "ddim", "ddimx", "2000", "10,,20", "ddim600"] {
            #expect(throws: DiffusionError.self, "\(spec)") { try spacedTimesteps(original: 1000, spec: spec) }
        }
        let message = String(describing: DiffusionError.invalidRespacing("'abc': expected a step count"))
        #expect(message.contains("abc"))
    }

    @Test func modelTimestepsAreOriginalSteps() throws {
        let d = try GaussianDiffusion.spaced(respacing: "100")
        #expect(d.stepCount == 100)
        #expect(d.modelTimestep(0) == 0)
        #expect(d.modelTimestep(99) == 999)
        #expect(d.modelTimestep(37) == Float(d.timestepMap[37]))
    }
}
