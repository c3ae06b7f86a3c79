"""The one error type of the deploy side: a message a user can act on, never a Paddle traceback."""

__all__ = ["DeployError"]


class DeployError(RuntimeError):
    """A deployment problem (missing model file, wrong input shape, unreadable video, ...).

    The message names the file or value at fault and what to do; tools print it and exit non-zero.
    """
