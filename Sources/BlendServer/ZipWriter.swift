import CZlib
import Foundation

/// Writes a ZIP archive (PKWARE APPNOTE 6.3, sections 4.3 and 4.4) of files stored without
/// compression: the results are PNGs, compressed already. CRC-32 from zlib. No ZIP64, so each
/// file and the whole archive must stay under 4 GiB, and there may be at most 65,535 entries.
struct ZipWriter {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private struct Entry {
        var name: [UInt8]
        var crc: UInt32
        var size: UInt32
        var offset: UInt32
        var time: UInt16
        var date: UInt16
    }

    private var entries: [Entry] = []
    private let handle: FileHandle
    private var written: UInt64 = 0

    /// Creates (or truncates) the archive at `url`.
    init(url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw Failure(description: "cannot create \(url.path)")
        }
        handle = try FileHandle(forWritingTo: url)
    }

    /// Adds the file at `source` under `name` (a relative path with `/` separators).
    mutating func add(name: String, contentsOf source: URL) throws {
        let data = try Data(contentsOf: source)
        let modified = (try? FileManager.default.attributesOfItem(atPath: source.path)[.modificationDate] as? Date) ?? Date()
        try add(name: name, bytes: data, modified: modified)
    }

    mutating func add(name: String, bytes data: Data, modified: Date = Date()) throws {
        guard data.count < Int(UInt32.max), written + UInt64(data.count) < UInt64(UInt32.max), entries.count < 65_535 else {
            throw Failure(description: "the archive would be over 4 GiB or 65,535 files")
        }
        let crc = data.withUnsafeBytes { raw -> UInt32 in
            UInt32(crc32(0, raw.bindMemory(to: Bytef.self).baseAddress, uInt(raw.count)))
        }
        let (time, date) = Self.dosTime(modified)
        let entry = Entry(name: Array(name.utf8), crc: crc, size: UInt32(data.count), offset: UInt32(written), time: time, date: date)
        var header: [UInt8] = []
        header.le32(0x0403_4B50)                 // local file header signature
        header.le16(20)                          // version needed: 2.0
        header.le16(0x0800)                      // flags: names are UTF-8
        header.le16(0)                           // method: stored
        header.le16(time); header.le16(date)
        header.le32(crc); header.le32(entry.size); header.le32(entry.size)
        header.le16(UInt16(entry.name.count)); header.le16(0)
        header += entry.name
        try write(Data(header))
        try write(data)
        entries.append(entry)
    }

    /// Writes the central directory and closes the file.
    mutating func finish() throws {
        let start = written
        for entry in entries {
            var record: [UInt8] = []
            record.le32(0x0201_4B50)             // central directory header signature
            record.le16(0x0314)                  // made by: Unix, 2.0
            record.le16(20); record.le16(0x0800); record.le16(0)
            record.le16(entry.time); record.le16(entry.date)
            record.le32(entry.crc); record.le32(entry.size); record.le32(entry.size)
            record.le16(UInt16(entry.name.count)); record.le16(0); record.le16(0)
            record.le16(0); record.le16(0)       // disk, internal attributes
            record.le32(0o100644 << 16)          // external attributes: a regular file, rw-r--r--
            record.le32(entry.offset)
            record += entry.name
            try write(Data(record))
        }
        var end: [UInt8] = []
        end.le32(0x0605_4B50)                    // end of central directory
        end.le16(0); end.le16(0)
        end.le16(UInt16(entries.count)); end.le16(UInt16(entries.count))
        end.le32(UInt32(written - start)); end.le32(UInt32(start))
        end.le16(0)
        try write(Data(end))
        try handle.synchronize()
        try handle.close()
    }

    private mutating func write(_ data: Data) throws {
        try handle.write(contentsOf: data)
        written += UInt64(data.count)
    }

    /// MS-DOS time and date (local time, 2-second resolution, 1980 to 2107).
    static func dosTime(_ date: Date) -> (time: UInt16, date: UInt16) {
        let c = Calendar(identifier: .gregorian).dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let year = min(max((c.year ?? 1980) - 1980, 0), 127)
        let time = UInt16((c.hour ?? 0) << 11 | (c.minute ?? 0) << 5 | (c.second ?? 0) / 2)
        let day = UInt16(year << 9 | (c.month ?? 1) << 5 | (c.day ?? 1))
        return (time, day)
    }
}

extension [UInt8] {
    fileprivate mutating func le16(_ value: UInt16) { append(UInt8(value & 0xFF)); append(UInt8(value >> 8)) }
    fileprivate mutating func le32(_ value: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { append(UInt8((value >> UInt32(shift)) & 0xFF)) } }
}
