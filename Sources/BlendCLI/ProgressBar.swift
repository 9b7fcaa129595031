import BlendCheckpoint
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Download progress on stderr: a redrawn bar on a terminal, a line per 10% otherwise.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let interactive = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var lastTenth = -1
    private var drew = false
    private let start = Date()

    init(label: String) { self.label = label }

    func update(_ progress: DownloadProgress) {
        lock.lock()
        defer { lock.unlock() }
        let fraction = progress.bytesExpected.map { $0 > 0 ? Double(progress.bytesReceived) / Double($0) : 1 }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(progress.bytesReceived - progress.resumedFrom) / elapsed : 0
        let total = progress.bytesExpected.map { " / \(byteSize($0))" } ?? ""
        let amounts = "\(byteSize(progress.bytesReceived))\(total)  \(byteSize(Int64(rate)))/s"
        if interactive {
            // Redraw at most ten times a second.
            guard Date().timeIntervalSince(lastDraw) >= 0.1 || fraction == 1 else { return }
            lastDraw = Date()
            let width = 30
            let filled = Int((fraction ?? 0) * Double(width))
            let bar = fraction == nil ? "" : "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            let percent = fraction.map { String(format: "%3.0f%% ", $0 * 100) } ?? ""
            FileHandle.standardError.write(Data("\r\(label) \(bar)\(percent)\(amounts)\u{1B}[K".utf8))
            drew = true
        } else {
            let tenth = fraction.map { Int($0 * 10) } ?? Int(progress.bytesReceived / (100 << 20))
            guard tenth != lastTenth else { return }
            lastTenth = tenth
            let percent = fraction.map { String(format: "%.0f%% ", $0 * 100) } ?? ""
            FileHandle.standardError.write(Data("\(label): \(percent)\(amounts)\n".utf8))
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drew { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
