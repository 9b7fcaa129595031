import Foundation
import Testing
@testable import BlendConcurrency

/// The CPUs a process may use: its affinity mask and a cgroup quota, parsed from the files the
/// kernel writes, and read on this machine.
@Suite struct AvailableCPUsTests {
    @Test func cpuListsCountTheirCPUs() {
        #expect(AvailableCPUs.parseCPUList("0-3,8,10-11") == 7)
        #expect(AvailableCPUs.parseCPUList("\t0\n") == 1)
        #expect(AvailableCPUs.parseCPUList("0-63") == 64)
        for bad in ["", "3-1", "a", "0-", "1-2-3", ","] { #expect(AvailableCPUs.parseCPUList(bad) == nil, "'\(bad)'") }
    }

    @Test func cgroupQuotasAreCPUs() {
        #expect(AvailableCPUs.parseCPUMax("max 100000\n") == nil)
        #expect(AvailableCPUs.parseCPUMax("400000 100000\n") == 4)
        #expect(AvailableCPUs.parseCPUMax("150000 100000") == 1.5)
        #expect(AvailableCPUs.parseCPUMax("50000") == 0.5)
        for bad in ["", "0 100000", "x 100000", "100000 0", "-5 100000"] { #expect(AvailableCPUs.parseCPUMax(bad) == nil, "'\(bad)'") }
        #expect(AvailableCPUs.parseCFSQuota(quota: "-1\n", period: "100000\n") == nil)
        #expect(AvailableCPUs.parseCFSQuota(quota: "200000\n", period: "100000\n") == 2)
        #expect(AvailableCPUs.parseCFSQuota(quota: "junk", period: "100000") == nil)
    }

    @Test func cgroupMembershipLinesAreParsed() throws {
        let unified = try #require(CgroupMembership(line: "0::/user.slice/user-0.slice/session-1.scope"))
        #expect(unified.isUnified && unified.path == "/user.slice/user-0.slice/session-1.scope")
        let v1 = try #require(CgroupMembership(line: "4:cpu,cpuacct:/docker/abc"))
        #expect(!v1.isUnified && v1.controllers == ["cpu", "cpuacct"] && v1.path == "/docker/abc")
        #expect(CgroupMembership(line: "garbage") == nil && CgroupMembership(line: "1:cpu:relative") == nil)
        #expect(AvailableCPUs.ancestorDirectories(root: "/sys/fs/cgroup", path: "/a/b")
                == ["/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", "/sys/fs/cgroup"])
        #expect(AvailableCPUs.ancestorDirectories(root: "/sys/fs/cgroup", path: "/") == ["/sys/fs/cgroup"])
    }

    @Test func thisProcessCountsItsAffinityAndQuota() throws {
        // coreutils' nproc counts the affinity mask as the kernel reports it.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["nproc"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let nproc = Int(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(AvailableCPUs.affinityCount() == nproc)
        let count = AvailableCPUs.count
        #expect(count >= 1 && count <= AvailableCPUs.onlineCount())
        #expect(count == min(nproc ?? count, AvailableCPUs.cgroupQuota() ?? Int.max))
    }
}
