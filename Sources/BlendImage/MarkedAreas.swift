/// The connected areas of a mask's marked pixels (8-connected: diagonal neighbours touch),
/// numbered in the order their first pixel appears in raster order.
///
/// Used to tell the user about areas one by one: which are too narrow for the feather
/// (``FeatherFit``), which the model's image would miss (the edit pipeline's geometry).
public struct MarkedAreas: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// The number of areas.
    public let count: Int
    /// Row-major, one per pixel: the area's number (`0..<count`), or -1 for a kept pixel.
    public let labels: [Int32]

    public init(_ mask: EditMask) {
        width = mask.width
        height = mask.height
        let n = mask.isEdited.count
        // Union-find over marked pixels, joined to the four neighbours already visited
        // (left, and the three above); roots are the smallest index of their set.
        var parent = [Int32](repeating: -1, count: n)
        func root(_ i: Int) -> Int {
            var i = i
            while Int(parent[i]) != i {
                parent[i] = parent[Int(parent[i])]
                i = Int(parent[i])
            }
            return i
        }
        for y in 0..<height {
            for x in 0..<width where mask.isEdited[y * width + x] {
                let i = y * width + x
                parent[i] = Int32(i)
                for (dx, dy) in [(-1, 0), (-1, -1), (0, -1), (1, -1)] {
                    let nx = x + dx, ny = y + dy
                    guard nx >= 0, nx < width, ny >= 0, mask.isEdited[ny * width + nx] else { continue }
                    let a = root(i), b = root(ny * width + nx)
                    if a != b { parent[max(a, b)] = Int32(min(a, b)) }
                }
            }
        }
        // A root is its set's first pixel in raster order, so numbering roots as they are
        // met numbers areas in that order.
        var labels = [Int32](repeating: -1, count: n)
        var next: Int32 = 0
        for i in 0..<n where parent[i] >= 0 {
            let r = root(i)
            if r == i {
                labels[i] = next
                next += 1
            } else {
                labels[i] = labels[r]
            }
        }
        self.labels = labels
        count = Int(next)
    }

    /// Per pixel, the length of the run of marked pixels through it along its row and along
    /// its column (0 for kept pixels): how wide the mark is there, each way. A run of marked
    /// pixels is connected, so it belongs to one area.
    public func runLengths() -> (alongRows: [Int32], alongColumns: [Int32]) {
        func runs(lines: Int, length: Int, index: (_ line: Int, _ position: Int) -> Int) -> [Int32] {
            var run = [Int32](repeating: 0, count: labels.count)
            for line in 0..<lines {
                var start = 0
                while start < length {
                    guard labels[index(line, start)] >= 0 else { start += 1; continue }
                    var end = start
                    while end < length && labels[index(line, end)] >= 0 { end += 1 }
                    for i in start..<end { run[index(line, i)] = Int32(end - start) }
                    start = end
                }
            }
            return run
        }
        let width = width
        return (runs(lines: height, length: width) { y, x in y * width + x },
                runs(lines: width, length: height) { x, y in y * width + x })
    }
}
