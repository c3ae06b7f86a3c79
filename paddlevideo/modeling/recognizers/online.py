"""OnlineTSM: the per-frame step of a unidirectional recognizer as a layer of its own.

Its forward is `Recognizer2D.forward_step` with a flat output, so it can be traced and saved
as an inference model: inputs `frame` [B, 3, S, S] and the buffer list, outputs the logits then
the new buffers, in order. It shares the recognizer's layers and weights; the network itself is
the recognizer's (the same blocks as offline, see ResNetTSM.forward_step).
"""
import paddle
import paddle.nn as nn

from ...utils.config import ConfigError

__all__ = ["OnlineTSM"]


class OnlineTSM(nn.Layer):
    """forward(frame [B, 3, S, S], buffers list) -> [logits [B, K], *new_buffers].

    Refuses (ConfigError) a model that cannot stream: not a recognizer with a per-frame step, or
    a shift other than unidirectional.
    """

    def __init__(self, model):
        super().__init__()
        if not callable(getattr(model, "forward_step", None)):
            raise ConfigError(f"online TSM needs a Recognizer2D with a ResNetTSM or MobileNetV2TSM "
                              f"backbone; got "
                              f"{type(model).__name__}.")
        model.check_online()
        self.model = model

    def buffer_shapes(self, target_size):
        """Per-stream buffer shapes for square frames of `target_size` pixels."""
        return self.model.buffer_shapes(target_size)

    def init_buffers(self, target_size, batch=1):
        """Zero buffers of `batch` new streams."""
        return [paddle.zeros([batch] + s) for s in self.buffer_shapes(target_size)]

    def forward(self, frame, buffers):
        logits, new_buffers = self.model.forward_step(frame, buffers)
        return [logits] + list(new_buffers)
