/// Where one tensor's elements sit in a mapped file: a strided window (PyTorch's
/// size, stride and storage offset, all in elements) on a run of bytes.
///
/// Layouts are validated when a file is opened, so materialising one later can
/// neither read outside the file nor overflow.
struct TensorLayout {
    let dtype: CheckpointDType
    let shape: [Int]
    let strides: [Int]
    let storageOffset: Int
    /// The storage's bytes in the file.
    let storageBytes: Range<Int>
    let elementCount: Int

    /// Checks `shape`, `strides` and `storageOffset` against a storage of
    /// `storageElements` elements whose bytes are `storageBytes`.
    init(dtype: CheckpointDType, shape: [Int], strides: [Int], storageOffset: Int,
         storageElements: Int, storageBytes: Range<Int>, file: String, name: String) throws {
        func invalid(_ detail: String) -> CheckpointError { .invalidTensor(file: file, tensor: name, detail: detail) }
        guard shape.count == strides.count else { throw invalid("size \(shape) and stride \(strides) differ in rank") }
        guard shape.count <= 32 else { throw invalid("rank \(shape.count) is absurd") }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), storageOffset >= 0 else {
            throw invalid("negative size, stride or offset (size \(shape), stride \(strides), offset \(storageOffset))")
        }
        // Element count and the furthest element touched, both overflow-checked.
        var count = 1
        var furthest = storageOffset
        for (size, stride) in zip(shape, strides) {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw invalid("size \(shape) overflows") }
            count = product
            if size > 0 {
                let (reach, overflow1) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, overflow2) = furthest.addingReportingOverflow(reach)
                guard !overflow1, !overflow2 else { throw invalid("stride \(stride) over \(size) elements overflows") }
                furthest = sum
            }
        }
        let (storageByteCount, overflow) = storageElements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, storageElements >= 0, storageByteCount <= storageBytes.count else {
            throw invalid("its storage declares \(storageElements) \(dtype) elements but the file holds only \(storageBytes.count) bytes for it")
        }
        if count > 0, furthest >= storageElements {
            throw invalid("size \(shape), stride \(strides) and offset \(storageOffset) reach element \(furthest), "
                + "but its storage holds only \(storageElements)")
        }
        // Zero or overlapping strides (expanded views) can declare far more elements than
        // their storage holds; refuse sizes no real checkpoint has before allocating them.
        guard count <= storageElements * 8 + (1 << 24), count <= 1 << 34 else {
            throw invalid("size \(shape) declares \(count) elements over a storage of \(storageElements), which is absurd")
        }
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.storageBytes = storageBytes.lowerBound..<(storageBytes.lowerBound + storageByteCount)
        self.elementCount = count
    }

    /// A dense row-major layout (safetensors).
    init(dtype: CheckpointDType, contiguousShape shape: [Int], bytes: Range<Int>, file: String, name: String) throws {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running = running.multipliedReportingOverflow(by: max(shape[axis], 1)).partialValue
        }
        let elements = bytes.count / dtype.byteSize
        try self.init(dtype: dtype, shape: shape, strides: strides, storageOffset: 0,
                      storageElements: elements, storageBytes: bytes, file: file, name: name)
    }

    var isContiguous: Bool {
        var expected = 1
        for axis in shape.indices.reversed() where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    /// Calls `body(firstElement, count, stride, outputIndex)` for each run of
    /// elements along the last axis, in row-major order of the result.
    func forEachRun(_ body: (Int, Int, Int, Int) -> Void) {
        guard elementCount > 0 else { return }
        if shape.isEmpty || isContiguous {
            body(storageOffset, elementCount, 1, 0)
            return
        }
        let rank = shape.count
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: rank - 1)
        var base = storageOffset
        var output = 0
        while output < elementCount {
            body(base, inner, innerStride, output)
            output += inner
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                base += strides[axis]
                if index[axis] < shape[axis] { break }
                base -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Fills `output` (elementCount floats) from the storage bytes `storage`.
    /// Dense runs are converted in slices, and `copied` is told each slice's byte
    /// range (relative to the storage) once it is done, so the caller can drop those
    /// file pages while the rest is still being read.
    func decodeFloats(from storage: UnsafeRawBufferPointer, into output: UnsafeMutablePointer<Float>,
                      copied: (Range<Int>) -> Void = { _ in }) {
        let size = dtype.byteSize
        let slice = 4 << 20  // elements: 16 MB of float32 per slice
        forEachRun { first, count, stride, out in
            guard stride == 1 else {
                for i in 0..<count { output[out + i] = decodeFloat(storage, (first + i * stride) * size) }
                return
            }
            var done = 0
            while done < count {
                let n = min(slice, count - done)
                let destination = output + out + done
                let start = first + done
                if dtype == .float32 {
                    // Dense float32: a plain copy, no alignment assumed of the source.
                    UnsafeMutableRawPointer(destination).copyMemory(from: storage.baseAddress! + start * 4, byteCount: n * 4)
                } else {
                    for i in 0..<n { destination[i] = decodeFloat(storage, (start + i) * size) }
                }
                copied((start * size)..<((start + n) * size))
                done += n
            }
        }
    }

    @inline(__always)
    private func decodeFloat(_ storage: UnsafeRawBufferPointer, _ at: Int) -> Float {
        switch dtype {
        case .float32: return Float(bitPattern: storage.littleEndian(UInt32.self, at: at))
        case .float16: return floatFromHalfBits(storage.littleEndian(UInt16.self, at: at))
        case .bfloat16: return floatFromBFloat16Bits(storage.littleEndian(UInt16.self, at: at))
        case .float64: return Float(Double(bitPattern: storage.littleEndian(UInt64.self, at: at)))
        case .int64: return Float(Int64(bitPattern: storage.littleEndian(UInt64.self, at: at)))
        case .int32: return Float(Int32(bitPattern: storage.littleEndian(UInt32.self, at: at)))
        case .int16: return Float(Int16(bitPattern: storage.littleEndian(UInt16.self, at: at)))
        case .int8: return Float(Int8(bitPattern: storage[at]))
        case .uint8: return Float(storage[at])
        case .bool: return storage[at] != 0 ? 1 : 0
        }
    }

    /// The elements of an integer or bool tensor, in row-major order.
    func decodeIntegers(from storage: UnsafeRawBufferPointer) -> [Int64] {
        var result = [Int64](repeating: 0, count: elementCount)
        let size = dtype.byteSize
        forEachRun { first, count, stride, out in
            for i in 0..<count {
                let at = (first + i * stride) * size
                let value: Int64
                switch dtype {
                case .int64: value = Int64(bitPattern: storage.littleEndian(UInt64.self, at: at))
                case .int32: value = Int64(Int32(bitPattern: storage.littleEndian(UInt32.self, at: at)))
                case .int16: value = Int64(Int16(bitPattern: storage.littleEndian(UInt16.self, at: at)))
                case .int8: value = Int64(Int8(bitPattern: storage[at]))
                case .uint8: value = Int64(storage[at])
                case .bool: value = storage[at] != 0 ? 1 : 0
                case .float32, .float16, .bfloat16, .float64: value = 0  // callers check the dtype first
                }
                result[out + i] = value
            }
        }
        return result
    }
}
