import Testing
@testable import BlendTensor

/// The engine's thread count: `BLEND_NUM_THREADS` and `--threads` values, and a task's override.
@Suite struct EngineThreadsTests {
    @Test func environmentValuesAreWholeNumbersInRange() throws {
        #expect(try EngineThreads.environmentValue([:]) == nil)
        #expect(try EngineThreads.environmentValue(["BLEND_NUM_THREADS": ""]) == nil)
        #expect(try EngineThreads.environmentValue(["BLEND_NUM_THREADS": " 12 "]) == 12)
        #expect(try EngineThreads.environmentValue(["BLEND_NUM_THREADS": "1024"]) == 1024)
        for bad in ["0", "-3", "1025", "four", "2.5", "8 threads"] {
            #expect(throws: EngineThreadsError.outOfRange(bad, origin: "BLEND_NUM_THREADS")) {
                try EngineThreads.environmentValue(["BLEND_NUM_THREADS": bad])
            }
        }
        let message = EngineThreadsError.outOfRange("four", origin: "BLEND_NUM_THREADS").description
        #expect(message.contains("BLEND_NUM_THREADS") && message.contains("'four'") && message.contains("1 to 1024")
                && message.contains("unset it to use the CPUs this process may use"))
        #expect(EngineThreadsError.outOfRange("0", origin: "--threads").description.contains("leave it out to use"))
    }

    @Test func configureRefusesCountsOutOfRange() {
        for bad in [0, -1, 1025] {
            #expect(throws: EngineThreadsError.self) { try EngineThreads.configure(bad) }
        }
    }

    @Test func aTaskCanRunWithItsOwnCount() async {
        let outside = EngineThreads.count
        #expect(EngineThreads.withCount(7) { EngineThreads.count } == 7)
        #expect(EngineThreads.withCount(0) { EngineThreads.count } == 1)
        #expect(EngineThreads.withCount(5000) { EngineThreads.count } == EngineThreads.maximum)
        let inner = await EngineThreads.withCount(3) { () async -> Int in
            await Task { EngineThreads.count }.value   // a child task inherits the count
        }
        #expect(inner == 3 && EngineThreads.count == outside)
    }
}
