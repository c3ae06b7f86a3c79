"""Download a file once into a cache folder: atomic, verified, with a progress bar.

The cache is `$PADDLEVIDEO_HOME` if set, else `~/.cache/paddlevideo`. A download is written to
a temporary file beside its destination and renamed into place only after its size (from the
server's Content-Length and, where known, the expected size) and checksum have been verified, so
an interrupted transfer never leaves a file that looks complete.
"""
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request

from .progress import bytes_bar

__all__ = ["DownloadError", "cache_dir", "download", "file_sha256"]

CACHE_ENV = "PADDLEVIDEO_HOME"
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be fetched or failed verification; the message says what to do."""


def cache_dir(*parts):
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "paddlevideo")
    return os.path.join(root, *parts)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path, size, sha256):
    """None if the file matches what is known of it, else why not."""
    actual = os.path.getsize(path)
    if size is not None and actual != size:
        return f"size is {actual} bytes, expected {size}"
    if sha256 is not None:                   # a full digest, or the prefix a file name carries
        digest = file_sha256(path)
        if not digest.startswith(sha256.lower()):
            expected = sha256 if len(sha256) == 64 else f"one starting with {sha256}"
            return f"sha256 is {digest}, expected {expected}"
    return None


def download(url, dest=None, sha256=None, size=None, progress=True, timeout=60):
    """Return a local path holding `url`'s content, downloading it only if not cached.

    `dest` defaults to the cache folder plus the URL's file name. A cached file is reused if it
    matches `size` and `sha256` (when given; a prefix of 8 or more hex digits, as file names
    carry them, checks the digest's start); a mismatching one is fetched again.
    """
    dest = dest or cache_dir("weights", os.path.basename(url.split("?")[0]))
    if os.path.exists(dest):
        if _verify(dest, size, sha256) is None:
            return dest
        sys.stderr.write(f"cached {dest} does not match ({_verify(dest, size, sha256)}); "
                         f"downloading it again\n")
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = f"{dest}.part-{os.getpid()}"
    by_hand = (f"Without network access, download {url} on another machine and put it at {dest} "
               f"(or pass a local copy instead: -w/-p, or `pretrained:` in the config).")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            bar = bytes_bar(expected or size, os.path.basename(dest), progress)
            try:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        received = os.path.getsize(part)
        if expected is not None and received != expected:
            raise DownloadError(f"download of {url} was interrupted: got {received} of "
                                f"{expected} bytes. Run again to retry. {by_hand}")
        problem = _verify(part, size, sha256)
        if problem:
            raise DownloadError(f"downloaded {url} but its {problem}; the file was discarded. "
                                f"The server may hold another version, or the transfer was "
                                f"corrupted. {by_hand}")
        os.replace(part, dest)
        return dest
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"could not download {url}: {reason}. {by_hand}") from None
    finally:
        if os.path.exists(part):
            os.remove(part)
