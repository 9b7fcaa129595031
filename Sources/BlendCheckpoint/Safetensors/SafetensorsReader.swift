import Foundation

/// Reads safetensors files: an 8-byte little-endian header length, a JSON header
/// `{"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
/// then the raw little-endian data, used in place in the mapped file.
///
/// The header is checked in full before any tensor is exposed: known dtypes,
/// byte counts matching shapes, offsets inside the data and no two tensors
/// overlapping.
enum SafetensorsReader {
    /// The reference implementation's limit; real headers are a few hundred kilobytes.
    static let maximumHeaderSize = 100 << 20

    static func looksLikeSafetensors(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 10 else { return false }
        let length = bytes.littleEndian(UInt64.self, at: 0)
        return length >= 2 && bytes[8] == UInt8(ascii: "{")
    }

    private struct HeaderEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let data_offsets: [Int]
    }

    /// A JSON object key, any string.
    private struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    private struct Header: Decodable {
        var entries: [(String, HeaderEntry)] = []
        var metadata: [String: String] = [:]

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try container.decode([String: String].self, forKey: key)
                } else {
                    entries.append((key.stringValue, try container.decode(HeaderEntry.self, forKey: key)))
                }
            }
        }
    }

    static func read(_ file: MappedFile) throws -> Checkpoint {
        let path = file.path
        let bytes = file.bytes
        func invalid(_ detail: String) -> CheckpointError { .corrupt(file: path, detail: "safetensors header: \(detail)") }

        guard bytes.count >= 8 else { throw CheckpointError.truncated(file: path, detail: "shorter than a safetensors header") }
        let declared = bytes.littleEndian(UInt64.self, at: 0)
        guard declared <= UInt64(maximumHeaderSize) else { throw invalid("declares \(declared) header bytes, more than \(maximumHeaderSize)") }
        let headerSize = Int(declared)
        guard headerSize <= bytes.count - 8 else {
            throw CheckpointError.truncated(file: path, detail: "the header declares \(headerSize) bytes but the file has \(bytes.count - 8)")
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes[8..<(8 + headerSize)]))
        } catch {
            throw invalid("not the expected JSON (\(describe(error)))")
        }

        let dataStart = 8 + headerSize
        let dataSize = bytes.count - dataStart
        var tensors: [(name: String, layout: TensorLayout, begin: Int, end: Int)] = []
        for (name, entry) in header.entries {
            guard let dtype = CheckpointDType(safetensorsName: entry.dtype) else {
                throw CheckpointError.unsupportedDType(file: path, name: "\(entry.dtype) (tensor \(name))")
            }
            guard entry.data_offsets.count == 2 else { throw invalid("\(name) needs data_offsets [begin, end]") }
            let begin = entry.data_offsets[0], end = entry.data_offsets[1]
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw invalid("\(name) has data_offsets [\(begin), \(end)] outside the \(dataSize) data bytes")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else { throw invalid("\(name) has a negative dimension in \(entry.shape)") }
            var expected = dtype.byteSize
            for dimension in entry.shape {
                let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw invalid("\(name) has an absurd shape \(entry.shape)") }
                expected = product
            }
            guard expected == end - begin else {
                throw invalid("\(name) is \(dtype) \(entry.shape), \(expected) bytes, but its offsets span \(end - begin)")
            }
            let layout = try TensorLayout(dtype: dtype, contiguousShape: entry.shape,
                                          bytes: (dataStart + begin)..<(dataStart + end), file: path, name: name)
            tensors.append((name, layout, begin, end))
        }
        // File order is data order; overlaps would let one write alias another.
        tensors.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for (previous, next) in zip(tensors, tensors.dropFirst()) where next.begin < previous.end {
            throw invalid("\(previous.name) [\(previous.begin), \(previous.end)) and \(next.name) [\(next.begin), \(next.end)) overlap")
        }
        return try Checkpoint(file: file, format: .safetensors, tensors: tensors.map { ($0.name, $0.layout) },
                              metadata: header.metadata)
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.dataCorrupted(context): return context.debugDescription
        case let DecodingError.keyNotFound(key, context):
            return "missing \(key.stringValue) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case let DecodingError.typeMismatch(_, context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default: return "\(error)"
        }
    }
}
