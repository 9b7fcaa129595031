import Foundation
import Testing
import BlendTensor
@testable import BlendCheckpoint

@Suite struct ZipArchiveTests {
    @Test func deflatedTorchScriptMembersInflateAndPassTheirCRC() throws {
        let archive = try ZipArchive(file: MappedFile(path: Fixtures.path("scripted.pt")))
        let deflated = archive.members.filter { $0.method == 8 }
        #expect(deflated.count >= 5)
        for member in deflated {
            let data = try archive.contents(of: member)
            #expect(data.count == member.uncompressedSize)
        }
        let code = try #require(archive.member(named: "scripted/code/__torch__/torch/nn/modules/linear.py"))
        #expect(String(decoding: try archive.contents(of: code), as: UTF8.self).contains("__parameters__ = [\"weight\", \"bias\", ]"))
    }

    @Test func storedStoragesAre64ByteAlignedAndUsedInPlace() throws {
        let archive = try ZipArchive(file: MappedFile(path: Fixtures.path("state_dict_zip.pt")))
        let storages = archive.members.filter { $0.name.contains("/data/") }
        #expect(!storages.isEmpty && storages.allSatisfy { $0.isStored && $0.dataOffset % 64 == 0 })
    }

    /// "blend reads zip members; " twelve times, raw-deflated by zlib (level 9).
    static let text = Array(String(repeating: "blend reads zip members; ", count: 12).utf8)
    static let deflated: [UInt8] = [
        0x4B, 0xCA, 0x49, 0xCD, 0x4B, 0x51, 0x28, 0x4A, 0x4D, 0x4C, 0x29, 0x56, 0xA8, 0xCA, 0x2C, 0x50,
        0xC8, 0x4D, 0xCD, 0x4D, 0x4A, 0x2D, 0x2A, 0xB6, 0x56, 0x48, 0x1A, 0x95, 0x40, 0x97, 0x00, 0x00,
    ]
    static let textCRC: UInt32 = 928_072_070

    @Test func zlibInflatesRawDeflateAndComputesCRC32() throws {
        #expect(ZlibCodec.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(ZlibCodec.crc32([UInt8]()) == 0)
        #expect(ZlibCodec.crc32(Self.text) == Self.textCRC)
        #expect(try Self.deflated.withUnsafeBytes { try ZlibCodec.inflateRaw($0, declaredSize: 300) } == Self.text)
        // A stored block, and an empty stream (a final stored block of length 0).
        let hello: [UInt8] = [0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hello".utf8)
        #expect(try hello.withUnsafeBytes { try ZlibCodec.inflateRaw($0, declaredSize: 5) } == Array("hello".utf8))
        #expect(try [UInt8]([0x03, 0x00]).withUnsafeBytes { try ZlibCodec.inflateRaw($0, declaredSize: 0) } == [])
    }

    @Test func badDeflateStreamsAreNamed() throws {
        func failure(_ bytes: [UInt8], _ size: Int) -> ZlibCodec.Failure? {
            do { _ = try bytes.withUnsafeBytes { try ZlibCodec.inflateRaw($0, declaredSize: size) } } catch { return error as? ZlibCodec.Failure }
            return nil
        }
        // Cut anywhere before its end, the stream is truncated, never read past.
        for cut in 0..<(Self.deflated.count - 1) {
            #expect(failure(Array(Self.deflated[..<cut]), 300) == .truncated, "cut at \(cut)")
        }
        #expect(failure(Self.deflated, 299) == .largerThanDeclared(299))
        #expect(failure(Self.deflated, 0) == .largerThanDeclared(0))
        #expect(failure(Self.deflated, 301) == .smallerThanDeclared(declared: 301, actual: 300))
        // A stored block claiming more bytes than follow; a bad length check; block type 3.
        #expect(failure([0x01, 0x10, 0x00, 0xEF, 0xFF, 0x41], 100) == .truncated)
        guard case .corrupt? = failure([0x01, 0x05, 0x00, 0xFA, 0xFE] + Array("hello".utf8), 5) else { Issue.record("length check"); return }
        guard case .corrupt? = failure([0x07, 0x00], 5) else { Issue.record("block type 3"); return }
        // Noise must fail or succeed cleanly, within the declared size.
        var generator = SplitMix64(seed: 5)
        for _ in 0..<300 {
            let noise = (0..<Int.random(in: 1..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if let out = try? noise.withUnsafeBytes({ try ZlibCodec.inflateRaw($0, declaredSize: 4096) }) { #expect(out.count == 4096) }
        }
    }

    /// A zip holding one member, as written by hand: local header, data, central directory, end record.
    static func zip(name: String = "a/code/x.py", method: UInt16, crc: UInt32, data: [UInt8], declaredSize: Int) -> [UInt8] {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let nameBytes = Array(name.utf8)
        let sizes = le32(crc) + le32(UInt32(data.count)) + le32(UInt32(declaredSize))
        var out = le32(0x0403_4B50) + le16(20) + le16(0) + le16(Int(method)) + le16(0) + le16(0) + sizes
            + le16(nameBytes.count) + le16(0) + nameBytes + data
        let directory = out.count
        out += le32(0x0201_4B50) + le16(20) + le16(20) + le16(0) + le16(Int(method)) + le16(0) + le16(0) + sizes
            + le16(nameBytes.count) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(0) + nameBytes
        let directorySize = out.count - directory
        out += le32(0x0605_4B50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(UInt32(directorySize)) + le32(UInt32(directory)) + le16(0)
        return out
    }

    private func contents(of bytes: [UInt8]) throws -> [UInt8] {
        let scratch = try Fixtures.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("m.zip")
        try Data(bytes).write(to: file)
        let archive = try ZipArchive(file: MappedFile(path: file.path))
        return try archive.contents(of: try #require(archive.members.first))
    }

    private func refusal(_ bytes: [UInt8]) throws -> String {
        do { _ = try contents(of: bytes) } catch let error as CheckpointError { return error.description }
        Issue.record("accepted")
        return ""
    }

    @Test func deflatedZipMembersAreCheckedEndToEnd() throws {
        #expect(try contents(of: Self.zip(method: 8, crc: Self.textCRC, data: Self.deflated, declaredSize: 300)) == Self.text)
        #expect(try contents(of: Self.zip(method: 0, crc: Self.textCRC, data: Self.text, declaredSize: 300)) == Self.text)
        // Wrong CRC, deflated or stored.
        #expect(try refusal(Self.zip(method: 8, crc: Self.textCRC ^ 1, data: Self.deflated, declaredSize: 300)).contains("CRC-32"))
        #expect(try refusal(Self.zip(method: 0, crc: 0, data: Self.text, declaredSize: 300)).contains("CRC-32"))
        // A deflate stream cut short, with the sizes written to match the cut.
        #expect(try refusal(Self.zip(method: 8, crc: Self.textCRC, data: Array(Self.deflated[..<20]), declaredSize: 300)).contains("ends early"))
        // Declared sizes that the data does not have.
        #expect(try refusal(Self.zip(method: 8, crc: Self.textCRC, data: Self.deflated, declaredSize: 200)).contains("more than the declared 200"))
        #expect(try refusal(Self.zip(method: 8, crc: Self.textCRC, data: Self.deflated, declaredSize: 400)).contains("not the declared 400"))
        // An unknown method (12 = bzip2).
        #expect(try refusal(Self.zip(method: 12, crc: Self.textCRC, data: Self.deflated, declaredSize: 300)).contains("compression method 12"))
    }

    @Test func impossibleDeclaredSizesAreRefusedBeforeAllocating() throws {
        // 32 compressed bytes cannot hold 200 MB, and 300 MB is past the member limit:
        // both are refused from the directory alone.
        let bomb = try refusal(Self.zip(method: 8, crc: 0, data: Self.deflated, declaredSize: 200_000_000))
        #expect(bomb.contains("more than its 32 compressed bytes can hold"))
        #expect(try refusal(Self.zip(method: 8, crc: 0, data: Self.deflated, declaredSize: 300 << 20)).contains("more than 268435456"))
    }
}
