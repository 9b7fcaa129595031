import CZlib

/// Raw DEFLATE (RFC 1951) decompression and CRC-32, both by zlib, for zip members.
///
/// TorchScript archives compress their `code/` files (a few kilobytes each, which name
/// the parameters of each module); `torch.save` stores everything else uncompressed.
enum ZlibCodec {
    /// Why a DEFLATE stream could not be decompressed, in words for an error message.
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// The input ends before the stream's last block does.
        case truncated
        /// The stream decodes to more bytes than the archive declares.
        case largerThanDeclared(Int)
        /// The stream ends after fewer bytes than the archive declares.
        case smallerThanDeclared(declared: Int, actual: Int)
        /// zlib rejects the data (bad block type, invalid code, distance too far back...).
        case corrupt(String)
        /// zlib could not start or allocate its state.
        case zlib(Int32)

        var description: String {
            switch self {
            case .truncated: return "the compressed data ends early"
            case let .largerThanDeclared(size): return "it decompresses to more than the declared \(size) bytes"
            case let .smallerThanDeclared(declared, actual): return "it decompresses to \(actual) bytes, not the declared \(declared)"
            case let .corrupt(detail): return "its compressed data is corrupt (zlib: \(detail))"
            case let .zlib(status): return "zlib failed with status \(status)"
            }
        }
    }

    /// Decompresses the raw DEFLATE stream `input` (no zlib or gzip wrapper), which must
    /// decode to exactly `declaredSize` bytes. Memory is bounded by `declaredSize`: a stream
    /// that would produce more is stopped as soon as it does. Bytes after the stream's end
    /// are ignored (the member's CRC-32 covers what matters).
    static func inflateRaw(_ input: UnsafeRawBufferPointer, declaredSize: Int) throws(Failure) -> [UInt8] {
        precondition(declaredSize >= 0, "negative declared size")
        var stream = z_stream()
        // A negative window size selects raw DEFLATE; MAX_WBITS allows zip's 32 KiB window.
        let started = inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard started == Z_OK else { throw .zlib(started) }
        defer { inflateEnd(&stream) }

        // One byte of room past the declared size, so that a longer stream shows itself.
        var output = [UInt8](repeating: 0, count: declaredSize + 1)
        let outcome: Failure? = output.withUnsafeMutableBytes { out in
            let outBase = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            // zlib never writes through next_in; the mutable pointer is only its C type.
            let inBase = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            var consumed = 0, produced = 0
            while true {
                // zlib counts in 32-bit units: hand over input and output space in slices.
                if stream.avail_in == 0, consumed < input.count, let inBase {
                    let slice = min(input.count - consumed, Int(UInt32.max))
                    stream.next_in = inBase + consumed
                    stream.avail_in = UInt32(slice)
                    consumed += slice
                }
                if stream.avail_out == 0 {
                    let slice = min(out.count - produced, Int(UInt32.max))
                    stream.next_out = outBase + produced
                    stream.avail_out = UInt32(slice)
                }
                let before = stream.avail_out
                let status = inflate(&stream, Z_NO_FLUSH)
                produced += Int(before - stream.avail_out)
                if produced > declaredSize { return .largerThanDeclared(declaredSize) }
                switch status {
                case Z_STREAM_END:
                    return produced == declaredSize ? nil : .smallerThanDeclared(declared: declaredSize, actual: produced)
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress was possible with room left for output: the input ran out.
                    return .truncated
                case Z_DATA_ERROR:
                    return .corrupt(stream.msg.map { String(cString: $0) } ?? "invalid data")
                default:
                    return .zlib(status)
                }
            }
        }
        if let outcome { throw outcome }
        output.removeLast()
        return output
    }

    /// The CRC-32 (IEEE 802.3, as zip and gzip use it) of `bytes`.
    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CZlib.crc32(0, nil, 0)
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return UInt32(crc) }
        var offset = 0
        while offset < bytes.count {
            let slice = min(bytes.count - offset, Int(UInt32.max))
            crc = CZlib.crc32(crc, base + offset, UInt32(slice))
            offset += slice
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { crc32($0) } }
}
