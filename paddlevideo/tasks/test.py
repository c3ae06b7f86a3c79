"""`main.py --test`: score a checkpoint on the test list and write what a user needs to trust it.

Reports top-1, top-5, mean class accuracy, how many videos were evaluated and how many failed,
and the protocol (segments x clips x crops, input size). Writes to output_dir:
`test_results.json`, `predictions.jsonl` (one line per video), `confusion_matrix.png` and
`test.log`.
"""
import json
import logging
import os

from ..metrics import build_metric
from ..metrics.classification import write_confusion_png
from ..modeling import build_model, load_weights
from ..utils.config import AttrDict, ConfigError
from ..utils.logger import setup_logger
from .common import (TaskError, describe_threads, make_loader, output_dir_of, setup_device,
                     views_of, world, evaluate)
from .runner import make_runner

__all__ = ["test_model"]


logger = logging.getLogger("paddlevideo")


def _num_classes(cfg):
    head = (cfg.get("MODEL") or {}).get("head") or {}
    if "num_classes" not in head:
        raise ConfigError("MODEL.head needs num_classes.")
    return int(head["num_classes"])


def _class_names(cfg, dataset, num_classes):
    """Names for the report: the data set's, or a `label_list.txt` beside the test list (the
    demo set and data/ tools write one); None when neither fits the model's classes."""
    names = getattr(dataset, "class_names", None)
    if names:
        return list(names)
    test_list = (cfg.get("DATASET") or {}).get("test", {}).get("file_path")
    if not test_list:
        return None
    candidate = os.path.join(os.path.dirname(os.path.abspath(str(test_list))), "label_list.txt")
    if not os.path.isfile(candidate):
        return None
    from ..deploy.labels import load_label_list
    try:
        return load_label_list(candidate, num_classes)
    except Exception as e:       # a list for another data set: report indices only
        logger.warning(f"[TEST] not using {candidate} for class names: {e}")
        return None


def _engine_threads():
    """Threads for the inference engine: this process's share from tools/main.py or the user's
    OMP_NUM_THREADS; None (all cores) when the only setting is the 1 that `import paddle` wrote."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if os.environ.get("PADDLEVIDEO_OMP_AUTO") == "1" or (value.isdigit() and int(value) > 1):
        return int(value)
    return None


def test_model(cfg, weights, engine="auto", output_dir=None):
    """Evaluate `weights` with the config's test data and METRIC; return the results dict."""
    if not weights:
        raise TaskError("--test needs the weights to evaluate: add -w output/TSM/TSM_best.pdparams "
                        "(or another .pdparams file, URL or registered name).")
    device = setup_device()
    rank, world_size = world()
    out = output_dir or output_dir_of(cfg)
    setup_logger(out, rank, cfg.get("log_level", "INFO"), filename="test.log")
    logger.info(describe_threads(device))
    threads = _engine_threads()

    dataset, loader = make_loader(cfg, "test", seed=int(cfg.get("seed") or 0),
                                  distributed=world_size > 1)
    model = build_model(cfg.MODEL, load_pretrained=False)
    load_weights(model, weights, require_head=True)
    model.eval()

    metric_cfg = cfg.get("METRIC") or AttrDict(name="CenterCropMetric")
    num_classes = _num_classes(cfg)
    metric = build_metric(metric_cfg, num_classes, _class_names(cfg, dataset, num_classes))
    clips, crops = views_of(dataset)
    metric.check_views(clips, crops)

    from ..loader import FailureTracker
    tracker = FailureTracker(dataset, max_bad_ratio=1.0, mode="test")
    holder = {}

    def build_runner(shape):
        holder["runner"] = make_runner(model, shape, engine, threads)
        logger.info(f"[TEST] engine: {holder['runner'].name}; protocol: "
                    f"{metric.protocol(model.num_seg, shape[-2], shape[-1])}; "
                    f"{len(dataset)} videos, batch {loader.batch_sampler.batch_size if hasattr(loader, 'batch_sampler') else '?'}")
        return holder["runner"]

    shape = evaluate(lambda imgs: None, loader, metric, tracker, mode="test",
                     log_interval=int(cfg.get("log_interval", 20)), on_first_batch=build_runner)
    runner = holder.get("runner")
    if runner is not None and hasattr(runner, "close"):
        runner.close()
    metric.gather()
    if rank != 0:
        return None
    res = metric.accumulate()
    protocol = metric.protocol(model.num_seg, shape[-2], shape[-1]) if shape else "no video loaded"
    results = {"weights": str(weights), "top1": res["top1"], "top5": res["top5"],
               "mean_class_acc": res["mean_class_acc"], "evaluated": res["evaluated"],
               "failed": res["failed"], "failed_files": [dataset.path(i) for i in res["failed_ids"]],
               "protocol": protocol, "engine": runner.name if runner else None,
               "num_seg": model.num_seg, "clips": metric.clips, "crops": metric.crops,
               "input_size": shape[-2:] if shape else None}
    os.makedirs(out, exist_ok=True)
    metric.write_predictions(os.path.join(out, "predictions.jsonl"), dataset.path)
    write_confusion_png(res["confusion"], os.path.join(out, "confusion_matrix.png"),
                        metric.class_names)
    with open(os.path.join(out, "test_results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    if res["failed"]:
        logger.warning("[TEST] " + tracker.report())
    logger.info(f"[TEST] protocol: {protocol}")
    logger.info(f"[TEST] evaluated {res['evaluated']} videos, {res['failed']} failed to load")
    logger.info(f"[TEST] finished, avg_acc1={res['top1']:.5f}, avg_acc5={res['top5']:.5f}, "
                f"mean_class_acc={res['mean_class_acc']:.5f}")
    logger.info(f"[TEST] wrote {out}/predictions.jsonl, confusion_matrix.png, test_results.json")
    return results
