"""What the model looks at: Grad-CAM for 2D recognizers (TSN, TSM, online TSM).

    from paddlevideo import load_model
    from paddlevideo.explain import grad_cam
    model = load_model("configs/recognition/tsm/tsm_k400_videos.yaml", "TSM_k400.pdparams")
    cam = grad_cam(model, clip)                # clip [T, 3, H, W] normalised; cam [T, H, W] in [0, 1]

The definition is mmaction2's `vis_cam` for 2D recognizers, as the issue states it: the whole clip
goes through the model (so the temporal shift mixes the frames as in prediction); the class
score is the logit of the target class (the top class by default); the channel weights are its
gradients with respect to the chosen layer's output (the backbone's last stage by default),
averaged over all frames and positions; each frame's map is the ReLU of the channel-weighted sum
of that frame's activations, upsampled bilinearly (align_corners False) to the clip's
resolution; the maps of the whole clip are then scaled together to [0, 1] as
`(m - min) / (max - min + 1e-6)`, so frames can be compared.

Only the layer's output needs a gradient, not the weights: the parameters are held constant
during the call and the activation enters the rest of the network as a fresh leaf, so the
backward pass runs only through the layers after it (for the default layer, the head), which
keeps the cost near one forward pass.

mmaction2's own code (gradcam_utils) averages the gradients of each frame over that frame's
positions only, giving each frame its own channel weights; `average='frame'` computes that
variant. The default follows the issue's statement (all frames and positions). At the default
layer the two are the same map: the head (pool, mean over frames, fc) gives every frame the same
gradient; they differ only at earlier layers, where later shifts mix the frames.
"""
import numpy as np

__all__ = ["grad_cam", "evidence_share", "overlay", "EPS"]

EPS = 1e-6


def _layer_of(model, layer):
    if layer is None:
        return model.backbone
    if isinstance(layer, str):
        found = dict(model.named_sublayers())
        if layer not in found:
            names = [n for n in found if n.count(".") <= 1][:8]
            raise ValueError(f"the model has no layer '{layer}' (e.g. {', '.join(names)}).")
        return found[layer]
    return layer


def grad_cam(model, clip, target=None, layer=None, average="clip"):
    """Grad-CAM maps float32 [T, H, W] in [0, 1] of `clip` ([T, 3, H, W] or [1, T, 3, H, W],
    normalised as the model's test pipeline gives it; T a multiple of the model's num_seg) for
    class `target` (default: the top class). `layer`: a sublayer or its name (default: the
    backbone, i.e. its last stage); its output must be [N*T, C, h, w] (NCHW, or NHWC in an NHWC
    backbone). `average`: 'clip' (the issue's definition: channel weights averaged over all
    frames and positions) or 'frame' (each frame's own weights, averaged over its positions, as
    mmaction2's gradcam_utils code computes them)."""
    if average not in ("clip", "frame"):
        raise ValueError(f"average must be 'clip' or 'frame', got '{average}'.")
    import paddle
    import paddle.nn.functional as F
    clip = np.asarray(clip.numpy() if isinstance(clip, paddle.Tensor) else clip, np.float32)
    if clip.ndim == 4:
        clip = clip[None]
    if clip.ndim != 5 or clip.shape[0] != 1 or clip.shape[2] != 3:
        raise ValueError(f"grad_cam takes one clip [T, 3, H, W], got shape {list(clip.shape)}.")
    frames, height, width = clip.shape[1], clip.shape[3], clip.shape[4]
    target_layer = _layer_of(model, layer)
    channels_last = (target_layer is not model.backbone
                     and getattr(model.backbone, "data_format", "NCHW") == "NHWC")
    grabbed = {}

    def keep(_layer, _inputs, output):
        leaf = output.detach()
        leaf.stop_gradient = False            # the rest of the network starts from this leaf
        grabbed["act"] = leaf
        return leaf

    params = [p for p in model.parameters() if not p.stop_gradient]
    was_training = model.training
    handle = target_layer.register_forward_post_hook(keep)
    model.eval()
    for p in params:
        p.stop_gradient = True
    try:
        logits = model(paddle.to_tensor(clip))
        if "act" not in grabbed:
            raise ValueError("the chosen layer did not run in the model's forward pass.")
        index = int(paddle.argmax(logits[0]).item()) if target is None else int(target)
        if not 0 <= index < logits.shape[-1]:
            raise ValueError(f"target class {target} is outside the model's "
                             f"{logits.shape[-1]} classes.")
        act = grabbed["act"]
        grad, = paddle.grad(logits[0, index], act)
    finally:
        handle.remove()
        for p in params:
            p.stop_gradient = False
        if was_training:
            model.train()
    act, grad = act.detach(), grad.detach()
    if channels_last:
        act, grad = act.transpose([0, 3, 1, 2]), grad.transpose([0, 3, 1, 2])
    if act.ndim != 4 or act.shape[0] != frames:
        raise ValueError(f"the layer's output {list(act.shape)} is not one map per frame "
                         f"[{frames}, C, h, w].")
    if average == "clip":
        weights = paddle.mean(grad, axis=[0, 2, 3])                   # [C]: frames and positions
        cam = F.relu(paddle.einsum("c,tchw->thw", weights, act))      # [T, h, w]
    else:
        weights = paddle.mean(grad, axis=[2, 3])                      # [T, C]: positions
        cam = F.relu(paddle.einsum("tc,tchw->thw", weights, act))
    cam = F.interpolate(cam[:, None], size=[height, width], mode="bilinear",
                        align_corners=False)[:, 0]
    cam = cam.numpy().astype(np.float32)
    low, high = float(cam.min()), float(cam.max())
    return ((cam - low) / (high - low + EPS)).astype(np.float32)


def evidence_share(cam):
    """Each frame's share of the clip's map (sums to 1; equal shares for an all-zero map)."""
    totals = np.asarray(cam, np.float64).reshape(len(cam), -1).sum(axis=1)
    if totals.sum() <= 0:
        return np.full(len(totals), 1.0 / len(totals))
    return totals / totals.sum()


def overlay(frames_rgb, cam, alpha=0.5):
    """uint8 [T, H, W, 3]: each RGB frame blended with its map in the JET colour map."""
    import cv2
    frames_rgb = np.asarray(frames_rgb, np.uint8)
    out = np.empty_like(frames_rgb)
    for t, (frame, m) in enumerate(zip(frames_rgb, cam)):
        heat = cv2.applyColorMap(np.uint8(np.clip(m, 0, 1) * 255), cv2.COLORMAP_JET)
        heat = cv2.resize(heat, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        out[t] = cv2.addWeighted(frame, 1 - alpha, heat[..., ::-1], alpha, 0)
    return out
