// blend-tiny-models: writes the test suites' tiny random-weight models into a folder, for
// manual runs of `blend edit` and `blend serve` on a machine without the real weights (a
// development tool: it reads fixtures from this checkout's Tests/ folder). The edits they
// make are noise; what they show is the whole pipeline at work — masks, regions, notices,
// resume, the web page — in seconds.
import Foundation
import BlendPipelineTestSupport

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 1, let target = arguments.first, !target.hasPrefix("-") else {
    FileHandle.standardError.write(Data("""
        usage: swift run blend-tiny-models FOLDER
        Writes tiny random-weight models (a 16x16 pixel-space UNet, a small CLIP, a tiny Stable Diffusion 1.x
        in the diffusers layout) into FOLDER, and prints the blend commands that use them.

        """.utf8))
    exit(2)
}
let folder = URL(fileURLWithPath: target).standardizedFileURL
do {
    if FileManager.default.fileExists(atPath: folder.path),
       !(try FileManager.default.contentsOfDirectory(atPath: folder.path)).isEmpty {
        FileManager.default.standardError("\(folder.path) is not empty: give a new or empty folder")
        exit(1)
    }
    let pixel = try TinyModelFiles(in: folder.appendingPathComponent("pixel"))
    let config = pixel.directory.appendingPathComponent("tiny_unet.json")
    try JSONEncoder().encode(TinyModelFiles.unetConfig).write(to: config)
    let latent = try TinyStableDiffusion(in: folder.appendingPathComponent("latent"))
    // The vocabularies are copied in, so that the folder holds everything a run reads.
    let pixelVocabulary = pixel.directory.appendingPathComponent("clip_vocab_head.txt.gz")
    try FileManager.default.copyItem(at: URL(fileURLWithPath: pixel.paths.clipVocabulary), to: pixelVocabulary)
    let latentVocabulary = latent.directory.appendingPathComponent("vocab_86_merges.txt.gz")
    try FileManager.default.copyItem(at: URL(fileURLWithPath: TinyStableDiffusion.vocabulary), to: latentVocabulary)
    let quote = { (path: String) in path.contains(" ") ? "'\(path)'" : path }
    print("""
        Tiny models written to \(folder.path). They work at 16x16 pixels (the latent grid: 8x8 cells of 2x2
        pixels), so a mark that a real 256x256 or 512x512 model keeps may be "thinner than one pixel" here.
        With a photo and a mask (white = edit), and blend the path of your build (.build/debug/blend):

        pixel method (Blended Diffusion):
          blend edit PHOTO --mask MASK --prompt "a red ball" --steps 10 --skip 5 --samples 2 --out OUT --skip-memory-check \\
            --diffusion-model \(quote(pixel.paths.diffusion)) --diffusion-config \(quote(config.path)) \\
            --clip-model \(quote(pixel.paths.clip)) --clip-vocab \(quote(pixelVocabulary.path))

        latent method (Blended Latent Diffusion, SD 1.x in the diffusers layout; sd2_diffusers for 2.x):
          blend edit PHOTO --mask MASK --prompt "a red ball" --method latent --steps 4 --samples 2 --out OUT --skip-memory-check \\
            --sd-model \(quote(latent.folder("sd1"))) \\
            --clip-model \(quote(pixel.paths.clip)) --clip-vocab \(quote(latentVocabulary.path))
        The single files (\(quote(latent.singleFile("sd1"))), tiny-sd2.safetensors) have tiny shapes no preset knows:
        add --sd-config \(quote(latent.folder("sd1"))) (or sd2_diffusers) to read their configs from the folder.

        the web app, both methods (the latent method's vocabulary fits both text encoders):
          blend serve --diffusion-model \(quote(pixel.paths.diffusion)) --diffusion-config \(quote(config.path)) \\
            --sd-model \(quote(latent.folder("sd1"))) \\
            --clip-model \(quote(pixel.paths.clip)) --clip-vocab \(quote(latentVocabulary.path))
        """)
} catch {
    FileManager.default.standardError("blend-tiny-models: \(error)")
    exit(1)
}

extension FileManager {
    func standardError(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}
