"""The class-name lists the package ships, and how configs name them.

`paddlevideo/labels/` holds the class names of every data set in the model zoo, in the project's
label-list format (`INDEX NAME` per line, index order = the data set's official label order):
kinetics400, ucf101, sthv2, jester. A config names one as `label_list: package:sthv2`, which works
without the data set on disk (a downloaded checkpoint can be predicted with names); any other
value is a file path. The lists travel with `pip install .` as package data.
"""
import os

__all__ = ["PACKAGE_PREFIX", "SHIPPED_DIR", "shipped_label_lists", "resolve_label_path"]

PACKAGE_PREFIX = "package:"
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labels")


def shipped_label_lists():
    """Names of the shipped lists (`package:NAME`), sorted."""
    if not os.path.isdir(SHIPPED_DIR):
        return []
    return sorted(f[:-4] for f in os.listdir(SHIPPED_DIR) if f.endswith(".txt"))


def resolve_label_path(path):
    """The file a label_list value names: `package:NAME` -> the shipped NAME.txt (ValueError
    naming the shipped ones when there is no such list); any other value is returned as is."""
    path = str(path)
    if not path.startswith(PACKAGE_PREFIX):
        return path
    name = path[len(PACKAGE_PREFIX):]
    if name not in shipped_label_lists():
        raise ValueError(f"label list {path}: the package ships no list named '{name}'; shipped: "
                         f"{', '.join(PACKAGE_PREFIX + n for n in shipped_label_lists())}.")
    return os.path.join(SHIPPED_DIR, name + ".txt")
