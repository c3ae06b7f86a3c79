"""Transform ops on the results dict: scaling, crops, flips, array conversion, normalisation.

Frames travel as one uint8 array `imgs` [N, H, W, 3] (N = clips*T, or clips*crops*T after a
multi-crop op). Random ops draw from `results['rng']` once per clip (each run of `clip_len` frames)
and apply that choice to all of the clip's frames.

Every resize (Scale, MultiScaleCrop) gives PIL's bilinear result, as PaddleVideo and the original
TSM code made their frames: antialiased when it shrinks (`resample.resize_frames`; within one
grey level of PIL), or PIL itself with `backend: pillow`. Crops are array slices, so
scale-then-crop is computed exactly as written.
"""
import numbers
from typing import Annotated, Literal

import numpy as np

from ...utils.typecheck import Count, Pixels, Range, Ratio
from ..decoders import DecodeError
from ..registry import PIPELINES
from .resample import resize_frames

__all__ = ["Scale", "MultiScaleCrop", "RandomCrop", "CenterCrop", "ThreeCrop", "TenCrop",
           "RandomFlip", "Image2Array", "Normalization", "current_size"]


# A crop or resize target: one side for a square, or [width, height]; a multi-scale crop's scales
# are fractions of the short side.
Size = Pixels | tuple[Pixels, Pixels]
_Scale = Annotated[float, Range(0, 1, low_open=True)]


def _pair(size, name):
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: target_size must be an int or [width, height], got {size!r}.")


def current_size(results):
    """(width, height) of the frames."""
    imgs = results["imgs"]
    return imgs.shape[2], imgs.shape[1]


def _resize(frames, out_w, out_h, backend="cv2"):
    """PIL's bilinear resize of uint8 frames [N, H, W, 3] to [N, out_h, out_w, 3]."""
    if frames.shape[2] == out_w and frames.shape[1] == out_h:
        return np.ascontiguousarray(frames)
    if backend == "pillow":
        return _pil_resize(frames, out_w, out_h)
    return resize_frames(frames, out_w, out_h)


def _crop(results, boxes, out_size=None, backend="cv2"):
    """Crop each clip (or view) by its box (x, y, w, h), then resize to out_size if given.

    `boxes` has one entry per group of `clip_len` frames, or a list of boxes per group for
    multi-crop (the views are then ordered group-major, box-minor).
    """
    imgs = results["imgs"]
    T = _clip_len(results)
    H, W = imgs.shape[1:3]
    parts = []
    for g, gboxes in enumerate(boxes):
        frames = imgs[g * T:(g + 1) * T]
        for (x, y, w, h) in (gboxes if isinstance(gboxes, list) else [gboxes]):
            if x < 0 or y < 0 or x + w > W or y + h > H:
                raise DecodeError(f"crop {w}x{h} at ({x}, {y}) does not fit in {W}x{H} frames; "
                                  f"scale the frames up first (Scale) or crop smaller.")
            ow, oh = out_size if out_size else (w, h)
            parts.append(_resize(frames[:, y:y + h, x:x + w], ow, oh, backend))
    results["imgs"] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return results


def _pil_resize(frames, out_w, out_h):
    from PIL import Image
    return np.stack([np.asarray(Image.fromarray(f).resize((out_w, out_h), Image.BILINEAR))
                     for f in frames])


def _clip_len(results):
    n = results["imgs"].shape[0]
    T = int(results.get("clip_len") or n)
    if T <= 0 or n % T:
        raise ValueError(f"{n} frames do not split into clips of {T}.")
    return T


def _groups(results):
    return results["imgs"].shape[0] // _clip_len(results)


def _rng(results):
    rng = results.get("rng")
    if rng is None:
        rng = results["rng"] = np.random.default_rng()
    return rng


def _check_backend(backend, name):
    if backend not in ("cv2", "pillow"):
        raise ValueError(f"{name}: backend must be 'cv2' or 'pillow', got {backend!r}.")


@PIPELINES.register()
class Scale:
    """Resize so the short side is `short_size` (PaddleVideo's rules).

    Input keys: `imgs`. Output keys: `imgs` uint8 [N, oh, ow, 3]. `keep_ratio` (default) sets the
    long side to int(long * short_size / short) (rounded with `do_round`); `fixed_ratio` makes it
    short_size * 4/3; `keep_ratio: False` makes the frame square. Frames whose short side already
    equals short_size are left as they are. The filter is PIL's bilinear (antialiased when
    shrinking): `backend: cv2` computes it with NumPy/OpenCV (within one grey level of PIL, faster),
    `backend: pillow` calls PIL.
    """

    def __init__(self, short_size: Pixels, fixed_ratio: bool = True, keep_ratio: bool | None = None,
                 do_round: bool = False, backend: Literal["cv2", "pillow"] = "cv2"):
        _check_backend(backend, "Scale")
        if fixed_ratio and keep_ratio:
            raise ValueError("Scale: fixed_ratio and keep_ratio cannot both be true; set "
                             "fixed_ratio: False to keep the aspect ratio.")
        self.short_size = int(short_size)
        self.fixed_ratio, self.keep_ratio = bool(fixed_ratio), keep_ratio
        self.do_round, self.backend = bool(do_round), backend

    def output_size(self, w, h):
        s = self.short_size
        if (w <= h and w == s) or (h <= w and h == s):
            return w, h
        short, long_ = (w, h) if w <= h else (h, w)
        if self.fixed_ratio:
            new_long = int(s * 4.0 / 3.0)
        elif self.keep_ratio is False:
            new_long = s
        else:
            new_long = int(long_ * s / short + 0.5) if self.do_round else int(long_ * s / short)
        return (s, new_long) if w <= h else (new_long, s)

    def __call__(self, results):
        w, h = current_size(results)
        ow, oh = self.output_size(w, h)
        results["imgs"] = _resize(results["imgs"], ow, oh, self.backend)
        return results


@PIPELINES.register()
class CenterCrop:
    """Crop the centre `target_size` square (or [w, h]) of every frame.

    Input keys: `imgs`. Output keys: `imgs` uint8 [N, th, tw, 3].
    Offsets are round((w - tw) / 2) with `do_round` (PaddleVideo's default), else (w - tw) // 2.
    """

    def __init__(self, target_size: Size, do_round: bool = True,
                 backend: Literal["cv2", "pillow"] = "cv2"):
        _check_backend(backend, "CenterCrop")
        self.tw, self.th = _pair(target_size, "CenterCrop")
        self.do_round = do_round

    def box(self, w, h):
        if w < self.tw or h < self.th:
            raise DecodeError(f"frames of {w}x{h} are smaller than the centre crop "
                              f"{self.tw}x{self.th}; add a Scale op before it or crop smaller.")
        if self.do_round:
            return int(round((w - self.tw) / 2.0)), int(round((h - self.th) / 2.0)), self.tw, self.th
        return (w - self.tw) // 2, (h - self.th) // 2, self.tw, self.th

    def __call__(self, results):
        box = self.box(*current_size(results))
        return _crop(results, [box] * _groups(results))


@PIPELINES.register()
class RandomCrop:
    """Crop a random `target_size` square (or [w, h]); one position per clip.

    Input keys: `imgs`, `rng`. Output keys: `imgs` uint8 [N, th, tw, 3].
    """

    def __init__(self, target_size: Size):
        self.tw, self.th = _pair(target_size, "RandomCrop")

    def __call__(self, results):
        w, h = current_size(results)
        if w < self.tw or h < self.th:
            raise DecodeError(f"frames of {w}x{h} are smaller than the random crop "
                              f"{self.tw}x{self.th}; add a Scale op before it or crop smaller.")
        rng = _rng(results)
        boxes = [(int(rng.integers(0, w - self.tw + 1)), int(rng.integers(0, h - self.th + 1)),
                  self.tw, self.th) for _ in range(_groups(results))]
        return _crop(results, boxes)


@PIPELINES.register()
class MultiScaleCrop:
    """TSM's training crop: a random size from `scales` of the short side, at one of a fixed grid of
    positions, resized to `target_size`; one choice per clip.

    Input keys: `imgs`, `rng`. Output keys: `imgs` uint8 [N, th, tw, 3], `crop_box` (the last box).
    Crop sides within 3 px of the target snap to it; width and height scale indices differ by at
    most `max_distort`. Positions: 4 corners and centre, plus 8 more (`more_fix_crop`) on a 4x4 grid
    of steps (image - crop) // 4; `fix_crop: False` takes any position. `allow_duplication: True`
    keeps repeated (size, position) pairs, weighting them as TSM's code did; False draws each distinct
    choice with equal chance.
    """

    def __init__(self, target_size: Size, scales: list[_Scale] | None = None,
                 max_distort: Count = 1, fix_crop: bool = True, allow_duplication: bool = False,
                 more_fix_crop: bool = True, backend: Literal["cv2", "pillow"] = "cv2"):
        _check_backend(backend, "MultiScaleCrop")
        self.tw, self.th = _pair(target_size, "MultiScaleCrop")
        self.scales = list(scales) if scales is not None else [1, 0.875, 0.75, 0.66]
        self.max_distort, self.fix_crop = int(max_distort), bool(fix_crop)
        self.allow_duplication, self.more_fix_crop = bool(allow_duplication), bool(more_fix_crop)
        self.backend = backend

    def candidates(self, w, h):
        """All (crop_w, crop_h) pairs for a w x h frame."""
        base = min(w, h)
        sizes = [int(base * s) for s in self.scales]
        ch = [self.th if abs(s - self.th) < 3 else s for s in sizes]
        cw = [self.tw if abs(s - self.tw) < 3 else s for s in sizes]
        pairs = [(cw[j], ch[i]) for i in range(len(ch)) for j in range(len(cw))
                 if abs(i - j) <= self.max_distort]
        return pairs if self.allow_duplication else list(dict.fromkeys(pairs))

    def offsets(self, w, h, cw, ch):
        ws, hs = (w - cw) // 4, (h - ch) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
        if self.more_fix_crop:
            grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        offs = [(a * ws, b * hs) for a, b in grid]
        return offs if self.allow_duplication else list(dict.fromkeys(offs))

    def sample_box(self, w, h, rng):
        pairs = self.candidates(w, h)
        cw, ch = pairs[int(rng.integers(0, len(pairs)))]
        if self.fix_crop:
            offs = self.offsets(w, h, cw, ch)
            x, y = offs[int(rng.integers(0, len(offs)))]
        else:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return x, y, cw, ch

    def __call__(self, results):
        w, h = current_size(results)
        rng = _rng(results)
        boxes = [self.sample_box(w, h, rng) for _ in range(_groups(results))]
        results["crop_box"] = boxes[-1]
        return _crop(results, boxes, (self.tw, self.th), self.backend)


def _check_fits(w, h, tw, th, op):
    """A multi-crop op needs frames at least as large as its crop."""
    if w < tw or h < th:
        raise DecodeError(f"frames of {w}x{h} are smaller than the crop {tw}x{th}; add a Scale "
                          f"op before {op}.")


@PIPELINES.register()
class ThreeCrop:
    """Test-time three crops along the long side (start, centre, end), short side centred.

    Input keys: `imgs`. Output keys: `imgs` uint8 [clips*3*T, th, tw, 3], `num_crops` = 3.
    """

    num_crops = 3

    def __init__(self, target_size: Size):
        self.tw, self.th = _pair(target_size, "ThreeCrop")

    def boxes(self, w, h):
        tw, th = self.tw, self.th
        _check_fits(w, h, tw, th, "ThreeCrop")
        if w >= h:
            y = (h - th) // 2
            return [(0, y, tw, th), ((w - tw) // 2, y, tw, th), (w - tw, y, tw, th)]
        x = (w - tw) // 2
        return [(x, 0, tw, th), (x, (h - th) // 2, tw, th), (x, h - th, tw, th)]

    def __call__(self, results):
        boxes = self.boxes(*current_size(results))
        _crop(results, [list(boxes) for _ in range(_groups(results))])
        results["num_crops"] = results.get("num_crops", 1) * 3
        return results


@PIPELINES.register()
class TenCrop:
    """Test-time ten crops: four corners and the centre, then the same five flipped.

    Input keys: `imgs`. Output keys: `imgs` uint8 [clips*10*T, th, tw, 3], `num_crops` = 10.
    """

    num_crops = 10

    def __init__(self, target_size: Size):
        self.tw, self.th = _pair(target_size, "TenCrop")

    def __call__(self, results):
        w, h = current_size(results)
        tw, th = self.tw, self.th
        _check_fits(w, h, tw, th, "TenCrop")
        five = [(0, 0, tw, th), (w - tw, 0, tw, th), (0, h - th, tw, th), (w - tw, h - th, tw, th),
                ((w - tw) // 2, (h - th) // 2, tw, th)]
        T = _clip_len(results)
        groups = _groups(results)
        _crop(results, [list(five) for _ in range(groups)])
        views = results["imgs"].reshape(groups, 5, T, th, tw, 3)
        flipped = views[:, :, :, :, ::-1]
        results["imgs"] = np.ascontiguousarray(np.concatenate([views, flipped], axis=1)
                                               .reshape(groups * 10 * T, th, tw, 3))
        results["num_crops"] = results.get("num_crops", 1) * 10
        return results


@PIPELINES.register()
class RandomFlip:
    """Flip left-right with probability `p`, one draw per clip (or view).

    Input keys: `imgs`, `rng`. Output keys: `imgs`, `flipped` (one bool per clip).
    Do not use it where direction is the class (left/right, clockwise) as in Something-Something.
    """

    def __init__(self, p: Ratio = 0.5):
        self.p = float(p)

    def __call__(self, results):
        imgs = results["imgs"]
        T = _clip_len(results)
        rng = _rng(results)
        flips = [bool(rng.random() < self.p) for _ in range(_groups(results))]
        if any(flips):
            imgs = imgs.copy() if not imgs.flags.writeable else imgs
            for g, f in enumerate(flips):
                if f:
                    imgs[g * T:(g + 1) * T] = imgs[g * T:(g + 1) * T, :, ::-1].copy()
        results["imgs"] = imgs
        results["flipped"] = flips
        return results


@PIPELINES.register()
class Image2Array:
    """uint8 frames [N, H, W, 3] to float32 [N, 3, H, W] ('tchw'), [3, N, H, W] ('cthw') or, with
    `transpose: False`, [N, H, W, 3].

    Input keys: `imgs`. Output keys: `imgs` float32 (values still 0..255).
    """

    def __init__(self, transpose: bool = True, data_format: Literal["tchw", "cthw"] = "tchw"):
        if data_format not in ("tchw", "cthw"):
            raise ValueError(f"Image2Array: data_format must be 'tchw' or 'cthw', got {data_format!r}.")
        self.transpose, self.data_format = bool(transpose), data_format

    def __call__(self, results):
        imgs = results["imgs"]
        if self.transpose:
            axes = (0, 3, 1, 2) if self.data_format == "tchw" else (3, 0, 1, 2)
            imgs = imgs.transpose(axes)
        results["imgs"] = np.ascontiguousarray(imgs, dtype=np.float32)
        return results


@PIPELINES.register()
class Normalization:
    """(x / 255 - mean) / std per channel, computed as (x - 255 mean) * 1/(255 std) in place.

    Input keys: `imgs` (float32 from Image2Array, or uint8 [N, H, W, 3]). Output keys: `imgs` float32.
    `tensor_shape` is the shape mean and std broadcast with ([3, 1, 1] for [N, 3, H, W]); `inplace`
    is accepted for PaddleVideo configs (this op always works in place on its own float copy).
    """

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float],
                 tensor_shape: tuple[int, ...] = (3, 1, 1), inplace: bool = False):
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if mean.size != 3 or std.size != 3 or np.any(std <= 0):
            raise ValueError(f"Normalization: mean and std need 3 values and std > 0, got "
                             f"{mean.tolist()} and {std.tolist()}.")
        self.shift = (mean * 255.0).reshape(tensor_shape)
        self.scale = (1.0 / (std * 255.0)).reshape(tensor_shape).astype(np.float32)

    def __call__(self, results):
        imgs = results["imgs"]
        if imgs.dtype != np.float32:
            imgs = imgs.astype(np.float32)
            shift, scale = self.shift.reshape(3), self.scale.reshape(3)
        else:
            shift, scale = self.shift, self.scale
        imgs -= shift
        imgs *= scale
        results["imgs"] = imgs
        return results
