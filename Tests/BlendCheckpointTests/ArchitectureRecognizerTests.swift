import Foundation
import Testing
@testable import BlendCheckpoint

/// The recogniser against the key names and shapes of the real networks
/// (written from their PyTorch definitions by the fixture script).
@Suite struct ArchitectureRecognizerTests {
    private func entries(_ name: String) throws -> [CheckpointEntry] {
        let text = try String(contentsOfFile: Fixtures.path("architectures/\(name).txt"), encoding: .utf8)
        return text.split(separator: "\n").map { line in
            let parts = line.split(separator: " ")
            let shape = parts[1] == "-" ? [] : parts[1].split(separator: "x").map { Int($0)! }
            return CheckpointEntry(name: String(parts[0]), dtype: .float32, shape: shape)
        }
    }

    @Test func guidedDiffusion256Unconditional() throws {
        let recognized = ArchitectureRecognizer.recognize(try entries("guided_diffusion_256_uncond"))
        let expected = GuidedDiffusionUNetConfig(
            modelChannels: 256, inChannels: 3, outChannels: 6, learnSigma: true, numResBlocks: 2,
            channelMult: [1, 1, 2, 2, 4, 4], attentionDownsampleFactors: [8, 16, 32], numClasses: nil, imageSize: 256)
        #expect(recognized == .guidedDiffusionUNet(expected))
        #expect(recognized?.description.contains("attention at 32,16,8") == true)
        #expect(recognized?.description.contains("unconditional") == true)
    }

    @Test func guidedDiffusion512ClassConditional() throws {
        guard case let .guidedDiffusionUNet(config)? = ArchitectureRecognizer.recognize(try entries("guided_diffusion_512_cond")) else {
            Issue.record("not recognised"); return
        }
        #expect(config.modelChannels == 256 && config.learnSigma && config.numClasses == 1000)
        #expect(config.channelMult == [0.5, 1, 1, 2, 2, 4, 4] && config.imageSize == 512)
        #expect(config.attentionDownsampleFactors == [16, 32, 64])
    }

    @Test func guidedDiffusionWithConvolutionResampling() throws {
        guard case let .guidedDiffusionUNet(config)? = ArchitectureRecognizer.recognize(try entries("guided_diffusion_64_conv_resample")) else {
            Issue.record("not recognised"); return
        }
        #expect(config.modelChannels == 128 && !config.learnSigma && config.outChannels == 3)
        #expect(config.numResBlocks == 3 && config.channelMult == [1, 2, 3, 4] && config.imageSize == 64)
        #expect(config.attentionDownsampleFactors == [4, 8])
    }

    @Test(arguments: [("clip_vit_b32", "ViT-B/32", 512), ("clip_vit_b16", "ViT-B/16", 512), ("clip_vit_l14", "ViT-L/14", 768)])
    func clipModels(file: String, name: String, embedDim: Int) throws {
        guard case let .clip(config)? = ArchitectureRecognizer.recognize(try entries(file)) else { Issue.record("not recognised"); return }
        #expect(config.name == name)
        #expect(config.embedDim == embedDim && config.imageResolution == 224 && config.contextLength == 77 && config.vocabSize == 49408)
        #expect(config.textLayers == 12)
    }

    @Test func lpipsAndVGG() throws {
        #expect(ArchitectureRecognizer.recognize(try entries("lpips_vgg_lin")) == .lpipsLinearLayers(backbone: "vgg"))
        #expect(ArchitectureRecognizer.recognize(try entries("torchvision_vgg16")) == .torchvisionVGG(depth: 16, batchNorm: false, hasClassifier: true))
    }

    @Test func unrelatedFilesAreNotRecognised() throws {
        #expect(ArchitectureRecognizer.recognize([CheckpointEntry(name: "weight", dtype: .float32, shape: [3])]) == nil)
        let fixture = try CheckpointFile.load(path: Fixtures.path("state_dict_zip.pt"))
        #expect(ArchitectureRecognizer.recognize(fixture.entries) == nil)
    }
}
