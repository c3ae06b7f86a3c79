"""`main.py --test`: score a checkpoint on the test list and write what a user needs to trust it.

Reports top-1, top-5, mean class accuracy, how many videos were evaluated and how many failed,
the protocol (segments x clips x crops, input size) and the worst confusions. Results are keyed
by the weights, the test list and the protocol: `W.pdparams` scored on `val.list` with 8
segments x 1 clip x 1 crop at 224 px go to `<output_dir>/test_W__val__8x1x1_224/`:
`test_results.json` (which names the weights, the list and the protocol, each with its sha256),
`predictions.jsonl` (one line per video), `confusion_matrix.png` and `test.log`. Testing the same
weights on the same list with the same protocol again replaces their results and says so; a
folder of that name holding another test's results (another file named W, the list edited) is
left alone and this test gets the name plus 8 hex digits of its key, so no test overwrites
another's. Nothing is created before the model, data and engine are ready; a test that fails
(or finds more unreadable videos than DATASET.max_bad_ratio allows) writes no result file and
removes the folder it created, and its error is on the terminal.
"""
import json
import logging
import os

from ..loader import TooManyBadFiles
from ..metrics import build_metric, worst_pairs, write_confusion_png
from ..modeling.builder import model_from_config
from ..modeling.weights import WeightsError, resolve_weights
from ..utils.config import AttrDict, ConfigError
from ..utils.label_files import PACKAGE_PREFIX
from ..utils.logger import setup_logger
from .common import (TaskError, describe_threads, make_loader, max_bad_ratio, output_dir_of,
                     setup_device, views_of, world, evaluate)
from .results_dir import (missing_folders, remove_created, results_dir_for, say_where,
                          sha256_of, test_set_identity, protocol_id, weights_stem)
from .runner import make_runner

__all__ = ["test_model"]

logger = logging.getLogger("paddlevideo")

RESULT_FILES = ("test_results.json", "predictions.jsonl", "confusion_matrix.png")
_SHOW_PAIRS = 5          # worst confusions in the log; the JSON keeps up to 20


def _num_classes(cfg):
    head = (cfg.get("MODEL") or {}).get("head") or {}
    if "num_classes" not in head:
        raise ConfigError("MODEL.head needs num_classes.")
    return int(head["num_classes"])


# ----- what the report calls the classes -------------------------------------------------------
def _read_label_list(path, num_classes, where):
    from ..deploy.errors import DeployError
    from ..deploy.labels import load_label_list
    try:
        return load_label_list(path, num_classes)
    except DeployError as e:
        raise ConfigError(f"{where}: {e}") from None


def _class_names(cfg, num_classes):
    """(names or None, where they came from): DATASET.label_list, else the one `*label_list.txt`
    beside the test list, else None (indices). A list with another count than the head is an
    error: its names would be wrong. A named list that does not exist (lists moved with -o, data
    not prepared here) only costs the names, and says so; the scores do not depend on them."""
    section = cfg.get("DATASET") or {}
    path = section.get("label_list")
    if path:
        where = section.where("label_list") if isinstance(section, AttrDict) else \
            "DATASET.label_list"
        if str(path).startswith(PACKAGE_PREFIX) or os.path.isfile(str(path)):
            return _read_label_list(str(path), num_classes, where), str(path)
        logger.warning(f"[TEST] {where}: {path} does not exist; taking the class names from a "
                       f"label list beside the test list, or reporting class indices.")
    test_list = (section.get("test") or {}).get("file_path")
    if not test_list:
        return None, None
    folder = os.path.dirname(os.path.abspath(str(test_list)))
    found = sorted(f for f in os.listdir(folder) if f.endswith("label_list.txt")) \
        if os.path.isdir(folder) else []
    if len(found) != 1:
        if found:
            logger.info(f"[TEST] class names: several label lists beside {test_list} "
                        f"({', '.join(found)}); set DATASET.label_list to name one. Reporting "
                        f"class indices.")
        return None, None
    path = os.path.join(folder, found[0])
    where = (f"{path} (found beside the test list {test_list}; set DATASET.label_list to "
             f"choose another)")
    return _read_label_list(path, num_classes, where), path


# ----- the model and its input -----------------------------------------------------------------
def _engine_threads():
    """Threads for the inference engine: this process's share from tools/main.py or the user's
    OMP_NUM_THREADS; None (all cores) when the only setting is the 1 that `import paddle` wrote."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if os.environ.get("PADDLEVIDEO_OMP_AUTO") == "1" or (value.isdigit() and int(value) > 1):
        return int(value)
    return None


def _sample_shape(dataset, num_seg):
    """[views * num_seg, 3, H, W] of every test sample, known before any video is read (views
    from the pipeline's clips and crops, H x W from its last crop, or a dataset's own
    `crop_size`); None when nothing fixes the frame size."""
    pipeline = getattr(dataset, "pipeline", None)
    size = getattr(pipeline, "crop_size", None) if pipeline is not None else None
    if size is None:
        size = getattr(dataset, "crop_size", None)
    if size is None:
        return None
    clips, crops = views_of(dataset)
    height, width = (int(v) for v in size)
    return [clips * crops * int(num_seg), 3, height, width]


def _make_runner(model, shape, engine, threads):
    """The engine for `shape`, checking that every batch has that shape."""
    if shape is None:
        if engine == "inference":
            raise TaskError("--test_engine inference needs a fixed input size, but the test "
                            "pipeline has no crop op (CenterCrop, ThreeCrop, TenCrop); add one "
                            "or use --test_engine dygraph.")
        logger.info("[TEST] the test pipeline has no crop op, so the frame size is not fixed: "
                    "testing in dygraph.")
        engine = "dygraph"
    runner = make_runner(model, shape, engine, threads)

    def run(imgs):
        if shape is not None and list(imgs.shape[1:]) != shape:
            raise TaskError(f"a test batch has samples of shape {list(imgs.shape[1:])}, but the "
                            f"pipeline promises {shape} (views x segments, 3, height, width); "
                            f"check PIPELINE.test.")
        return runner(imgs)
    return runner, run


# ----- the test --------------------------------------------------------------------------------
def test_model(cfg, weights, engine="auto", output_dir=None):
    """Evaluate `weights` with the config's test data and METRIC; return the results dict.

    `output_dir` (default: the config's) is the model's folder; the results go to a folder in it
    named after the weights, the test list and the protocol (see the module doc), returned as
    `results_dir`. Nothing is created there before the model, data and engine are ready, and a
    test that fails removes what it created (never what was there before).
    """
    if not weights:
        raise TaskError("--test needs the weights to evaluate: add -w output/tsm_k400_videos/TSM_best.pdparams "
                        "(or another .pdparams file, URL or registered name).")
    device = setup_device()
    rank, world_size = world()
    early = _EarlyLines()
    setup_logger(None, rank, cfg.get("log_level", "INFO"))
    logger.addHandler(early)
    try:
        weights_file = os.path.abspath(resolve_weights(weights))
        digest = sha256_of(weights_file)
        test = _Prepared(cfg, weights, engine, device, world_size)
    finally:
        logger.removeHandler(early)
    try:
        list_name, identity = test_set_identity(cfg)
        key = {"weights_sha256": digest, "test_list_sha256": identity["test_list_sha256"],
               "test_set": identity["test_set"], "protocol_id": test.protocol_id}
        parent = output_dir or output_dir_of(cfg)
        out, earlier = results_dir_for(parent, weights, key, list_name)
    except BaseException:
        test.close()
        raise
    created = missing_folders(out)
    log_existed = os.path.exists(os.path.join(out, "test.log"))
    try:
        setup_logger(out, rank, cfg.get("log_level", "INFO"), filename="test.log")
        early.replay()
        say_where(out, earlier, weights, list_name, key)
        identity = dict(key, weights=str(weights), weights_file=weights_file,
                        test_list=identity["test_list"])
        return _evaluate_and_write(test, cfg, identity, out, rank)
    except BaseException as e:
        _log_to_file_only(e)
        if rank == 0:
            remove_created(out, created, log_existed)
        raise
    finally:
        test.close()


class _EarlyLines(logging.Handler):
    """The log lines written before the results folder is known, for test.log once it is."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def replay(self):
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                for record in self.records:
                    handler.handle(record)
        self.records = []


def _log_to_file_only(error):
    """The error's line in test.log (the command line prints it on the terminal itself)."""
    from ..loader import ListError, LoaderError, TooManyBadFiles
    from ..utils.download import DownloadError
    expected = (ConfigError, TaskError, WeightsError, DownloadError, ListError, TooManyBadFiles,
                LoaderError)
    if isinstance(error, KeyboardInterrupt):
        message, exc_info = "stopped: interrupted (Ctrl-C)", None
    elif isinstance(error, expected):
        message, exc_info = f"error: {error}", None
    else:
        message = f"error: {type(error).__name__}: {error}"
        exc_info = (type(error), error, error.__traceback__)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message,
                                             None, exc_info))
            handler.flush()


class _Prepared:
    """Model, class names, data, metric and engine of one test, made before anything is written;
    `run` evaluates and writes the results."""

    def __init__(self, cfg, weights, engine, device, world_size):
        logger.info(describe_threads(device))
        num_classes = _num_classes(cfg)
        self.model = model = model_from_config(cfg, weights, require_head=True)
        self.class_names, self.names_from = _class_names(cfg, num_classes)
        self.dataset, self.loader = make_loader(cfg, "test", seed=int(cfg.get("seed") or 0),
                                                distributed=world_size > 1)
        self.metric = build_metric(cfg.get("METRIC") or AttrDict(name="CenterCropMetric"),
                                   num_classes, self.class_names)
        clips, crops = views_of(self.dataset)
        self.metric.check_views(clips, crops)
        expected = _sample_shape(self.dataset, model.num_seg)
        self.protocol_id = protocol_id(model.num_seg, clips, crops, expected)
        self.runner, self.batches = _make_runner(model, expected, engine, _engine_threads())
        self.runner_open = True
        batch = getattr(getattr(self.loader, "batch_sampler", None), "batch_size", "?")
        planned = (self.metric.protocol(model.num_seg, expected[-2], expected[-1]) if expected
                   else "frame size set by the videos")
        logger.info(f"[TEST] engine: {self.runner.name}; protocol: {planned}; "
                    f"{len(self.dataset)} videos, batch {batch}")

    def close(self):
        """Release the engine (once)."""
        if self.runner_open and hasattr(self.runner, "close"):
            self.runner.close()
        self.runner_open = False


def _evaluate_and_write(test, cfg, identity, out, rank):
    """Evaluate; then on rank 0 refuse more failed videos than max_bad_ratio allows (the scores
    of what survived are not the test set's), else write the results to `out` and return them
    (None on other ranks)."""
    from ..loader import FailureTracker
    model, dataset, loader, metric = test.model, test.dataset, test.loader, test.metric
    class_names, names_from, runner = test.class_names, test.names_from, test.runner
    tracker = FailureTracker(dataset, max_bad_ratio(cfg), mode="test")
    try:
        shape = evaluate(test.batches, loader, metric, tracker, mode="test",
                         log_interval=int(cfg.get("log_interval", 20)))
    finally:
        test.close()
    metric.gather()
    if rank != 0:
        return None
    res = metric.accumulate()
    tracker.add([], res["failed_ids"])         # every rank's failures, for the check and report
    try:
        tracker.check()
    except TooManyBadFiles as e:
        raise TooManyBadFiles(f"{e} No results were written.") from None
    protocol = metric.protocol(model.num_seg, shape[-2], shape[-1]) if shape else "no video loaded"
    names = metric.class_name
    pairs = [{"true": t, "pred": p, "videos": c, "share_of_true": round(s, 4),
              **({"true_name": names(t), "pred_name": names(p)} if class_names else {})}
             for t, p, c, s in worst_pairs(res["confusion"], 20)]
    results = {**identity, "results_dir": os.path.abspath(out),
               "top1": res["top1"], "top5": res["top5"],
               "mean_class_acc": res["mean_class_acc"], "evaluated": res["evaluated"],
               "failed": res["failed"], "failed_files": [dataset.path(i) for i in res["failed_ids"]],
               "protocol": protocol, "engine": runner.name, "num_seg": model.num_seg,
               "clips": metric.clips, "crops": metric.crops,
               "input_size": shape[-2:] if shape else None, "class_names_from": names_from,
               "worst_confusions": pairs}
    _write_results(out, results, metric, dataset, res["confusion"], class_names,
                   title=f"{weights_stem(identity['weights'])}: {protocol}")
    if res["failed"]:
        logger.warning("[TEST] " + tracker.report())
    for pair in pairs[:_SHOW_PAIRS]:
        logger.info(f"[TEST] confused: {names(pair['true'])} -> {names(pair['pred'])}: "
                    f"{pair['videos']} video(s), {pair['share_of_true']:.0%} of the class")
    logger.info(f"[TEST] protocol: {protocol}")
    logger.info(f"[TEST] evaluated {res['evaluated']} videos, {res['failed']} failed to load")
    logger.info(f"[TEST] finished, avg_acc1={res['top1']:.5f}, avg_acc5={res['top5']:.5f}, "
                f"mean_class_acc={res['mean_class_acc']:.5f}")
    logger.info(f"[TEST] wrote {', '.join(RESULT_FILES)} to {out}")
    return results


def _write_results(out, results, metric, dataset, confusion, class_names, title):
    """Write every result file under a temporary name, then put them all in place: earlier
    results of these weights stay whole until the new ones are complete."""
    os.makedirs(out, exist_ok=True)
    temp = {name: os.path.join(out, f".partial-{name}") for name in RESULT_FILES}
    try:
        metric.write_predictions(temp["predictions.jsonl"], dataset.path)
        shown = write_confusion_png(confusion, temp["confusion_matrix.png"], class_names,
                                    title=title)
        results["confusion_matrix_classes"] = shown
        with open(temp["test_results.json"], "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        for name, path in temp.items():
            os.replace(path, os.path.join(out, name))
    finally:
        for path in temp.values():
            if os.path.exists(path):
                os.remove(path)
