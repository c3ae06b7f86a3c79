"""Class names for predictions: read a label list, find a config's, fall back to 'class_<i>'."""
import logging
import os

from ..utils.label_files import resolve_label_path
from .errors import DeployError

__all__ = ["load_label_list", "default_labels", "config_label_list"]

logger = logging.getLogger("paddlevideo")


def load_label_list(path, num_classes=None):
    """Names from a file of `INDEX NAME` lines (Kinetics' format) or one name per line.

    With `num_classes`, the list must have exactly that many names: a 400-name list on a
    101-class model would print wrong names, which is worse than none. `package:NAME` is a list
    the package ships (paddlevideo/labels/NAME.txt).
    """
    try:
        path = resolve_label_path(path)
    except ValueError as e:
        raise DeployError(str(e)) from None
    if not os.path.isfile(path):
        raise DeployError(f"label list not found: {path} (relative paths start from the folder "
                          f"you run in, normally the repository root).")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    names = {}
    indexed = all(line.split(maxsplit=1)[0].isdigit() and len(line.split(maxsplit=1)) == 2
                  for line in lines)
    for i, line in enumerate(lines):
        if indexed:
            index, name = line.split(maxsplit=1)
            names[int(index)] = name.strip()
        else:
            names[i] = line
    if sorted(names) != list(range(len(names))):
        raise DeployError(f"{path}: label indices must run 0..{len(names) - 1} without gaps.")
    labels = [names[i] for i in range(len(names))]
    if num_classes is not None and len(labels) != num_classes:
        raise DeployError(f"{path} has {len(labels)} labels but the model has {num_classes} "
                          f"classes; pass the label list of the data set the model was trained on.")
    return labels


def config_label_list(cfg):
    """The label list a config names: DATASET.label_list, else the old INFERENCE.label_list
    (PaddleVideo's place, still read); None when it names none."""
    path = (cfg.get("DATASET") or {}).get("label_list")
    if path:
        return str(path)
    old = (cfg.get("INFERENCE") or {}).get("label_list")
    if old:
        logger.warning("INFERENCE.label_list is read for PaddleVideo configs; DATASET.label_list "
                       "replaced it.")
        return str(old)
    return None


def default_labels(num_classes):
    """Placeholder names when no label list is known."""
    return [f"class_{i}" for i in range(num_classes)]

