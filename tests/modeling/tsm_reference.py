"""The original TSM network in NumPy (float64), for tests that have no torch.

It follows the original code's model (mit-han-lab/temporal-shift-module `TSN(..., is_shift=True,
shift_place='blockres')` over a torchvision ResNet): the shift sits on each shifted block's
residual branch before its first conv; fold = C // 8; channels [0, fold) take frame t+1 and
[fold, 2*fold) take frame t-1 (zeros past the ends); BatchNorm in eval mode, eps 1e-5; the fc
(`new_fc`) on each frame's pooled features, logits averaged over the segments. In ResNet-101/152
only blocks 0, 2, 4, ... of each stage shift. Checked against the real PyTorch model's logits
(shared/reference/torch_tsm) in test_torch_tsm.py.

`random_state(depth, classes)` makes weights for it under the original code's key names, with
BatchNorm statistics that keep activations at a sane scale.
"""
import numpy as np

STAGES = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
          50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
          152: ("bottleneck", (3, 8, 36, 3))}
EPS = 1e-5


def shifted_blocks(depth):
    """(stage, index) of the blocks the original code shifts."""
    _, blocks = STAGES[depth]
    every = 2 if blocks[2] >= 23 else 1
    return {(s, i) for s, n in enumerate(blocks) for i in range(n) if i % every == 0}


def conv2d(x, w, stride=1):
    """x [N, C, H, W], w [O, C, k, k], padding (k - 1) // 2."""
    k = w.shape[-1]
    pad = (k - 1) // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))        # [N, h, w, O]
    return out.transpose(0, 3, 1, 2)


def batch_norm(x, state, prefix):
    scale = state[prefix + ".weight"] / np.sqrt(state[prefix + ".running_var"] + EPS)
    shift = state[prefix + ".bias"] - state[prefix + ".running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def max_pool(x):
    """3x3, stride 2, padding 1."""
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    return np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2].max(
        axis=(-1, -2))


def shift(x, num_seg):
    """The original direction: fold 0 from t+1, fold 1 from t-1."""
    nt, c, h, w = x.shape
    clip = x.reshape(nt // num_seg, num_seg, c, h, w)
    fold = c // 8
    out = np.zeros_like(clip)
    out[:, :-1, :fold] = clip[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = clip[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = clip[:, :, 2 * fold:]
    return out.reshape(nt, c, h, w)


def relu(x):
    return np.maximum(x, 0)


def forward(state, clips, depth, prefix="module.base_model.", fc="module.new_fc."):
    """Logits [N, classes] of the original model for normalised clips [N, T, 3, H, W]."""
    state = {k: np.asarray(v, np.float64) for k, v in state.items()}
    n, t = clips.shape[:2]
    x = clips.reshape((n * t,) + clips.shape[2:]).astype(np.float64)
    x = max_pool(relu(batch_norm(conv2d(x, state[prefix + "conv1.weight"], 2), state,
                                 prefix + "bn1")))
    kind, blocks = STAGES[depth]
    shifts = shifted_blocks(depth)
    convs = 3 if kind == "bottleneck" else 2
    for stage, count in enumerate(blocks):
        for i in range(count):
            b = f"{prefix}layer{stage + 1}.{i}."
            stride = 2 if stage > 0 and i == 0 else 1
            out = shift(x, t) if (stage, i) in shifts else x
            for k in range(1, convs + 1):
                key = b + f"conv{k}.net.weight" if k == 1 and (stage, i) in shifts else \
                    b + f"conv{k}.weight"
                # the stride sits on the 3x3 conv: conv2 of a bottleneck, conv1 of a basic block
                s = stride if (k == 2 and kind == "bottleneck") or (k == 1 and kind == "basic") else 1
                out = batch_norm(conv2d(out, state[key], s), state, b + f"bn{k}")
                if k < convs:
                    out = relu(out)
            identity = x
            if b + "downsample.0.weight" in state:
                identity = batch_norm(conv2d(x, state[b + "downsample.0.weight"], stride), state,
                                      b + "downsample.1")
            x = relu(out + identity)
    features = x.mean(axis=(2, 3))                                  # [N*T, C]
    logits = features @ state[fc + "weight"].T + state[fc + "bias"]
    return logits.reshape(n, t, -1).mean(axis=1)


def random_state(depth, classes, seed=0, prefix="module.base_model.", fc="module.new_fc."):
    """Random weights for the original model, float32, under the original code's key names."""
    rng = np.random.default_rng(seed)
    kind, blocks = STAGES[depth]
    shifts = shifted_blocks(depth)
    state = {}

    def conv(key, out, inp, k):
        state[key] = (rng.standard_normal((out, inp, k, k)) * np.sqrt(2.0 / (inp * k * k))
                      ).astype(np.float32)

    def bn(key, c, gain=1.0):
        state[key + ".weight"] = (rng.uniform(0.5, 1.5, c) * gain).astype(np.float32)
        state[key + ".bias"] = rng.uniform(-0.2, 0.2, c).astype(np.float32)
        state[key + ".running_mean"] = rng.uniform(-0.2, 0.2, c).astype(np.float32)
        state[key + ".running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
        state[key + ".num_batches_tracked"] = np.array(7, dtype=np.int64)

    conv(prefix + "conv1.weight", 64, 3, 7)
    bn(prefix + "bn1", 64)
    channels = 64
    expansion = 4 if kind == "bottleneck" else 1
    for stage, count in enumerate(blocks):
        width = 64 * 2 ** stage
        for i in range(count):
            b = f"{prefix}layer{stage + 1}.{i}."
            first = b + ("conv1.net.weight" if (stage, i) in shifts else "conv1.weight")
            if kind == "bottleneck":
                conv(first, width, channels, 1)
                conv(b + "conv2.weight", width, width, 3)
                conv(b + "conv3.weight", width * 4, width, 1)
                bn(b + "bn1", width), bn(b + "bn2", width), bn(b + "bn3", width * 4, 0.2)
            else:
                conv(first, width, channels, 3)
                conv(b + "conv2.weight", width, width, 3)
                bn(b + "bn1", width), bn(b + "bn2", width, 0.2)
            if i == 0 and (stage > 0 or channels != width * expansion):
                conv(b + "downsample.0.weight", width * expansion, channels, 1)
                bn(b + "downsample.1", width * expansion)
            channels = width * expansion
    state[fc + "weight"] = (rng.standard_normal((classes, channels)) * 0.05).astype(np.float32)
    state[fc + "bias"] = rng.uniform(-0.1, 0.1, classes).astype(np.float32)
    return state


def to_mmaction2(state):
    """The same weights under mmaction2's key names."""
    out = {}
    for key, value in state.items():
        k = key.replace("module.base_model.", "backbone.").replace("module.new_fc.",
                                                                    "cls_head.fc_cls.")
        if k.startswith("backbone.conv1.") or k.startswith("backbone.bn1."):
            k = k.replace("backbone.conv1.", "backbone.conv1.conv.").replace(
                "backbone.bn1.", "backbone.conv1.bn.")
        else:
            for j in (1, 2, 3):
                k = k.replace(f".conv{j}.net.", f".conv{j}.conv.net.")
                if f".conv{j}.conv." not in k:
                    k = k.replace(f".conv{j}.weight", f".conv{j}.conv.weight")
                k = k.replace(f".bn{j}.", f".conv{j}.bn.")
            k = k.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.",
                                                                         ".downsample.bn.")
        out[k] = value
    return out
