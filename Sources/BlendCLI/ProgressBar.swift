import BlendCheckpoint
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress on stderr: a bar redrawn in place on a terminal; plain lines otherwise
/// (logs and pipes), at most one per `plainStep` of progress.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let interactive: Bool
    private let plainStep: Double
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var lastPlainKey = -1
    private var drew = false
    let start = Date()

    /// `plainStep` is the fraction of progress between plain lines (0 for every update).
    init(label: String, plainStep: Double = 0.1, interactive: Bool = isatty(STDERR_FILENO) != 0) {
        self.label = label
        self.plainStep = plainStep
        self.interactive = interactive
    }

    /// Shows `fraction` (nil when the total is unknown) and a `detail` text.
    func show(fraction: Double?, detail: String, force: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        if interactive {
            // Redraw at most ten times a second.
            guard force || Date().timeIntervalSince(lastDraw) >= 0.1 || fraction == 1 else { return }
            lastDraw = Date()
            let width = 30
            let filled = Int((fraction ?? 0) * Double(width))
            let bar = fraction == nil ? "" : "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            let percent = fraction.map { String(format: "%3.0f%% ", $0 * 100) } ?? ""
            FileHandle.standardError.write(Data("\r\(label) \(bar)\(percent)\(detail)\u{1B}[K".utf8))
            drew = true
        } else {
            let key = plainStep > 0 ? Int((fraction ?? 0) / plainStep) : lastPlainKey + 1
            guard force || key != lastPlainKey else { return }
            lastPlainKey = key
            let percent = fraction.map { String(format: "%.0f%% ", $0 * 100) } ?? ""
            FileHandle.standardError.write(Data("\(label): \(percent)\(detail)\n".utf8))
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drew { FileHandle.standardError.write(Data("\n".utf8)) }
        drew = false
    }
}

extension ProgressBar {
    /// A download's progress: bytes, total and rate.
    func update(_ progress: DownloadProgress) {
        let fraction = progress.bytesExpected.map { $0 > 0 ? Double(progress.bytesReceived) / Double($0) : 1 }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(progress.bytesReceived - progress.resumedFrom) / elapsed : 0
        let total = progress.bytesExpected.map { " / \(byteSize($0))" } ?? ""
        show(fraction: fraction, detail: "\(byteSize(progress.bytesReceived))\(total)  \(byteSize(Int64(rate)))/s")
    }
}

/// "1h02m", "3m05s", "42s"
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
