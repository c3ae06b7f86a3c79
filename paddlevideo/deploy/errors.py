"""The one error type of the deploy side, and the one way to shorten a library's error to a line.

A leaf: it imports nothing from the package, so every module (and the tasks) may use it.
"""

__all__ = ["DeployError", "first_line"]


class DeployError(RuntimeError):
    """A deployment problem (missing model file, wrong input shape, unreadable video, ...).

    The message names the file or value at fault and what to do; tools print it and exit non-zero.
    """


def first_line(error, limit=400):
    """The informative line of an exception's message: Paddle's errors start with C++ context and
    traceback lines, other libraries' with an empty line; falls back to the exception's type."""
    text = str(error).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("In user code", "File ", "---", "C++ Traceback")):
            return line[:limit]
    return text[:limit] or type(error).__name__
