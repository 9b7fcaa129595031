import BlendTensor

/// CLIP's text transformer (`CLIP.encode_text`): token and position embeddings, a
/// causal pre-LN transformer, the final LayerNorm, and the feature at the end-of-text
/// token projected to the joint embedding space.
public struct ClipTextEncoder: Sendable {
    public let config: ClipConfig
    let tokenEmbedding: Tensor          // [vocab, width]
    let positionalEmbedding: Tensor     // [context, width]
    let transformer: ClipTransformer
    let lnFinal: LayerNormLayer
    let projection: Tensor              // [width, embed]

    /// Embeddings `[N, embedDim]` of token sequences (each `context_length` ids, as the
    /// tokenizer returns them). As in the reference, the end-of-text token is the
    /// highest id of each sequence.
    public func callAsFunction(_ tokens: [[Int]]) throws -> Tensor {
        let l = config.contextLength, width = config.transformerWidth
        guard !tokens.isEmpty, tokens.allSatisfy({ $0.count == l }) else {
            throw ModelError.badInput("the CLIP text encoder needs sequences of exactly \(l) tokens")
        }
        let n = tokens.count
        var x = try embedding(tokens.flatMap { $0 }, table: tokenEmbedding).reshaped([n, l, width]) + positionalEmbedding
        x = try lnFinal(transformer(x, causal: true))
        let rows = try tokens.enumerated().map { i, seq in
            let eot = ClipTokenizer.endOfTextPosition(in: seq)!   // sequences are non-empty (checked above)
            return try x.sliced(i..<i + 1, axis: 0).sliced(eot..<eot + 1, axis: 1)
        }
        // [N, 1, width]: one product per prompt (matmul's batch), independent of the others.
        return try Tensor.concatenate(rows, axis: 0).matmul(projection).reshaped([n, projection.dim(1)])
    }
}
