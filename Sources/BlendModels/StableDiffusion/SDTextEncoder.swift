import BlendTensor

/// How a Stable Diffusion tokenizer fills a prompt's 77 ids after `<|endoftext|>`.
public enum SDPromptPadding: String, Codable, Sendable {
    /// SD 1.x (`tokenizer/special_tokens_map.json`: pad_token "<|endoftext|>").
    case endOfText
    /// SD 2.x (pad_token "!", id 0), as OpenCLIP's and OpenAI's `tokenize` do.
    case zero

    /// The usual padding of an encoder: zeros for the erf-GELU OpenCLIP tower (SD 2.x), the
    /// end-of-text token for OpenAI's QuickGELU tower (SD 1.x). A diffusers folder's
    /// `tokenizer/special_tokens_map.json` says so explicitly.
    public static func usual(for config: SDTextEncoderConfig) -> SDPromptPadding {
        config.hiddenAct == .gelu ? .zero : .endOfText
    }
}

/// Stable Diffusion's text encoder: a causal CLIP text transformer whose hidden states at
/// every position, after the final LayerNorm, are the context `[N, 77, D]` the UNet
/// cross-attends to (transformers' `CLIPTextModel(...).last_hidden_state`, which diffusers'
/// `StableDiffusionPipeline.encode_prompt` passes on; CompVis' `FrozenCLIPEmbedder` and, for
/// SD 2.x, `FrozenOpenCLIPEmbedder` with `layer="penultimate"`). No attention mask: padding
/// positions are encoded too, as in both references. Built by ``init(weights:config:layout:)``
/// (key layouts in `SDTextEncoderCheckpoint.swift`).
public struct SDTextEncoder: Sendable {
    public let config: SDTextEncoderConfig
    let tokenEmbedding: Tensor       // [vocab, D]
    let positionEmbedding: Tensor    // [positions, D]
    let transformer: ClipTransformer
    let finalLayerNorm: LayerNormLayer

    init(config: SDTextEncoderConfig, tokenEmbedding: Tensor, positionEmbedding: Tensor,
         transformer: ClipTransformer, finalLayerNorm: LayerNormLayer) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.positionEmbedding = positionEmbedding
        self.transformer = transformer
        self.finalLayerNorm = finalLayerNorm
    }

    /// The hidden states `[N, L, D]` of N token sequences of one length L (77 for SD, at most
    /// `max_position_embeddings`), ids in `0..<vocab_size`.
    /// Throws `ModelError.badInput` for empty, ragged, too long or out-of-vocabulary input.
    public func callAsFunction(_ tokens: [[Int]]) throws -> Tensor {
        let l = tokens.first?.count ?? 0, width = config.hiddenSize
        guard l > 0, l <= config.maxPositionEmbeddings, tokens.allSatisfy({ $0.count == l }) else {
            throw ModelError.badInput("the SD text encoder needs token sequences of one length from 1 to \(config.maxPositionEmbeddings) (SD uses 77)")
        }
        if let bad = tokens.joined().first(where: { !(0..<config.vocabSize).contains($0) }) {
            throw ModelError.badInput("token id \(bad) is outside this text encoder's vocabulary of \(config.vocabSize): was the prompt tokenized with another vocabulary?")
        }
        let n = tokens.count
        let positions = try positionEmbedding.sliced(0..<l, axis: 0)
        let x = try embedding(tokens.flatMap { $0 }, table: tokenEmbedding).reshaped([n, l, width]) + positions
        return try finalLayerNorm(transformer(x, causal: true))
    }

    /// The 77 ids SD feeds this encoder for `prompt`, as diffusers' pipelines tokenize it
    /// (`padding="max_length", truncation=True`): start, the prompt's tokens (cut to 75),
    /// end, then `padding`. An empty prompt gives the unconditional context's tokens.
    public static func tokens(for prompt: String, tokenizer: ClipTokenizer, padding: SDPromptPadding,
                              contextLength: Int = ClipTokenizer.defaultContextLength) throws -> [Int] {
        try tokenizer.tokenize(prompt, contextLength: contextLength, truncate: true,
                               padToken: padding == .zero ? 0 : tokenizer.endOfTextToken)
    }
}
