#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many CPUs this process may keep busy: the CPUs in its affinity mask (`taskset`,
/// `docker --cpuset-cpus`), limited by a cgroup CPU quota (`docker --cpus 4`, Kubernetes
/// limits, `systemd-run -p CPUQuota=400%`) rounded up, and at least 1. A container limited to
/// 4 CPUs on a 64-core host gets 4, not the host's 64 that `sysconf(_SC_NPROCESSORS_ONLN)`
/// reports.
public enum AvailableCPUs {
    /// The count for this process, read once (the first use) from the kernel.
    public static let count: Int = {
        let affinity = affinityCount() ?? onlineCount()
        guard let quota = cgroupQuota() else { return max(1, affinity) }
        return max(1, min(affinity, quota))
    }()

    /// The CPUs online on the machine (what the process could use without affinity or quota).
    public static func onlineCount() -> Int {
        #if canImport(Glibc) || canImport(Darwin)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// The CPUs in this process's affinity mask (`Cpus_allowed_list` of `/proc/self/status`),
    /// or nil where the system does not say.
    public static func affinityCount() -> Int? {
        #if os(Linux)
        guard let status = readText("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return parseCPUList(String(line.dropFirst("Cpus_allowed_list:".count)))
        }
        return nil
        #else
        return nil
        #endif
    }

    /// The number of CPUs in a kernel CPU list such as `"0-3,8,10-11"` (nil when malformed or empty).
    public static func parseCPUList(_ text: String) -> Int? {
        var total = 0
        for item in text.split(separator: ",") {
            let trimmed = item.filter { !$0.isWhitespace }
            if trimmed.isEmpty { continue }
            let bounds = trimmed.split(separator: "-", omittingEmptySubsequences: false)
            switch bounds.count {
            case 1:
                guard Int(bounds[0]) != nil else { return nil }
                total += 1
            case 2:
                guard let lo = Int(bounds[0]), let hi = Int(bounds[1]), lo <= hi else { return nil }
                total += hi - lo + 1
            default:
                return nil
            }
        }
        return total > 0 ? total : nil
    }

    /// The cgroup CPU quota of this process in whole CPUs (rounded up), or nil when there is
    /// none: the smallest `cpu.max` (cgroup v2) of its cgroup and each parent, or its cgroup
    /// v1 `cpu.cfs_quota_us / cpu.cfs_period_us`.
    public static func cgroupQuota() -> Int? {
        #if os(Linux)
        guard let membership = readText("/proc/self/cgroup") else { return nil }
        var quotas: [Double] = []
        for line in membership.split(separator: "\n") {
            guard let entry = CgroupMembership(line: String(line)) else { continue }
            if entry.isUnified {
                // v2: the quota may be set on any ancestor; the tightest one holds.
                for dir in ancestorDirectories(root: "/sys/fs/cgroup", path: entry.path) {
                    if let text = readText(dir + "/cpu.max"), let q = parseCPUMax(text) { quotas.append(q) }
                }
            } else if entry.controllers.contains("cpu") {
                for root in ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"] {
                    // Inside a container the process's own cgroup is usually the mount's root.
                    for dir in [root + entry.path, root] {
                        if let quota = readText(dir + "/cpu.cfs_quota_us"), let period = readText(dir + "/cpu.cfs_period_us"),
                           let q = parseCFSQuota(quota: quota, period: period) {
                            quotas.append(q)
                            break
                        }
                    }
                }
            }
        }
        guard let tightest = quotas.min() else { return nil }
        return max(1, Int(tightest.rounded(.up)))
        #else
        return nil
        #endif
    }

    /// CPUs allowed by a cgroup v2 `cpu.max` line (`"$MAX $PERIOD"`, `"max 100000"` for no
    /// limit), or nil when it sets none or cannot be read.
    public static func parseCPUMax(_ text: String) -> Double? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        guard fields.count >= 1, fields[0] != "max", let quota = Double(fields[0]), quota > 0 else { return nil }
        let period = fields.count >= 2 ? Double(fields[1]) ?? 100_000 : 100_000
        guard period > 0 else { return nil }
        return quota / period
    }

    /// CPUs allowed by cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota −1: no
    /// limit), or nil.
    public static func parseCFSQuota(quota: String, period: String) -> Double? {
        let trimmed = { (s: String) in s.filter { !$0.isWhitespace } }
        guard let q = Double(trimmed(quota)), q > 0, let p = Double(trimmed(period)), p > 0 else { return nil }
        return q / p
    }

    /// `root + path` and each of its parents up to `root` itself, innermost first.
    static func ancestorDirectories(root: String, path: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var dirs: [String] = []
        while true {
            dirs.append(parts.isEmpty ? root : root + "/" + parts.joined(separator: "/"))
            if parts.isEmpty { break }
            parts.removeLast()
        }
        return dirs
    }

    private static func readText(_ path: String) -> String? {
        #if canImport(Glibc) || canImport(Darwin)
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
        #else
        return nil
        #endif
    }
}

/// One line of `/proc/self/cgroup`: `hierarchy-ID:controller-list:path` (`0::/path` for the
/// unified cgroup v2 hierarchy).
public struct CgroupMembership: Equatable, Sendable {
    public let hierarchy: String
    public let controllers: [String]
    public let path: String

    public var isUnified: Bool { hierarchy == "0" && controllers.isEmpty }

    public init?(line: String) {
        let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, fields[2].hasPrefix("/") else { return nil }
        hierarchy = String(fields[0])
        controllers = fields[1].isEmpty ? [] : fields[1].split(separator: ",").map(String.init)
        path = String(fields[2])
    }
}
