import BlendTensor
import Foundation

/// One tensor to write to a safetensors file, already encoded.
public struct SafetensorsTensor: Sendable {
    public let name: String
    public let dtype: CheckpointDType
    public let shape: [Int]
    let data: [UInt8]

    /// `tensor`'s values stored as `dtype` (float32, float16 or bfloat16; halves round to nearest even).
    public init(name: String, tensor: Tensor, as dtype: CheckpointDType = .float32) throws {
        self.name = name
        self.dtype = dtype
        self.shape = tensor.shape
        var data = [UInt8]()
        data.reserveCapacity(tensor.count * dtype.byteSize)
        try tensor.withUnsafeBufferPointer { values in
            switch dtype {
            case .float32: for v in values { SafetensorsTensor.append(v.bitPattern, to: &data) }
            case .float16: for v in values { SafetensorsTensor.append(halfBitsFromFloat(v), to: &data) }
            case .bfloat16: for v in values { SafetensorsTensor.append(bfloat16BitsFromFloat(v), to: &data) }
            default: throw CheckpointError.writeFailed(file: name, reason: "tensors are written as F32, F16 or BF16, not \(dtype)")
            }
        }
        self.data = data
    }

    /// Integers stored as I64.
    public init(name: String, integers: [Int64], shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == integers.count else {
            throw CheckpointError.writeFailed(file: name, reason: "shape \(shape) does not hold \(integers.count) integers")
        }
        self.name = name
        self.dtype = .int64
        self.shape = shape
        var data = [UInt8]()
        data.reserveCapacity(integers.count * 8)
        for v in integers { SafetensorsTensor.append(UInt64(bitPattern: v), to: &data) }
        self.data = data
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to data: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }
}

/// Writes safetensors files that the reference `safetensors` library reads.
public enum SafetensorsWriter {
    /// Writes `tensors` in the given order, then renames the file into place so a
    /// crash never leaves a half-written file at `url`.
    public static func write(_ tensors: [SafetensorsTensor], metadata: [String: String] = [:], to url: URL) throws {
        var names = Set<String>()
        for tensor in tensors {
            guard tensor.name != "__metadata__", names.insert(tensor.name).inserted else {
                throw CheckpointError.writeFailed(file: url.path, reason: "tensor name \(tensor.name) is repeated or reserved")
            }
        }
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in tensors {
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(tensor.name)):{\"dtype\":\"\(tensor.dtype.safetensorsName)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(offset),\(offset + tensor.data.count)]}")
            offset += tensor.data.count
        }
        header += fields.joined(separator: ",") + "}"
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CheckpointError.writeFailed(file: url.path, reason: "cannot create \(temporary.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            var length = UInt64(headerBytes.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: headerBytes)
            for tensor in tensors { try handle.write(contentsOf: tensor.data) }
            try handle.synchronize()
            try? FileManager.default.removeItem(at: url)
            try FileManager.default.moveItem(at: temporary, to: url)
        } catch let error as CheckpointError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw CheckpointError.writeFailed(file: url.path, reason: error.localizedDescription)
        }
    }

    private static func jsonString(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }
}
