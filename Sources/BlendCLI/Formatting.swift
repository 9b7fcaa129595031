import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Output helpers for the `models` commands.

/// "2.21 GB": decimal units, as download sizes are quoted.
func byteSize(_ bytes: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.2f", value) + " " + units[unit]
}

/// 552000000 → "552,000,000"
func grouped(_ n: Int) -> String {
    let digits = String(n)
    var result = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { result.append(",") }
        result.append(c)
    }
    return result
}

/// The process's peak resident set size so far.
func peakResidentBytes() -> Int64 {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int64(usage.ru_maxrss) * 1024  // kilobytes on Linux
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Int64(usage.ru_maxrss)  // bytes on Darwin
    #endif
}

func fileSize(_ path: String) -> Int64 {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
}

/// `text` made safe to print on a terminal: control characters (C0, DEL, C1: the bytes that
/// start terminal escape sequences) and bidirectional overrides are shown as `\u{...}`
/// escapes rather than passed through, and anything past `limit` characters is cut with a
/// note of how much was left out. For strings that come from files (metadata, tensor names).
func terminalSafe(_ text: String, limit: Int? = nil) -> String {
    var out = ""
    var shown = 0
    var scalars = text.unicodeScalars.makeIterator()
    var total = 0
    while let scalar = scalars.next() {
        total += 1
        if let limit, shown >= limit { continue }
        let v = scalar.value
        let escaped: String?
        switch v {
        case 0x0A: escaped = "\\n"
        case 0x09: escaped = "\\t"
        case 0x0D: escaped = "\\r"
        case 0x00..<0x20, 0x7F..<0xA0, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069:
            escaped = "\\u{" + String(v, radix: 16) + "}"
        default: escaped = nil
        }
        if let escaped { out += escaped } else { out.unicodeScalars.append(scalar) }
        shown += 1
    }
    if let limit, total > limit { out += "… (\(total - limit) more characters)" }
    return out
}
