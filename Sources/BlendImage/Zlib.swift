import CZlib

/// zlib streams (RFC 1950) and CRC-32, for the parts of PNG and JPEG metadata that the
/// codecs' simplified APIs do not handle (a PNG's iCCP chunk).
enum Zlib {
    /// `bytes` compressed as one zlib stream at the default level.
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        var capacity = compressBound(uLong(bytes.count))
        var output = [UInt8](repeating: 0, count: Int(capacity))
        let status = output.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { input in
                compress2(out.baseAddress, &capacity, input.baseAddress, uLong(input.count), Z_DEFAULT_COMPRESSION)
            }
        }
        guard status == Z_OK else { throw ImageError.encodingFailed(format: .png, detail: "zlib compress2 failed (\(status))") }
        return Array(output[0..<Int(capacity)])
    }

    /// The decompressed bytes of one zlib stream, or nil when the data is damaged, truncated
    /// or inflates to more than `limit` bytes.
    static func decompress<Bytes: Collection<UInt8>>(_ data: Bytes, limit: Int) -> [UInt8]? {
        var input = Array(data)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 15)
        return input.withUnsafeMutableBufferPointer { input -> [UInt8]? in
            stream.next_in = input.baseAddress
            stream.avail_in = UInt32(input.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output += chunk[0..<(chunk.count - Int(stream.avail_out))]
                if output.count > limit { return nil }
                switch status {
                case Z_STREAM_END: return output
                case Z_OK: continue
                default: return nil   // damaged data, or input that ends too soon (Z_BUF_ERROR)
                }
            }
        }
    }

    /// CRC-32 (ISO 3309, the PNG chunk checksum) of `bytes`, continuing from `crc`.
    static func crc32<Bytes: Collection<UInt8>>(_ bytes: Bytes, continuing crc: UInt32 = 0) -> UInt32 {
        let array = Array(bytes)
        return array.withUnsafeBufferPointer { UInt32(CZlib.crc32(uLong(crc), $0.baseAddress, uInt($0.count))) }
    }
}

/// A CRC-32 of `bytes`: a quick fingerprint to tell whether an input changed (not a
/// cryptographic hash).
public func contentChecksum(_ bytes: [UInt8]) -> UInt32 { Zlib.crc32(bytes) }
