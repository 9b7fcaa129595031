/// A read-only view of a zip archive held in a `MappedFile`, enough for the
/// archives `torch.save` and `torch.jit.save` write: stored members (whose data is
/// used in place, never copied), deflated members (small code files), zip64.
///
/// Every offset and size read from the file is checked against the file's length
/// before use, so a truncated or hostile archive fails with an error.
struct ZipArchive {
    struct Member {
        let name: String
        let method: UInt16
        let crc32: UInt32
        let compressedSize: Int
        let uncompressedSize: Int
        /// Where the member's (possibly compressed) bytes start in the file.
        let dataOffset: Int

        var dataRange: Range<Int> { dataOffset..<(dataOffset + compressedSize) }
        var isStored: Bool { method == 0 }
    }

    let file: MappedFile
    let members: [Member]
    private let index: [String: Int]

    static func looksLikeZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes.littleEndian(UInt32.self, at: 0) == 0x0403_4B50
    }

    init(file: MappedFile) throws {
        self.file = file
        let bytes = file.bytes
        let path = file.path
        func corrupt(_ detail: String) -> CheckpointError { .corrupt(file: path, detail: "zip: \(detail)") }

        // The end-of-central-directory record sits in the last 22 + 65535 bytes.
        let minimumEnd = 22
        guard bytes.count >= minimumEnd else { throw CheckpointError.truncated(file: path, detail: "shorter than a zip directory") }
        var eocd = -1
        var probe = bytes.count - minimumEnd
        let lowest = max(0, bytes.count - minimumEnd - 65535)
        while probe >= lowest {
            if bytes.littleEndian(UInt32.self, at: probe) == 0x0605_4B50 {
                eocd = probe
                break
            }
            probe -= 1
        }
        guard eocd >= 0 else {
            throw CheckpointError.truncated(file: path, detail: "the zip's end-of-central-directory record is missing")
        }

        var entryCount = Int(bytes.littleEndian(UInt16.self, at: eocd + 10))
        var directorySize = Int(bytes.littleEndian(UInt32.self, at: eocd + 12))
        var directoryOffset = Int(bytes.littleEndian(UInt32.self, at: eocd + 16))
        let needsZip64 = entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF
        // PyTorch writes a zip64 end record whenever it has one, so prefer it when present.
        if eocd >= 20, bytes.littleEndian(UInt32.self, at: eocd - 20) == 0x0706_4B50 {
            let recordOffset = bytes.littleEndian(UInt64.self, at: eocd - 20 + 8)
            guard bytes.count >= 56, recordOffset <= UInt64(bytes.count - 56),
                  bytes.littleEndian(UInt32.self, at: Int(recordOffset)) == 0x0606_4B50
            else { throw corrupt("zip64 end record is missing or misplaced") }
            let record = Int(recordOffset)
            let count64 = bytes.littleEndian(UInt64.self, at: record + 32)
            let size64 = bytes.littleEndian(UInt64.self, at: record + 40)
            let offset64 = bytes.littleEndian(UInt64.self, at: record + 48)
            guard count64 <= UInt64(bytes.count), size64 <= UInt64(bytes.count), offset64 <= UInt64(bytes.count) else {
                throw corrupt("zip64 directory sizes exceed the file")
            }
            entryCount = Int(count64)
            directorySize = Int(size64)
            directoryOffset = Int(offset64)
        } else if needsZip64 {
            throw corrupt("zip64 locator is missing")
        }
        guard directoryOffset + directorySize <= bytes.count else {
            throw CheckpointError.truncated(file: path, detail: "the zip directory lies past the end of the file")
        }

        var members: [Member] = []
        var index: [String: Int] = [:]
        var cursor = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for _ in 0..<entryCount {
            guard cursor + 46 <= directoryEnd, bytes.littleEndian(UInt32.self, at: cursor) == 0x0201_4B50 else {
                throw corrupt("central directory entry \(members.count) is malformed")
            }
            let flags = bytes.littleEndian(UInt16.self, at: cursor + 8)
            let method = bytes.littleEndian(UInt16.self, at: cursor + 10)
            let crc = bytes.littleEndian(UInt32.self, at: cursor + 16)
            var compressed = UInt64(bytes.littleEndian(UInt32.self, at: cursor + 20))
            var uncompressed = UInt64(bytes.littleEndian(UInt32.self, at: cursor + 24))
            let nameLength = Int(bytes.littleEndian(UInt16.self, at: cursor + 28))
            let extraLength = Int(bytes.littleEndian(UInt16.self, at: cursor + 30))
            let commentLength = Int(bytes.littleEndian(UInt16.self, at: cursor + 32))
            var localOffset = UInt64(bytes.littleEndian(UInt32.self, at: cursor + 42))
            let nameStart = cursor + 46
            let extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= directoryEnd else { throw corrupt("central directory entry \(members.count) overruns the directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<extraStart]), as: UTF8.self)

            // Zip64 extra field: 64-bit values for exactly those fields saturated at 0xFFFFFFFF.
            var extra = extraStart
            while extra + 4 <= extraStart + extraLength {
                let tag = bytes.littleEndian(UInt16.self, at: extra)
                let size = Int(bytes.littleEndian(UInt16.self, at: extra + 2))
                guard extra + 4 + size <= extraStart + extraLength else { throw corrupt("extra field of \(name) overruns") }
                if tag == 0x0001 {
                    var field = extra + 4
                    func next64() throws -> UInt64 {
                        guard field + 8 <= extra + 4 + size else { throw corrupt("zip64 field of \(name) is short") }
                        defer { field += 8 }
                        return bytes.littleEndian(UInt64.self, at: field)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next64() }
                    if compressed == 0xFFFF_FFFF { compressed = try next64() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
                }
                extra += 4 + size
            }

            guard flags & 1 == 0 else { throw corrupt("member \(name) is encrypted") }
            guard localOffset <= UInt64(bytes.count), compressed <= UInt64(bytes.count),
                  uncompressed <= UInt64(Int.max / 2) else {
                throw CheckpointError.truncated(file: path, detail: "member \(name) lies past the end of the file")
            }
            let local = Int(localOffset)
            guard local + 30 <= bytes.count, bytes.littleEndian(UInt32.self, at: local) == 0x0403_4B50 else {
                throw corrupt("local header of \(name) is missing")
            }
            let dataOffset = local + 30 + Int(bytes.littleEndian(UInt16.self, at: local + 26))
                + Int(bytes.littleEndian(UInt16.self, at: local + 28))
            guard dataOffset + Int(compressed) <= bytes.count else {
                throw CheckpointError.truncated(file: path, detail: "member \(name) ends past the end of the file")
            }
            if method == 0, compressed != uncompressed { throw corrupt("stored member \(name) has inconsistent sizes") }
            index[name] = members.count
            members.append(Member(name: name, method: method, crc32: crc, compressedSize: Int(compressed),
                                  uncompressedSize: Int(uncompressed), dataOffset: dataOffset))
            cursor = next
        }
        self.members = members
        self.index = index
    }

    func member(named name: String) -> Member? { index[name].map { members[$0] } }

    /// DEFLATE cannot expand data more than about 1032 times (a 258-byte match costs at
    /// least two bits), so a larger declared size is a lie and is refused before allocating.
    static let maximumDeflateRatio = 1032

    /// The bytes of a small member, decompressed if needed and checked against its CRC-32.
    /// Memory is bounded before anything is allocated: by `limit`, and for a compressed
    /// member by what its compressed bytes could possibly expand to.
    func contents(of member: Member, limit: Int = 256 << 20) throws -> [UInt8] {
        guard member.uncompressedSize <= limit else {
            throw CheckpointError.corrupt(file: file.path, detail: "zip member \(member.name) declares \(member.uncompressedSize) bytes, more than \(limit)")
        }
        let raw = file.bytes(in: member.dataRange)
        let data: [UInt8]
        switch member.method {
        case 0: data = Array(raw)
        case 8:
            guard member.uncompressedSize <= (member.compressedSize + 1) * ZipArchive.maximumDeflateRatio else {
                throw CheckpointError.corrupt(file: file.path, detail: "zip member \(member.name) declares \(member.uncompressedSize) bytes, "
                    + "more than its \(member.compressedSize) compressed bytes can hold")
            }
            do { data = try ZlibCodec.inflateRaw(raw, declaredSize: member.uncompressedSize) } catch {
                throw CheckpointError.corrupt(file: file.path, detail: "zip member \(member.name) does not inflate: \(error)")
            }
        default:
            throw CheckpointError.corrupt(file: file.path, detail: "zip member \(member.name) uses compression method \(member.method)")
        }
        guard data.count == member.uncompressedSize, ZlibCodec.crc32(data) == member.crc32 else {
            throw CheckpointError.corrupt(file: file.path, detail: "zip member \(member.name) fails its CRC-32 check")
        }
        return data
    }
}
