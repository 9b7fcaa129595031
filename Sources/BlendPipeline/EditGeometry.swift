import BlendEditor
import BlendImage
import BlendTensor
import Foundation

/// The mask and region of an edit, resolved at the photo's and the model's resolutions.
///
/// Invariant: every connected marked area of `mask` marks at least one pixel of `modelMask`
/// and, for the latent method, one cell of the latent grid as ``LatentMasks/downsample(_:height:width:)``
/// samples `modelMask` — so no part of what the user painted is silently left unedited.
struct EditGeometry {
    /// Edited pixels at the photo's size (only inside `region`).
    var mask: EditMask
    var region: PixelBox
    /// The mask of the region at the model's size.
    var modelMask: EditMask
    var modelSize: Int
    /// The region was shrunk below the model's size around a mark too small to edit at it.
    var zoomed = false
    /// Marked areas that the nearest-neighbour resize would miss (thinner than one model
    /// pixel, or one latent cell, once scaled), marked in `modelMask` by every pixel or cell
    /// they touch instead.
    var coveredAreas = 0
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
    ///   region): each lost area marks every model pixel or latent cell it touches
    ///   (``EditGeometry/coveredAreas``), so it is edited, in a band up to a cell wide.
    /// - Throws: the errors of ``EditRegion/resolve(mask:photo:padding:minimumSide:)``,
    ///   ``MaskError/empty(source:)`` when no marked pixel lies inside a given region.
    static func resolveGeometry(mask: EditMask, photo: ImageSize, options: MaskOptions, modelSize: Int,
                                latentScale: Int? = nil) throws -> EditGeometry {
        let cellSide = max(1, latentScale ?? 1)
        func geometry(minimumSide: Int, padding: Int?) throws -> (geometry: EditGeometry, kept: Int) {
            let region = try options.region.resolve(mask: mask, photo: photo, padding: padding, minimumSide: minimumSide)
            let inside = mask.restricted(to: region)
            guard inside.editedPixelCount > 0 else {
                throw MaskError.empty(source: "\(mask.source) inside the region \(region)")
            }
            let crop = try inside.cropped(to: region)
            let sampling = ModelSampling(region: crop.size, modelSize: modelSize, cellSide: cellSide)
            let nearest = try crop.resized(to: ImageSize(width: modelSize, height: modelSize))
            let marked = MarkedAreas(crop)
            var kept = [Bool](repeating: false, count: marked.count)
            for row in sampling.sampledRows {
                for column in sampling.sampledColumns {
                    let label = marked.labels[row * crop.width + column]
                    if label >= 0 { kept[Int(label)] = true }
                }
            }
            let lost = kept.indices.filter { !kept[$0] }
            var result = EditGeometry(mask: inside, region: region, modelMask: nearest, modelSize: modelSize,
                                      areas: marked.count, cellSide: cellSide)
            if !lost.isEmpty {
                let lostSet = Set(lost.map(Int32.init))
                let lostMask = try EditMask(width: crop.width, height: crop.height,
                                            isEdited: marked.labels.map { lostSet.contains($0) }, source: crop.source)
                let covering = sampling.covering(lostMask)
                result.modelMask = try EditMask(width: modelSize, height: modelSize,
                                                isEdited: zip(nearest.isEdited, covering).map { $0 || $1 }, source: nearest.source)
                result.coveredAreas = lost.count
            }
            return (result, marked.count - lost.count)
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

    /// What the user should know about `geometry`: a region scaled up for a small mark, thin
    /// areas marked by the cells they touch, and a feather shortened to fit narrow marked
    /// areas (when the edit is pasted with it).
    static func geometryNotices(_ geometry: EditGeometry, options: MaskOptions, enforcesBackground: Bool) -> [String] {
        var notices: [String] = []
        let region = geometry.region
        if geometry.zoomed, let marked = geometry.mask.boundingBox {
            notices.append(String(format: "the marked region (%dx%d pixels) is too small to edit at the model's scale: the edit region is"
                + " the %dx%d pixels around it, scaled up %.1f times to the model's %dx%d (the edit there is softer than the photo)",
                marked.width, marked.height, region.width, region.height,
                Double(geometry.modelSize) / Double(max(region.width, region.height)), geometry.modelSize, geometry.modelSize))
        }
        if geometry.coveredAreas > 0 {
            let areas = geometry.coveredAreas == geometry.areas ? (geometry.areas == 1 ? "the marked area is" : "every marked area is")
                : "\(geometry.coveredAreas) of the \(geometry.areas) marked areas are"
            let unit = geometry.cellSide == 1 ? "pixel" : "\(geometry.cellSide)x\(geometry.cellSide)-pixel cell of the latent grid"
            notices.append("\(areas) thinner than one \(unit) of the model's \(geometry.modelSize)x\(geometry.modelSize) image once the"
                + " \(region.width)x\(region.height) edit region is scaled to it: the model edits every \(geometry.cellSide == 1 ? "pixel" : "cell")"
                + " \(geometry.coveredAreas == 1 ? "it touches" : "they touch") (a band wider than the mark); the photo changes only where marked")
        }
        if enforcesBackground && options.feather > 0 {
            let fit = FeatherFit(mask: geometry.mask, feather: options.feather)
            if fit.narrowAreas > 0, let narrowest = fit.narrowestWidth {
                let areas = fit.narrowAreas == fit.areas ? (fit.areas == 1 ? "the marked area is" : "every marked area is")
                    : "\(fit.narrowAreas) of the \(fit.areas) marked areas are"
                notices.append("\(areas) narrower than twice the feather of \(options.feather) pixels (--feather; the narrowest \(narrowest)"
                    + " pixel\(narrowest == 1 ? "" : "s") across): the fade there is shortened to fit, so that its middle takes the whole edit")
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

    /// `cellSide`: model pixels per grid cell (1: the grid is the model's image).
    init(region: ImageSize, modelSize: Int, cellSide: Int) {
        self.modelSize = modelSize
        let cells = max(1, modelSize / cellSide)
        func axis(_ length: Int) -> (spans: [Range<Int>], sampled: [Int]) {
            let toModel = pillowNearestIndices(input: length, output: modelSize)
            // With one pixel per cell this is the identity.
            let toGrid = pillowNearestIndices(input: modelSize, output: cells)
            // Cell g spans model pixels [g·M/n, (g+1)·M/n) — together the whole image — and
            // its deciding pixel, which lies in or next to that span.
            let spans = toGrid.indices.map { g -> Range<Int> in
                let start = g * modelSize / cells, end = (g + 1) * modelSize / cells
                return min(start, toGrid[g])..<max(end, toGrid[g] + 1)
            }
            return (spans, toGrid.map { toModel[$0] })
        }
        (rowSpans, sampledRows) = axis(region.height)
        (columnSpans, sampledColumns) = axis(region.width)
    }

    /// The model-size mask marking the whole span of every grid cell whose pixels' footprint
    /// in the region holds a marked pixel of `mask` (region-sized). Every marked pixel lies
    /// in some cell's footprint (the spans tile the model's image), and the cell's deciding
    /// pixel is in its span, so every marked area marks a cell of the grid.
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
        func footprint(_ span: Range<Int>, length: Int) -> Range<Int> {
            let start = span.lowerBound * length / modelSize
            let end = min(length, (span.upperBound * length + modelSize - 1) / modelSize)
            return start..<max(end, start + 1)
        }
        var out = [Bool](repeating: false, count: modelSize * modelSize)
        for rowSpan in rowSpans {
            let rows = footprint(rowSpan, length: height)
            for columnSpan in columnSpans {
                let columns = footprint(columnSpan, length: width)
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
