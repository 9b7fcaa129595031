import CZlib

/// Why gzip data could not be decompressed, in words for an error message.
struct GzipError: Error, Equatable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Decompression of gzip data (RFC 1952) with zlib.
enum Gzip {
    private static let magic: [UInt8] = [0x1F, 0x8B]

    /// The decompressed bytes of `data`. Members concatenated one after another are read in turn
    /// and trailing zero padding is ignored, as `gzip -d` and Python's `gzip` module do.
    static func decompress(_ data: [UInt8]) throws(GzipError) -> [UInt8] {
        guard data.starts(with: magic) else {
            throw GzipError("it is not gzip data (a gzip file starts with the bytes 1f 8b)")
        }
        var stream = z_stream()
        // 16 + MAX_WBITS: expect the gzip wrapper, and allow the largest (32 KiB) window.
        guard inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw GzipError("zlib could not start decompressing (out of memory?)")
        }
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        output.reserveCapacity(data.count * 4)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = data
        try input.withUnsafeMutableBufferPointer { (input) throws(GzipError) in
            let base = input.baseAddress!
            var consumed = 0   // bytes of `input` handed to zlib so far
            while true {
                // zlib counts input in 32-bit units: hand it over in slices.
                if stream.avail_in == 0 && consumed < input.count {
                    let slice = min(input.count - consumed, Int(UInt32.max))
                    stream.next_in = base + consumed
                    stream.avail_in = UInt32(slice)
                    consumed += slice
                }
                let status = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                output.append(contentsOf: chunk[0..<produced])

                switch status {
                case Z_STREAM_END:
                    let rest = UnsafeBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
                    let remaining = Array(rest) + Array(input[consumed...])
                    if remaining.allSatisfy({ $0 == 0 }) { return }
                    guard remaining.starts(with: magic) else {
                        throw GzipError("it has \(remaining.count) byte(s) of data after the end of the compressed stream")
                    }
                    guard inflateReset(&stream) == Z_OK else { throw GzipError("zlib could not read the next gzip member") }
                case Z_OK:
                    break
                case Z_BUF_ERROR:
                    // No progress was possible: zlib needs input that is not there.
                    if stream.avail_in == 0 && consumed == input.count {
                        throw GzipError("it ends before the end of the compressed stream (the file is truncated)")
                    }
                case Z_DATA_ERROR:
                    let detail = stream.msg.map { String(cString: $0) } ?? "invalid compressed data"
                    throw GzipError("its compressed data is corrupt (zlib: \(detail))")
                case Z_MEM_ERROR:
                    throw GzipError("zlib ran out of memory")
                default:
                    throw GzipError("zlib failed with status \(status)")
                }
                if stream.avail_in == 0 && consumed == input.count && produced == 0 && status == Z_OK {
                    throw GzipError("it ends before the end of the compressed stream (the file is truncated)")
                }
            }
        }
        return output
    }
}
