/// Where a model's weights were found inside a training checkpoint, and what was left out.
///
/// Files from training code wrap the state dict: `{"state_dict": ...}` (PyTorch Lightning),
/// `{"model": ..., "ema": ..., "optimizer": ..., "step": ...}`, keys prefixed `module.` by
/// `DataParallel`/`DistributedDataParallel` or `_orig_mod.` by `torch.compile`.
/// ``Checkpoint/modelWeights()`` unwraps them; this says how.
public struct WeightSelection: Sendable, Equatable, CustomStringConvertible {
    /// The keys stripped from the front of every tensor name, outermost first
    /// (`["state_dict", "module"]`, `["ema"]`).
    public let keyPath: [String]
    /// Whether the weights are an exponential moving average (EMA), preferred over the raw
    /// weights when a file holds both: EMA weights are the ones published models sample with.
    public let usedEMA: Bool
    /// Keys holding tensors that were left out (the raw weights next to an EMA copy,
    /// optimizer state), outermost first.
    public let leftOut: [String]
    /// Tensors the EMA copy lacks (often buffers, which optimizers do not average) that were
    /// taken from the raw weights, and from which key.
    public let completedFrom: (key: String, count: Int)?

    public static func == (a: WeightSelection, b: WeightSelection) -> Bool {
        a.keyPath == b.keyPath && a.usedEMA == b.usedEMA && a.leftOut == b.leftOut
            && a.completedFrom?.key == b.completedFrom?.key && a.completedFrom?.count == b.completedFrom?.count
    }

    /// "the EMA weights under `ema` (not used: model, optimizer)".
    public var description: String {
        var text = usedEMA ? "the EMA weights" : "the weights"
        text += " under `\(keyPath.joined(separator: "."))`"
        if let completedFrom { text += ", with \(completedFrom.count) tensors the EMA lacks from `\(completedFrom.key)`" }
        if !leftOut.isEmpty { text += " (not used: \(leftOut.joined(separator: ", ")))" }
        return text
    }
}

/// Finds the model's weights among a checkpoint's tensor names (see `WeightSelection`).
///
/// Conservative on purpose: a level is unwrapped only when every key at it is one that
/// training code uses for wrapping (`state_dict`, `model`, `ema`, `optimizer`, ...) or a lone
/// wrapper key holds everything. A full Stable Diffusion checkpoint's `model.`,
/// `first_stage_model.` and `cond_stage_model.` are left alone, since `first_stage_model`
/// is not such a key; a real network's own top-level modules never all are.
enum WeightUnwrapping {
    /// Keys under which training code saves the model's weights.
    static let weightKeys: Set<String> = [
        "state_dict", "model", "model_state_dict", "model_state", "module", "net", "network",
        "params", "weights", "_orig_mod",
    ]
    /// Keys under which training code saves an exponential moving average of the weights.
    static let emaKeys: Set<String> = [
        "ema", "ema_model", "model_ema", "ema_state_dict", "state_dict_ema", "ema_params", "ema_weights", "ema_state",
    ]
    /// Keys of training state that is never part of the model.
    static let trainingKeys: Set<String> = [
        "optimizer", "optimizer_state_dict", "optimizer_state", "optimizer_states", "opt", "optim", "opt_state",
        "scheduler", "lr_scheduler", "lr_schedulers", "scheduler_state_dict", "scaler", "grad_scaler", "amp",
        "args", "config", "hparams", "hyper_parameters", "callbacks", "loops", "metrics", "loss", "rng_state",
        "epoch", "step", "global_step", "iteration", "n_averaged", "num_updates",
    ]

    enum Failure: Error, Equatable {
        /// Several candidate sets of weights and no rule to prefer one.
        case ambiguous(keys: [String])
        /// Only training state: no weights at all.
        case noWeights(keys: [String])
    }

    /// The tensors of the model, as (name to use, name in the file), and how they were found;
    /// nil when the names are a plain state dict already.
    static func select(_ names: [String]) throws(Failure) -> (tensors: [(name: String, source: String)], selection: WeightSelection)? {
        var current = names.map { (name: $0, source: $0) }
        var keyPath: [String] = []
        var usedEMA = false
        var leftOut: [String] = []
        var completedFrom: (key: String, count: Int)?
        // Each level strips one key; real wrappers nest two or three deep.
        for _ in 0..<8 {
            let groups = group(current)
            // Training scalars at the top of a level (`step`, `epoch` saved as tensors) don't decide anything.
            let keys = groups.keys.filter { !(groups.isLoose($0) && trainingKeys.contains($0)) }
            guard !keys.isEmpty else { break }
            // A Stable Diffusion file holding only its UNet: `model.diffusion_model.*` is the
            // network's own name, not a `model` wrapper.
            if keys == ["model"], groups.members("model").allSatisfy({ $0.name.hasPrefix("diffusion_model.") }) { break }
            let allKnown = keys.allSatisfy { weightKeys.contains($0) || emaKeys.contains($0) || trainingKeys.contains($0) }
            if keys.count == 1, weightKeys.contains(keys[0]) || emaKeys.contains(keys[0]), !groups.isLoose(keys[0]) {
                // A lone wrapper (`module.` from DataParallel, or a single `state_dict`).
                let key = keys[0]
                usedEMA = usedEMA || emaKeys.contains(key)
                keyPath.append(key)
                current = groups.members(key)
                continue
            }
            guard allKnown else { break }
            let ema = keys.filter { emaKeys.contains($0) && !groups.isLoose($0) }
            let weights = keys.filter { weightKeys.contains($0) && !groups.isLoose($0) }
            let chosen: String
            if ema.count == 1 {
                chosen = ema[0]
                usedEMA = true
            } else if ema.isEmpty, weights.count == 1 {
                chosen = weights[0]
            } else if ema.isEmpty, weights.isEmpty {
                throw .noWeights(keys: keys)
            } else {
                throw .ambiguous(keys: ema.isEmpty ? weights : ema)
            }
            var selected = groups.members(chosen)
            if usedEMA, weights.count == 1 {
                // EMA copies often hold the parameters only: take the buffers from the raw weights,
                // but only when the two are the same network (the EMA's names all among the raw ones).
                let raw = unwrapped(groups.members(weights[0]))
                let emaNames = Set(unwrapped(selected).map(\.name))
                let rawNames = Set(raw.map(\.name))
                if emaNames.isSubset(of: rawNames), emaNames.count < rawNames.count {
                    selected = unwrapped(selected)
                    let missing = raw.filter { !emaNames.contains($0.name) }
                    selected += missing
                    completedFrom = (weights[0], missing.count)
                }
            }
            leftOut += keys.filter { $0 != chosen }
            keyPath.append(chosen)
            current = selected
        }
        guard !keyPath.isEmpty else { return nil }
        return (current, WeightSelection(keyPath: keyPath, usedEMA: usedEMA, leftOut: leftOut, completedFrom: completedFrom))
    }

    /// Lone wrappers (`module.`, `_orig_mod.`) stripped, as `select` would, for comparing two sets.
    private static func unwrapped(_ tensors: [(name: String, source: String)]) -> [(name: String, source: String)] {
        var current = tensors
        for _ in 0..<8 {
            let groups = group(current)
            guard groups.keys.count == 1, let key = groups.keys.first, weightKeys.contains(key), !groups.isLoose(key) else { break }
            current = groups.members(key)
        }
        return current
    }

    /// Tensors grouped by the first component of their names, in file order.
    struct Groups {
        var keys: [String] = []
        var byKey: [String: [(name: String, source: String)]] = [:]
        /// Keys that name a tensor directly (no dot), rather than a container.
        var loose: Set<String> = []

        func isLoose(_ key: String) -> Bool { loose.contains(key) }

        /// The tensors under `key`, with `key.` stripped from their names.
        func members(_ key: String) -> [(name: String, source: String)] {
            (byKey[key] ?? []).compactMap { tensor in
                guard let dot = tensor.name.firstIndex(of: ".") else { return nil }
                return (String(tensor.name[tensor.name.index(after: dot)...]), tensor.source)
            }
        }
    }

    static func group(_ tensors: [(name: String, source: String)]) -> Groups {
        var groups = Groups()
        for tensor in tensors {
            let key: String
            if let dot = tensor.name.firstIndex(of: ".") {
                key = String(tensor.name[..<dot])
            } else {
                key = tensor.name
                groups.loose.insert(key)
            }
            if groups.byKey[key] == nil { groups.keys.append(key) }
            groups.byKey[key, default: []].append(tensor)
        }
        return groups
    }
}
