import BlendEditor
import BlendImage
import BlendTensor
import Foundation

/// The mask and region of an edit, resolved at the photo's and the model's resolutions.
///
/// Invariant: every marked pixel of `mask` lies in the footprint of a cell of the model's
/// grid (model pixels, or for the latent method the cells of the latent grid as
/// ``LatentMasks/downsample(_:height:width:)`` samples `modelMask`) that is marked, or next to
/// a marked cell that its own area fills at least half of (the edge of a broad mark) — so no
/// part of what the user painted, however thin, is silently left unedited, while the edges of
/// a mark two cells across or more stay as the references resize them.
struct EditGeometry {
    /// Edited pixels at the photo's size (only inside `region`).
    var mask: EditMask
    var region: PixelBox
    /// The mask of the region at the model's size.
    var modelMask: EditMask
    var modelSize: Int
    /// The region was shrunk below the model's size around a mark too small to edit at it.
    var zoomed = false
    /// Marked areas that the nearest-neighbour resize would miss in whole or in part (thinner
    /// than one model pixel, or one latent cell, once scaled), whose missed pixels mark in
    /// `modelMask` every pixel or cell they touch instead.
    var coveredAreas = 0
    /// Of the covered areas, those the resize keeps in part (the rest are covered whole).
    var partlyCoveredAreas = 0
    /// Marked pixels of the photo's mask outside `region` (a `--region` box), which are kept.
    var markedOutsideRegion = 0
    /// The marked areas of `mask`.
    var areas = 0
    /// The side in model pixels of the unit a covered area is marked by: 1 for the pixel
    /// methods, the VAE's downsampling factor for the latent method.
    var cellSide = 1
}

extension EditPipeline {
    /// The edit region for `mask` and its mask at the model's size.
    ///
    /// The region is `options.region` resolved at least the model's size (so a large photo's
    /// small object is not upscaled), and the mask is resized to the model's size by nearest
    /// neighbour as the references do. Where that loses marked areas — no pixel of the
    /// model's image, or for the latent method (`latentScale`: model pixels per latent cell)
    /// no cell of the latent grid, samples them:
    /// - a mark lost whole under an `auto` region: the region shrinks to the mark's box and
    ///   margin (halved until it works), which the model's size scales up (``EditGeometry/zoomed``);
    /// - otherwise (a long stroke thinner than a cell, a speck beside a larger mark, a fixed
    ///   region), and for the part of an area the resize keeps only elsewhere (an L whose arm
    ///   falls between sampled columns): each marked pixel that no cell of its area reaches
    ///   (see ``ModelSampling/unreached(_:)``) marks every model pixel or latent cell it
    ///   touches (``EditGeometry/coveredAreas``), so it is edited, in a band up to a cell wide.
    /// - Throws: the errors of ``EditRegion/resolve(mask:photo:padding:minimumSide:)``,
    ///   ``MaskError/nothingMarkedInRegion(source:region:marked:)`` when no marked pixel lies
    ///   inside a given region (checked by ``requireMarksInRegion(_:photo:options:)`` before
    ///   any model file is read).
    static func resolveGeometry(mask: EditMask, photo: ImageSize, options: MaskOptions, modelSize: Int,
                                latentScale: Int? = nil) throws -> EditGeometry {
        let cellSide = max(1, latentScale ?? 1)
        func geometry(minimumSide: Int, padding: Int?) throws -> (geometry: EditGeometry, kept: Int) {
            let region = try options.region.resolve(mask: mask, photo: photo, padding: padding, minimumSide: minimumSide)
            let inside = try marks(of: mask, in: region)
            let crop = try inside.cropped(to: region)
            let sampling = ModelSampling(region: crop.size, modelSize: modelSize, cellSide: cellSide)
            let nearest = try crop.resized(to: ImageSize(width: modelSize, height: modelSize))
            let marked = MarkedAreas(crop)
            var kept = [Bool](repeating: false, count: marked.count)
            for label in sampling.cellLabels(marked) where label >= 0 { kept[Int(label)] = true }
            var result = EditGeometry(mask: inside, region: region, modelMask: nearest, modelSize: modelSize,
                                      markedOutsideRegion: mask.editedPixelCount - inside.editedPixelCount,
                                      areas: marked.count, cellSide: cellSide)
            // The marked pixels no cell of their own area reaches — a whole area the sampling
            // skips, or the part of one (the arm of an L thinner than a cell) far from the
            // cells it keeps — mark every model pixel or cell they touch.
            let unreached = sampling.unreached(marked)
            if unreached.contains(true) {
                let lostMask = try EditMask(width: crop.width, height: crop.height, isEdited: unreached, source: crop.source)
                let covering = sampling.covering(lostMask)
                result.modelMask = try EditMask(width: modelSize, height: modelSize,
                                                isEdited: zip(nearest.isEdited, covering).map { $0 || $1 }, source: nearest.source)
                let coveredLabels = Set(zip(unreached, marked.labels).compactMap { $0 ? $1 : nil })
                result.coveredAreas = coveredLabels.count
                result.partlyCoveredAreas = coveredLabels.filter { kept[Int($0)] }.count
            }
            return (result, kept.filter { $0 }.count)
        }
        let first = try geometry(minimumSide: modelSize, padding: options.regionPadding)
        if first.kept == 0, options.region == .auto, let bounds = mask.boundingBox {
            // The mark's box with its margin, then with half the margin, ..., then none: the
            // first that the model's size magnifies enough to keep some of the mark.
            var padding = options.regionPadding ?? EditRegion.defaultPadding(for: bounds)
            while true {
                var zoomed = try geometry(minimumSide: 1, padding: padding)
                if zoomed.kept > 0 {
                    zoomed.geometry.zoomed = true
                    return zoomed.geometry
                }
                if padding == 0 { break }
                padding /= 2
            }
        }
        return first.geometry
    }

    /// The checks of the region that need no model size: a `--region` box inside the photo
    /// and holding some of the marked pixels of `mask` (the photo-sized mask, after
    /// `invertMask`). ``check(_:)`` runs them before it looks for the model files.
    /// - Throws: ``MaskError/regionOutsidePhoto(region:image:)``,
    ///   ``MaskError/nothingMarkedInRegion(source:region:marked:)``.
    static func requireMarksInRegion(_ mask: EditMask, photo: ImageSize, options: MaskOptions) throws {
        guard case .box = options.region else { return }
        _ = try marks(of: mask, in: options.region.resolve(mask: mask, photo: photo))
    }

    /// The marked pixels of `mask` inside `region` (those outside it are kept).
    /// - Throws: ``MaskError/nothingMarkedInRegion(source:region:marked:)`` when there are none
    ///   (``MaskError/empty(source:)`` for a mask that marks nothing at all).
    static func marks(of mask: EditMask, in region: PixelBox) throws -> EditMask {
        let inside = mask.restricted(to: region)
        guard inside.editedPixelCount > 0 else {
            guard let marked = mask.boundingBox else { throw MaskError.empty(source: mask.source) }
            throw MaskError.nothingMarkedInRegion(source: mask.source, region: region, marked: marked)
        }
        return inside
    }

    /// What the user should know about `geometry`: a region scaled up for a small mark, thin
    /// areas marked by the cells they touch, and a feather shortened to fit narrow marked
    /// areas (when the edit is pasted with it).
    /// The settings they name are in `wording`'s words.
    static func geometryNotices(_ geometry: EditGeometry, options: MaskOptions, enforcesBackground: Bool,
                                wording: SettingMessage.Wording = .commandLine) -> [String] {
        var notices: [String] = []
        let region = geometry.region
        if geometry.zoomed, let marked = geometry.mask.boundingBox {
            // Scaled up, but for a model smaller than the region even so (the tiny test models).
            let scale = Double(geometry.modelSize) / Double(max(region.width, region.height))
            let scaling = scale >= 1 ? String(format: "scaled up %.1f times", scale) : String(format: "scaled down %.1f times", 1 / scale)
            notices.append("the marked region (\(marked.width)x\(marked.height) pixels) is too small to edit at the model's scale: the"
                + " edit region is the \(region.width)x\(region.height) pixels around it, \(scaling) to the model's"
                + " \(geometry.modelSize)x\(geometry.modelSize)" + (scale > 1 ? " (the edit there is softer than the photo)" : ""))
        }
        if geometry.markedOutsideRegion > 0 {
            let total = geometry.markedOutsideRegion + geometry.mask.editedPixelCount
            let notice: SettingMessage = "\(geometry.markedOutsideRegion) of the \(total) marked pixels lie outside the region \(region)"
                + " (\(setting: "region")) and are kept as they are"
            notices.append(notice.text(wording))
        }
        if geometry.coveredAreas > 0 {
            let areas = geometry.coveredAreas == geometry.areas ? (geometry.areas == 1 ? "the marked area is" : "every marked area is")
                : "\(geometry.coveredAreas) of the \(geometry.areas) marked areas \(geometry.coveredAreas == 1 ? "is" : "are")"
            let unit = geometry.cellSide == 1 ? "pixel" : "\(geometry.cellSide)x\(geometry.cellSide)-pixel cell of the latent grid"
            let inPlaces = geometry.partlyCoveredAreas > 0 ? ", in places," : ""
            notices.append("\(areas)\(inPlaces) thinner than one \(unit) of the model's \(geometry.modelSize)x\(geometry.modelSize) image once the"
                + " \(region.width)x\(region.height) edit region is scaled to it: the model edits every \(geometry.cellSide == 1 ? "pixel" : "cell")"
                + " \(inPlaces.isEmpty ? (geometry.coveredAreas == 1 ? "it touches" : "they touch") : "those places touch") (a band wider than the mark); the photo changes only where marked")
        }
        if enforcesBackground && options.feather > 0 {
            let fit = FeatherFit(mask: geometry.mask, feather: options.feather)
            // Whole areas narrower than the fade, and broad areas with a narrower part.
            for (count, width, inPlaces) in [(fit.narrowAreas, fit.narrowestWidth, false), (fit.narrowInPlaces, fit.thinnestPartWidth, true)] {
                guard count > 0, let width else { continue }
                let areas = count == fit.areas ? (fit.areas == 1 ? "the marked area is" : "every marked area is")
                    : "\(count) of the \(fit.areas) marked areas \(count == 1 ? "is" : "are")"
                let notice: SettingMessage = "\(areas)\(inPlaces ? ", in places," : "") narrower than the \(2 * options.feather + 1) pixels a"
                    + " feather of \(options.feather) needs (\(setting: "feather"); the \(inPlaces ? "thinnest part" : "narrowest") \(width)"
                    + " pixel\(width == 1 ? "" : "s") across): the fade there is shortened to fit, so that its middle takes the whole edit"
                notices.append(notice.text(wording))
            }
        }
        return notices
    }
}

/// How the region's mask reaches the model: photo pixels sampled by nearest neighbour onto
/// the model's `modelSize²` image, and for the latent method that image sampled again onto
/// its grid of `modelSize / cellSide` cells.
struct ModelSampling {
    let modelSize: Int
    /// The region's rows and columns that decide the model's grid, in grid order.
    let sampledRows: [Int]
    let sampledColumns: [Int]
    /// Per grid cell along each axis: the model pixels it spans (its deciding pixel among them).
    private let rowSpans: [Range<Int>]
    private let columnSpans: [Range<Int>]
    /// Per grid cell along each axis: the region's pixels under its span (its footprint).
    /// Together they cover the region.
    private let rowFootprints: [Range<Int>]
    private let columnFootprints: [Range<Int>]

    /// `cellSide`: model pixels per grid cell (1: the grid is the model's image).
    init(region: ImageSize, modelSize: Int, cellSide: Int) {
        self.modelSize = modelSize
        let cells = max(1, modelSize / cellSide)
        func axis(_ length: Int) -> (spans: [Range<Int>], footprints: [Range<Int>], sampled: [Int]) {
            let toModel = pillowNearestIndices(input: length, output: modelSize)
            // With one pixel per cell this is the identity.
            let toGrid = pillowNearestIndices(input: modelSize, output: cells)
            // Cell g spans model pixels [g·M/n, (g+1)·M/n) — together the whole image — and
            // its deciding pixel, which lies in or next to that span.
            let spans = toGrid.indices.map { g -> Range<Int> in
                let start = g * modelSize / cells, end = (g + 1) * modelSize / cells
                return min(start, toGrid[g])..<max(end, toGrid[g] + 1)
            }
            let footprints = spans.map { span -> Range<Int> in
                let start = span.lowerBound * length / modelSize
                let end = min(length, (span.upperBound * length + modelSize - 1) / modelSize)
                return start..<max(end, start + 1)
            }
            return (spans, footprints, toGrid.map { toModel[$0] })
        }
        (rowSpans, rowFootprints, sampledRows) = axis(region.height)
        (columnSpans, columnFootprints, sampledColumns) = axis(region.width)
    }

    /// Per grid cell, row-major: the area of `areas` (region-sized) its deciding pixel belongs
    /// to, or -1 where that pixel is kept — the grid as the nearest resize marks it.
    func cellLabels(_ areas: MarkedAreas) -> [Int32] {
        sampledRows.flatMap { row in sampledColumns.map { areas.labels[row * areas.width + $0] } }
    }

    /// The marked pixels of `areas` (region-sized) that the grid misses: those whose own
    /// cells (the ones whose footprint holds them) are not decided by a pixel of their area —
    /// unless the pixel lies in a broad part of its area (its runs of marked pixels along its
    /// row and its column both span two cells' footprints or more) and a cell next to its own
    /// is decided by its area and is solid (half or more of its footprint the area's).
    ///
    /// So the edges of a mark two cells across keep the references' nearest-neighbour mask (a
    /// band up to a cell wide that the model leaves as it was, under the feather's fade), while
    /// a thin part — a stroke, the arm of an L, a narrow diagonal — needs its own cells: the
    /// model's output comes back to the photo from the cell under each pixel (Lanczos, whose
    /// weight at the next cell's centre is 0), not from the cells beside it.
    func unreached(_ areas: MarkedAreas) -> [Bool] {
        let width = areas.width, height = areas.height
        let gridRows = sampledRows.count, gridColumns = sampledColumns.count
        let cellLabel = cellLabels(areas)
        var solid = [Bool](repeating: false, count: gridRows * gridColumns)
        for r in 0..<gridRows {
            for c in 0..<gridColumns {
                let label = cellLabel[r * gridColumns + c]
                guard label >= 0 else { continue }
                let rows = rowFootprints[r], columns = columnFootprints[c]
                var own = 0
                for y in rows { for x in columns where areas.labels[y * width + x] == label { own += 1 } }
                solid[r * gridColumns + c] = 2 * own >= rows.count * columns.count
            }
        }
        // Per region row (column): the cells whose footprint holds it.
        func owners(_ footprints: [Range<Int>], length: Int) -> [ClosedRange<Int>] {
            var low = [Int](repeating: Int.max, count: length), high = [Int](repeating: -1, count: length)
            for (g, footprint) in footprints.enumerated() {
                for i in footprint { low[i] = min(low[i], g); high[i] = max(high[i], g) }
            }
            return (0..<length).map { low[$0]...high[$0] }
        }
        let rowOwners = owners(rowFootprints, length: height), columnOwners = owners(columnFootprints, length: width)
        // How wide the mark is through each pixel, along its row and its column.
        let (rowRun, columnRun) = areas.runLengths()
        // Two cells' footprints along each axis (photo pixels per cell, times two).
        let broadRow = Int32(2 * width / max(1, gridColumns)), broadColumn = Int32(2 * height / max(1, gridRows))
        var out = [Bool](repeating: false, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                let label = areas.labels[y * width + x]
                guard label >= 0 else { continue }
                let rows = rowOwners[y], columns = columnOwners[x]
                var reached = false
                own: for r in rows {
                    for c in columns where cellLabel[r * gridColumns + c] == label {
                        reached = true
                        break own
                    }
                }
                if !reached && rowRun[y * width + x] >= broadRow && columnRun[y * width + x] >= broadColumn {
                    beside: for r in max(0, rows.lowerBound - 1)...min(gridRows - 1, rows.upperBound + 1) {
                        for c in max(0, columns.lowerBound - 1)...min(gridColumns - 1, columns.upperBound + 1)
                        where solid[r * gridColumns + c] && cellLabel[r * gridColumns + c] == label {
                            reached = true
                            break beside
                        }
                    }
                }
                out[y * width + x] = !reached
            }
        }
        return out
    }

    /// The model-size mask marking the whole span of every grid cell whose footprint in the
    /// region holds a marked pixel of `mask` (region-sized). Every marked pixel lies in some
    /// cell's footprint (the spans tile the model's image), and the cell's deciding pixel is
    /// in its span, so every marked area marks a cell of the grid.
    func covering(_ mask: EditMask) -> [Bool] {
        let width = mask.width, height = mask.height
        // Summed-area table of the marked pixels, for a count over any rectangle.
        var table = [Int32](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var rowSum: Int32 = 0
            for x in 0..<width {
                rowSum += mask.isEdited[y * width + x] ? 1 : 0
                table[(y + 1) * (width + 1) + x + 1] = table[y * (width + 1) + x + 1] + rowSum
            }
        }
        var out = [Bool](repeating: false, count: modelSize * modelSize)
        for (rowSpan, rows) in zip(rowSpans, rowFootprints) {
            for (columnSpan, columns) in zip(columnSpans, columnFootprints) {
                let count = table[rows.upperBound * (width + 1) + columns.upperBound] - table[rows.lowerBound * (width + 1) + columns.upperBound]
                    - table[rows.upperBound * (width + 1) + columns.lowerBound] + table[rows.lowerBound * (width + 1) + columns.lowerBound]
                guard count > 0 else { continue }
                for y in rowSpan {
                    for x in columnSpan { out[y * modelSize + x] = true }
                }
            }
        }
        return out
    }
}
