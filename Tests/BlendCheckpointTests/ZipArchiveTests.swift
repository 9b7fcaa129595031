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

    @Test func corruptDeflateStreamsThrow() throws {
        var generator = SplitMix64(seed: 5)
        for _ in 0..<300 {
            let noise = (0..<Int.random(in: 1..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = noise.withUnsafeBytes { try? Inflater.inflate($0, limit: 4096) }
        }
        // A stored block claiming more bytes than follow.
        let stored: [UInt8] = [0x01, 0x10, 0x00, 0xEF, 0xFF, 0x41]
        #expect(throws: Inflater.Failure.self) { try stored.withUnsafeBytes { try Inflater.inflate($0, limit: 100) } }
        // A valid stored block, then the output limit.
        let hello: [UInt8] = [0x01, 0x05, 0x00, 0xFA, 0xFF] + Array("hello".utf8)
        #expect(try hello.withUnsafeBytes { try Inflater.inflate($0, limit: 5) } == Array("hello".utf8))
        #expect(throws: Inflater.Failure.self) { try hello.withUnsafeBytes { try Inflater.inflate($0, limit: 4) } }
    }

    @Test func crc32KnownValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}
