"""Registered weights: the published files a name stands for, as data.

Each entry records where the file lives, its format, what it was trained on, and the accuracy
its authors published with the protocol they measured it with (copied from their model zoo
pages; not reproduced here). `sha256` is the full digest when known, else the prefix the file
name carries (mmaction2 and torchvision name files `...-<first 8 hex digits of sha256>.pth`);
the original TSM code's and PaddleVideo's files carry none and are not verified.
`ImageNet` is an alias resolved from the model's depth.

Sources: PaddleVideo's model zoo (TSM); mit-han-lab/temporal-shift-module README (Kinetics-400
uniform and dense sampling, Something-Something V1/V2); mmaction2 configs/recognition/tsm
README.md (1.x) and metafile.yml (0.x, the Something-Something V1 files); torchvision
models/resnet.py and models/mobilenetv2.py (IMAGENET1K_V1 weights). MobileNetV2 entries
(arch 'mobilenetv2', no depth): see the comment above them.
"""
from dataclasses import dataclass

__all__ = ["WeightsSpec", "PRETRAINED", "FORMATS", "describe", "alias_target"]

FORMATS = {
    "paddle": "Paddle state dict (PaddleVideo's keys)",
    "mit-han-lab": "PyTorch, the original TSM code's checkpoint (converted on load)",
    "mmaction2": "PyTorch, mmaction2's checkpoint (converted on load)",
    "torchvision": "PyTorch, torchvision's ImageNet ResNet or MobileNetV2 (converted on load)",
    "alias": "a name resolved from the model's depth",
}


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file: where it lives and what is known about it."""
    name: str
    url: str
    description: str
    sha256: str = None       # full digest, or the >= 8 hex prefix a file name carries
    size: int = None         # bytes, verified after download when known
    format: str = "paddle"   # a key of FORMATS
    dataset: str = None
    depth: int = None
    classes: int = None
    segments: int = None     # frames per clip it was tested with
    protocol: str = None     # how the published accuracy was measured
    top1: str = None         # the published top-1, as published
    by_depth: tuple = None   # alias only: ((depth, registered name), ...)
    arch: str = "resnet"     # 'resnet' (depth says which) or 'mobilenetv2' (width 1.0)
    config: str = None       # the network's config, relative to the checkout (predict -w NAME)
    labels: str = None       # its class names: a shipped list (package:NAME, paddlevideo/labels/)


_PV = "https://videotag.bj.bcebos.com/PaddleVideo-release2.1/TSM/"
_MHL = "https://hanlab.mit.edu/projects/tsm/models/"
_MM1 = "https://download.openmmlab.com/mmaction/v1.0/recognition/tsm/"
_MM0 = "https://download.openmmlab.com/mmaction/recognition/tsm/"
_TV = "https://download.pytorch.org/models/"

_K400, _SSV1, _SSV2 = "Kinetics-400", "Something-Something V1", "Something-Something V2"
_PV_TEST = "8 frames, 1 clip, centre crop 224 (uniform sampling)"
_MHL_UNIFORM = "uniform sampling; 1 clip, centre crop 224 (1 crop) or 10 crops"
_MHL_DENSE = "dense sampling, 10 clips x 3 crops at full resolution (non-local protocol)"
_MHL_STH = "centre crop 224 x 1 clip (efficient); full resolution x 2 clips (accurate)"
_TV_TEST = "ImageNet-1K val, resize 256, centre crop 224"
_K400_CFG = "configs/recognition/tsm/tsm_k400_videos.yaml"
_UCF_CFG = "configs/recognition/tsm/tsm_ucf101_videos.yaml"
_SSV2_CFG = "configs/recognition/tsm/tsm_sthv2_videos.yaml"


def _mm1(config, stamp):
    return f"{_MM1}{config}/{config}_{stamp}.pth", stamp.rsplit("-", 1)[1]


def _mm0(folder, file_stem, stamp):
    return f"{_MM0}{folder}/{file_stem}_{stamp}.pth", stamp.rsplit("-", 1)[1]


def _spec(name, url_and_hash, description, **fields):
    url, sha = url_and_hash if isinstance(url_and_hash, tuple) else (url_and_hash, None)
    return WeightsSpec(name, url, description, sha256=sha, **fields)


_ENTRIES = [
    # --- PaddleVideo (Paddle format) ------------------------------------------------------
    _spec("ResNet50_pretrain",
          "https://videotag.bj.bcebos.com/PaddleVideo/PretrainModel/ResNet50_pretrain.pdparams",
          "ImageNet ResNet-50 (PaddleVideo's TSM initialisation), backbone-relative keys",
          dataset="ImageNet", depth=50),
    _spec("TSM_k400", _PV + "TSM_k400.pdparams",
          "PaddleVideo TSM-R50 on Kinetics-400, 71.06 top-1 (8x224, 1 clip x 1 centre crop)",
          dataset=_K400, depth=50, classes=400, segments=8, protocol=_PV_TEST, top1="71.06",
          config=_K400_CFG, labels="package:kinetics400"),
    _spec("TSM_ucf101_nchw", _PV + "TSM_ucf101_nchw.pdparams",
          "PaddleVideo TSM-R50 on UCF101 split 1, 94.42 top-1",
          dataset="UCF101 split 1", depth=50, classes=101, segments=8, protocol=_PV_TEST,
          top1="94.42",
          config=_UCF_CFG, labels="package:ucf101"),
    _spec("TSM_ucf101_amp_nchw", _PV + "TSM_ucf101_amp_nchw.pdparams",
          "PaddleVideo TSM-R50 on UCF101 split 1 trained with AMP, 94.40 top-1",
          dataset="UCF101 split 1", depth=50, classes=101, segments=8, protocol=_PV_TEST,
          top1="94.40",
          config=_UCF_CFG, labels="package:ucf101"),
    _spec("TSM_ucf101_amp_nhwc", _PV + "TSM_ucf101_amp_nhwc.pdparams",
          "PaddleVideo TSM-R50 on UCF101 split 1 trained with AMP and NHWC, 94.55 top-1",
          dataset="UCF101 split 1", depth=50, classes=101, segments=8, protocol=_PV_TEST,
          top1="94.55"),
    # --- the original TSM code (mit-han-lab), PyTorch legacy format -------------------------
    _spec("TSM_mhl_k400_r50_8f", _MHL + "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
          "original TSM code, TSM-R50 on Kinetics-400, 8 frames, uniform sampling",
          format="mit-han-lab", dataset=_K400, depth=50, classes=400, segments=8,
          protocol=_MHL_UNIFORM, top1="71.2 (1 crop); 72.8 (10 crops)",
          config=_K400_CFG, labels="package:kinetics400"),
    _spec("TSM_mhl_k400_r50_16f", _MHL + "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment16_e50.pth",
          "original TSM code, TSM-R50 on Kinetics-400, 16 frames, uniform sampling",
          format="mit-han-lab", dataset=_K400, depth=50, classes=400, segments=16,
          protocol=_MHL_UNIFORM, top1="72.6 (1 crop); 73.7 (10 crops)"),
    _spec("TSM_mhl_k400_r50_8f_dense",
          _MHL + "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth",
          "original TSM code, TSM-R50 on Kinetics-400, 8 frames, dense sampling",
          format="mit-han-lab", dataset=_K400, depth=50, classes=400, segments=8,
          protocol=_MHL_DENSE, top1="74.1"),
    _spec("TSN_mhl_k400_r50", _MHL + "TSM_kinetics_RGB_resnet50_avg_segment5_e50.pth",
          "original TSM code, TSN-R50 (no shift) on Kinetics-400, trained on 5 frames, tested on 8",
          format="mit-han-lab", dataset=_K400, depth=50, classes=400, segments=8,
          protocol=_MHL_UNIFORM, top1="68.8 (1 crop); 69.9 (10 crops)"),
    _spec("TSM_mhl_sthv1_r50_8f", _MHL + "TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth",
          "original TSM code, TSM-R50 on Something-Something V1, 8 frames",
          format="mit-han-lab", dataset=_SSV1, depth=50, classes=174, segments=8,
          protocol=_MHL_STH, top1="45.6 (efficient); 47.2 (accurate)"),
    _spec("TSM_mhl_sthv1_r50_16f", _MHL + "TSM_something_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth",
          "original TSM code, TSM-R50 on Something-Something V1, 16 frames",
          format="mit-han-lab", dataset=_SSV1, depth=50, classes=174, segments=16,
          protocol=_MHL_STH, top1="47.2 (efficient); 48.4 (accurate)"),
    _spec("TSM_mhl_sthv1_r101_8f", _MHL + "TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth",
          "original TSM code, TSM-R101 on Something-Something V1, 8 frames",
          format="mit-han-lab", dataset=_SSV1, depth=101, classes=174, segments=8,
          protocol=_MHL_STH, top1="46.9 (efficient); 48.7 (accurate)"),
    _spec("TSM_mhl_sthv2_r50_8f", _MHL + "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth",
          "original TSM code, TSM-R50 on Something-Something V2, 8 frames",
          format="mit-han-lab", dataset=_SSV2, depth=50, classes=174, segments=8,
          protocol="full resolution x 2 clips", top1="61.2",
          config=_SSV2_CFG, labels="package:sthv2"),
    _spec("TSM_mhl_sthv2_r50_16f", _MHL + "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth",
          "original TSM code, TSM-R50 on Something-Something V2, 16 frames",
          format="mit-han-lab", dataset=_SSV2, depth=50, classes=174, segments=16,
          protocol="full resolution x 2 clips", top1="63.1"),
    _spec("TSM_mhl_sthv2_r101_8f", _MHL + "TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth",
          "original TSM code, TSM-R101 on Something-Something V2, 8 frames",
          format="mit-han-lab", dataset=_SSV2, depth=101, classes=174, segments=8,
          protocol="full resolution x 2 clips", top1="63.3"),
    # --- mmaction2 (PyTorch zip format; the file name ends in the sha256 prefix) ----------
    _spec("TSM_mm_k400_r50_8f",
          _mm1("tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb", "20220831-64d69186"),
          "mmaction2 TSM-R50 on Kinetics-400, 1x1x8, 50 epochs",
          format="mmaction2", dataset=_K400, depth=50, classes=400, segments=8,
          protocol="8 clips x 10 crops (mmaction2's test protocol)", top1="73.18",
          config=_K400_CFG, labels="package:kinetics400"),
    _spec("TSM_mm_k400_r50_16f",
          _mm1("tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_kinetics400-rgb", "20220831-042b1748"),
          "mmaction2 TSM-R50 on Kinetics-400, 1x1x16, 50 epochs",
          format="mmaction2", dataset=_K400, depth=50, classes=400, segments=16,
          protocol="16 clips x 10 crops (mmaction2's test protocol)", top1="75.12"),
    _spec("TSM_mm_k400_r50_8f_dense",
          _mm1("tsm_imagenet-pretrained-r50_8xb16-dense-1x1x8-50e_kinetics400-rgb", "20220831-f55d3c2b"),
          "mmaction2 TSM-R50 on Kinetics-400, dense 1x1x8, 50 epochs",
          format="mmaction2", dataset=_K400, depth=50, classes=400, segments=8,
          protocol="8 clips x 10 crops, dense sampling (mmaction2's test protocol)", top1="73.38"),
    _spec("TSM_mm_sthv1_r50_8f",
          _mm0("tsm_r50_1x1x8_50e_sthv1_rgb", "tsm_r50_1x1x8_50e_sthv1_rgb", "20210203-01dce462"),
          "mmaction2 (0.x) TSM-R50 on Something-Something V1, 1x1x8",
          format="mmaction2", dataset=_SSV1, depth=50, classes=174, segments=8,
          protocol=_MHL_STH, top1="45.58 (efficient); 47.70 (accurate)"),
    _spec("TSM_mm_sthv1_r50_16f",
          _mm0("tsm_r50_1x1x16_50e_sthv1_rgb", "tsm_r50_1x1x16_50e_sthv1_rgb", "20201010-17fa49f6"),
          "mmaction2 (0.x) TSM-R50 on Something-Something V1, 1x1x16",
          format="mmaction2", dataset=_SSV1, depth=50, classes=174, segments=16,
          protocol=_MHL_STH, top1="47.62 (efficient); 49.28 (accurate)"),
    _spec("TSM_mm_sthv1_r101_8f",
          _mm0("tsm_r101_1x1x8_50e_sthv1_rgb", "tsm_r101_1x1x8_50e_sthv1_rgb", "20201010-43fedf2e"),
          "mmaction2 (0.x) TSM-R101 on Something-Something V1, 1x1x8",
          format="mmaction2", dataset=_SSV1, depth=101, classes=174, segments=8,
          protocol=_MHL_STH, top1="45.72 (efficient); 48.43 (accurate)"),
    _spec("TSM_mm_sthv2_r50_8f",
          _mm1("tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb", "20230317-be0fc26e"),
          "mmaction2 TSM-R50 on Something-Something V2, 1x1x8",
          format="mmaction2", dataset=_SSV2, depth=50, classes=174, segments=8,
          protocol="8 clips x 3 crops (mmaction2's test protocol)", top1="62.72",
          config=_SSV2_CFG, labels="package:sthv2"),
    _spec("TSM_mm_sthv2_r50_16f",
          _mm1("tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb", "20230317-ec6696ad"),
          "mmaction2 TSM-R50 on Something-Something V2, 1x1x16",
          format="mmaction2", dataset=_SSV2, depth=50, classes=174, segments=16,
          protocol="16 clips x 3 crops (mmaction2's test protocol)", top1="64.16"),
    _spec("TSM_mm_sthv2_r101_8f",
          _mm1("tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb", "20230320-efcc0d1b"),
          "mmaction2 TSM-R101 on Something-Something V2, 1x1x8",
          format="mmaction2", dataset=_SSV2, depth=101, classes=174, segments=8,
          protocol="8 clips x 3 crops (mmaction2's test protocol)", top1="63.70"),
    # --- torchvision ImageNet ResNets (IMAGENET1K_V1), for ImageNet initialisation ---------
    _spec("ResNet18_torchvision", (_TV + "resnet18-f37072fd.pth", "f37072fd"),
          "torchvision ImageNet ResNet-18 (IMAGENET1K_V1)", format="torchvision",
          dataset="ImageNet", depth=18, protocol=_TV_TEST, top1="69.758"),
    _spec("ResNet34_torchvision", (_TV + "resnet34-b627a593.pth", "b627a593"),
          "torchvision ImageNet ResNet-34 (IMAGENET1K_V1)", format="torchvision",
          dataset="ImageNet", depth=34, protocol=_TV_TEST, top1="73.314"),
    _spec("ResNet50_torchvision", (_TV + "resnet50-0676ba61.pth", "0676ba61"),
          "torchvision ImageNet ResNet-50 (IMAGENET1K_V1)", format="torchvision",
          dataset="ImageNet", depth=50, protocol=_TV_TEST, top1="76.130"),
    _spec("ResNet101_torchvision", (_TV + "resnet101-63fe2227.pth", "63fe2227"),
          "torchvision ImageNet ResNet-101 (IMAGENET1K_V1)", format="torchvision",
          dataset="ImageNet", depth=101, protocol=_TV_TEST, top1="77.374"),
    _spec("ResNet152_torchvision", (_TV + "resnet152-394f9c45.pth", "394f9c45"),
          "torchvision ImageNet ResNet-152 (IMAGENET1K_V1)", format="torchvision",
          dataset="ImageNet", depth=152, protocol=_TV_TEST, top1="78.312"),
    # --- MobileNetV2 TSM (the original's online gesture demo and Kinetics file, mmaction2's) ---
    # Sources: mit-han-lab/temporal-shift-module README (Kinetics dense table: TSM MobileNetV2,
    # 8 * 10 clips, 69.5%) and online_demo/main.py (the Jester file's URL; no accuracy is
    # published for it); mmaction2 0.x configs/recognition/tsm/README.md (Kinetics-400 table:
    # tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb, short side 320, 68.46 / 88.64).
    _spec("TSM_mhl_jester_mbv2_online", _MHL + "mobilenetv2_jester_online.pth.tar",
          "original TSM online gesture demo: unidirectional TSM-MobileNetV2 on Jester, frame by "
          "frame", format="mit-han-lab", dataset="Jester", classes=27, arch="mobilenetv2",
          protocol="online, one frame at a time from zero shift buffers (no accuracy published)"),
    _spec("TSM_mhl_k400_mbv2_8f_dense",
          _MHL + "TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_dense.pth",
          "original TSM code, TSM-MobileNetV2 on Kinetics-400, 8 frames, dense sampling",
          format="mit-han-lab", dataset=_K400, classes=400, segments=8, arch="mobilenetv2",
          protocol=_MHL_DENSE, top1="69.5"),
    _spec("TSM_mm_k400_mbv2_8f_dense",
          _mm0("tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb",
               "tsm_mobilenetv2_dense_320p_1x1x8_100e_kinetics400_rgb", "20210202-61135809"),
          "mmaction2 (0.x) TSM-MobileNetV2 on Kinetics-400, dense 1x1x8, 100 epochs",
          format="mmaction2", dataset=_K400, classes=400, segments=8, arch="mobilenetv2",
          protocol="dense sampling, frames short side 320 (mmaction2 0.x's test config)",
          top1="68.46"),
    _spec("MobileNetV2_torchvision", (_TV + "mobilenet_v2-b0353104.pth", "b0353104"),
          "torchvision ImageNet MobileNetV2 (IMAGENET1K_V1), the MobileNetV2 TSM initialisation",
          format="torchvision", dataset="ImageNet", arch="mobilenetv2", protocol=_TV_TEST,
          top1="71.878"),
    WeightsSpec("ImageNet", "", "ImageNet weights of the model's depth", format="alias",
                dataset="ImageNet",
                by_depth=((18, "ResNet18_torchvision"), (34, "ResNet34_torchvision"),
                          (50, "ResNet50_pretrain"), (101, "ResNet101_torchvision"),
                          (152, "ResNet152_torchvision"))),
]

PRETRAINED = {spec.name: spec for spec in _ENTRIES}


def alias_target(spec, depth):
    """The registered name an alias stands for at `depth`, or None."""
    return dict(spec.by_depth or ()).get(depth)


def describe(names=None):
    """Lines describing the registered weights (all, or `names` in full)."""
    if names:
        lines = []
        for name in names:
            spec = PRETRAINED[name]
            lines.append(name)
            for label, value in (("description", spec.description), ("url", spec.url),
                                 ("format", FORMATS.get(spec.format, spec.format)),
                                 ("dataset", spec.dataset), ("depth", spec.depth),
                                 ("classes", spec.classes), ("frames", spec.segments),
                                 ("published top-1", spec.top1), ("protocol", spec.protocol),
                                 ("config", spec.config), ("label list", spec.labels),
                                 ("sha256", None if spec.format == "alias" else
                                  spec.sha256 or "not published (the file is not verified)"),
                                 ("by depth", ", ".join(f"{d}: {n}" for d, n in spec.by_depth)
                                  if spec.by_depth else None)):
                if value not in (None, ""):
                    lines.append(f"  {label + ':':17s}{value}")
        return lines
    header = ("name", "format", "data", "depth", "classes", "frames", "published top-1")
    rows = [(s.name, s.format, s.dataset or "",
             str(s.depth or ("MobileNetV2" if s.arch == "mobilenetv2" else "")), str(s.classes or ""),
             str(s.segments or ""), s.top1 or ("by depth" if s.by_depth else ""))
            for s in PRETRAINED.values()]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{w}s}}" for w in widths)
    return [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths))] + \
        [fmt.format(*r).rstrip() for r in rows]
