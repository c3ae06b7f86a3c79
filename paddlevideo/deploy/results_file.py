"""predict's --output file: one JSON line per input, continued by the next run, never anything
else overwritten.

Only a file that is recognisably predict's own output is continued: every line a JSON record of
predict's shape (file, kind, model, then either the top-k fields or an error), except that the
last line may be cut off by a crash, and then it must still begin as predict's records begin
(`{"file": `) and lack its newline. Anything else (someone's notes, a one-line non-JSON file, a
device, a FIFO, a folder, a link to one of those) is refused with one line before anything is
written. Continuing rewrites the kept lines to a fresh temporary file in the same folder, which
then replaces the regular file (a link is followed: its target is rewritten, the link stays).
"""
import errno
import json
import os
import stat

from .errors import DeployError

__all__ = ["ResultsFile", "check_output_target"]

_RECORD_START = '{"file": '           # json.dumps of predict's records: "file" comes first
_COMMON = {"file": str, "kind": str, "model": str}
_PREDICTED = {"top1": str, "top1_index": int, "top1_score": float, "topk": list}
_OPTIONAL = {"note": str}
_KINDS = ("video", "frames")


def _is_record(record):
    """Whether a parsed line has exactly the shape of one of predict's records."""
    if not isinstance(record, dict):
        return False
    fields = dict(_COMMON, **(({"error": str} if "error" in record else _PREDICTED)))
    allowed = set(fields) | set(_OPTIONAL)
    if not set(fields) <= set(record) or not set(record) <= allowed:
        return False
    if record["kind"] not in _KINDS:
        return False
    types = dict(fields, **_OPTIONAL)
    return all(isinstance(record[k], types[k]) and not isinstance(record[k], bool)
               for k in record)


def _refuse(path, why):
    return DeployError(f"--output {path} {why}; predict only continues its own output. Give "
                       f"another --output (nothing was written).")


def check_output_target(path):
    """The existing lines of `path` as (kept lines, records), refusing anything that is not a
    regular file holding predict's own output; ([], []) when it does not exist yet."""
    try:
        info = os.stat(path)                          # follows links: the target is judged
    except FileNotFoundError:
        if os.path.islink(path):
            raise _refuse(path, "is a link to nothing") from None
        return [], []
    except OSError as e:
        raise DeployError(f"cannot use --output {path}: {e.strerror or e}") from None
    if stat.S_ISDIR(info.st_mode):
        raise DeployError(f"--output {path} is a folder; give a file name in it.")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a FIFO" if stat.S_ISFIFO(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
        link = " (through a link)" if os.path.islink(path) else ""
        raise _refuse(path, f"is {kind}{link}, not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DeployError(f"cannot read --output {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(path, "is not text (not UTF-8)") from None
    lines = text.splitlines(keepends=True)
    kept, records = [], []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            cut_off = n == len(lines) and not line.endswith("\n") and \
                (line.startswith(_RECORD_START) or _RECORD_START.startswith(line))
            if cut_off:                               # predict's last line, cut off by a crash
                continue
            raise _refuse(f"{path}:{n}", "is not a JSON line of predict's output") from None
        if not _is_record(record) or not line.startswith(_RECORD_START):
            raise _refuse(f"{path}:{n}", "is not a line of predict's output")
        kept.append(line if line.endswith("\n") else line + "\n")
        records.append(record)
    return kept, records


class ResultsFile:
    """predict's --output: one JSON line per input, written and flushed as each comes, so a crash
    or Ctrl-C loses nothing; reopened with the same model it skips what is already done.

    Opening keeps the existing successful lines, drops failed ones (they are tried again) and a
    line cut off by a crash; lines from another model (or engine/precision) are refused, since
    mixing them would label a folder with two models without saying so. A write that fails
    (disk full) is reported once as a DeployError; closing after it does not raise again."""

    def __init__(self, path, model_id):
        self.path, self.model_id = path, model_id
        self.failed = False
        kept, records = check_output_target(path)
        self.done = set()
        lines = []
        for line, record in zip(kept, records):
            if record["model"] != model_id:
                raise DeployError(f"{path} holds results of another model or engine "
                                  f"({record['model']}, this run: {model_id}); use another "
                                  f"--output, or delete it to start again.")
            if "error" not in record:
                lines.append(line)
                self.done.add(os.path.abspath(record["file"]))
        target = os.path.realpath(path)
        folder = os.path.dirname(target)
        tmp = None
        try:
            os.makedirs(folder, exist_ok=True)
            name = os.path.join(folder, f".{os.path.basename(target)}.tmp-{os.getpid()}")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's mode
            tmp = name
            if os.path.exists(target):
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(lines)
            os.replace(tmp, target)
            tmp = None
            self._handle = open(target, "a", encoding="utf-8")
        except OSError as e:
            raise DeployError(f"cannot write --output {path}: {_why(e)}") from None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)

    def is_done(self, item):
        return os.path.abspath(item.path) in self.done

    def write(self, record):
        try:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._handle.flush()
        except OSError as e:
            self.failed = True
            raise DeployError(f"cannot write --output {self.path}: {_why(e)}") from None

    def close(self):
        """Close the file; a failure here is a DeployError, unless a write already reported one
        (the unwritten rest of that line is then dropped)."""
        try:
            self._handle.close()
        except OSError as e:
            if not self.failed:
                self.failed = True
                raise DeployError(f"cannot write --output {self.path}: {_why(e)}") from None


def _why(error):
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{error.strerror} (the disk is full: free space, then run the same command to " \
               f"continue)"
    return error.strerror or str(error)
