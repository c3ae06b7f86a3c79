"""Where `--test` puts its results: a folder per (weights, test list, protocol), never another
test's, and nothing left behind by a test that fails.

`test_<weights stem>__<list stem>__<segments>x<clips>x<crops>_<size>` in the output folder; its
`test_results.json` records the key (weights sha256, the list's sha256, the whole DATASET.test
section, the protocol id). A folder of that name whose results have another key is left alone:
the test takes the name plus the first 8 (then all 64) hex digits of its key's digest.
"""
import hashlib
import json
import logging
import os
import re
import shutil

from ..utils.config import to_plain
from .common import TaskError

__all__ = ["results_dir_for", "test_set_identity", "protocol_id", "weights_stem", "sha256_of",
           "say_where", "missing_folders", "remove_created"]

logger = logging.getLogger("paddlevideo")

_WEIGHT_SUFFIXES = (".pdparams", ".pth", ".pt", ".pkl", ".ckpt")
KEY = ("weights_sha256", "test_list_sha256", "test_set", "protocol_id")


def weights_stem(source):
    """'output/TSM/TSM_best.pdparams' -> 'TSM_best'; a registered name or URL the same way."""
    name = os.path.basename(str(source).split("?")[0].rstrip("/")) or "weights"
    for suffix in _WEIGHT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[:-len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _earlier_results(folder):
    path = os.path.join(folder, "test_results.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}                    # unreadable: someone's results all the same, keep them


def test_set_identity(cfg):
    """(short name, {'test_list', 'test_list_sha256', 'test_set'}) of the test data: the list
    file's path and sha256 when DATASET.test names one, and the whole DATASET.test section (the
    prefix, suffix and sampling settings choose the videos too)."""
    section = to_plain((cfg.get("DATASET") or {}).get("test") or {})
    path = section.get("file_path")
    if path and os.path.isfile(str(path)):
        name, digest, listed = weights_stem(os.path.splitext(str(path))[0]), sha256_of(str(path)), \
            os.path.abspath(str(path))
    else:
        name, listed = weights_stem(str(section.get("format") or "test")), None
        digest = hashlib.sha256(json.dumps(section, sort_keys=True, default=str)
                                .encode()).hexdigest()
    return name, {"test_list": listed, "test_list_sha256": digest,
                  "test_set": json.dumps(section, sort_keys=True, default=str)}


def protocol_id(num_seg, clips, crops, shape):
    """'8x1x1_224' (segments x clips x crops, input size): the protocol part of a folder name."""
    size = "any" if shape is None else (f"{shape[-2]}" if shape[-2] == shape[-1]
                                        else f"{shape[-2]}x{shape[-1]}")
    return f"{int(num_seg)}x{int(clips)}x{int(crops)}_{size}"


def _key_of(results):
    return {k: (results or {}).get(k) for k in KEY}


def _plain_name(source, list_name, key):
    return f"test_{weights_stem(source)}__{list_name}__{key['protocol_id']}"


def results_dir_for(parent, source, key, list_name):
    """(folder, earlier results there or None) for the test whose identity is `key` ({weights
    sha256, test list sha256, test set, protocol id}): `test_<weights>__<list>__<protocol>`
    unless it holds another test's results, else that name with the first 8 (then all 64) hex
    digits of the key's digest. The same weights on the same list with the same protocol find
    their earlier folder again."""
    plain = _plain_name(source, list_name, key)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    for name in (plain, f"{plain}_{digest[:8]}", f"{plain}_{digest}"):
        folder = os.path.join(parent, name)
        earlier = _earlier_results(folder)
        if earlier is None or _key_of(earlier) == key:
            return folder, earlier
    raise TaskError(f"{folder} holds the results of another test; move it away.")


def _fmt(value):
    return f"{value:.5f}" if isinstance(value, float) else "?"


def say_where(folder, earlier, source, list_name, key):
    """Log why the results go to `folder` (another test holds the plain name) and whether they
    replace this test's earlier results."""
    plain = os.path.join(os.path.dirname(folder), _plain_name(source, list_name, key))
    if folder != plain:
        other = _earlier_results(plain) or {}
        differs = [k for k in KEY if other.get(k) != key[k]]
        logger.warning(f"[TEST] {plain} holds the results of another test (its "
                       f"{', '.join(differs) or 'identity'} differs: weights "
                       f"{other.get('weights_file') or other.get('weights', 'unknown file')}, "
                       f"list {other.get('test_list') or '-'}); this test gets its own folder: "
                       f"{folder}")
    if earlier is not None:
        logger.info(f"[TEST] replacing the earlier results of these weights on this test list "
                    f"with this protocol in {folder} (top-1 then: {_fmt(earlier.get('top1'))})")


def missing_folders(folder):
    """The folders from `folder` up that do not exist yet (the ones this run will create)."""
    missing, path = [], os.path.abspath(folder)
    while path and not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def remove_created(out, created, log_existed):
    """After a failed test: remove the results folder (and its parents) if this run created
    them, else only a test.log this run started; never anything that was there before."""
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            logger.removeHandler(handler)
            handler.close()
    if created:
        shutil.rmtree(created[0], ignore_errors=True)
        for folder in created[1:]:
            try:
                os.rmdir(folder)
            except OSError:
                break
    elif not log_existed and os.path.isfile(os.path.join(out, "test.log")):
        os.remove(os.path.join(out, "test.log"))
