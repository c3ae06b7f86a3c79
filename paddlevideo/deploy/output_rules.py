"""The original TSM gesture demo's output rules (online_demo/main.py), each switchable.

Per frame the network gives logits; the demo turns them into the label it shows by:
1. logit window: the argmax of the mean of the last `logit_window` frames' logits (12 in the
   demo, HISTORY_LOGIT) instead of the frame's own;
2. hidden classes: a class the demo never shows (Jester: the hand-rolling, hand-turning and
   "Pulling Hand In" gestures) leaves the previous label in place;
3. refinement (REFINE_OUTPUT, its `process_output`): "Doing other things" counts as "No gesture",
   and the shown label may change only when it has held for the last two frames, so labels never
   change on two consecutive frames. The history starts at "No gesture"; on the first frame,
   which has no second-to-last label, a change is not accepted (the demo itself indexes past the
   start of its history there).

Rules refer to classes by name, so they hold for any label order; names not in the label list
are an error, not silently ignored.
"""
import collections

import numpy as np

from .errors import DeployError

__all__ = ["OutputRules", "rules_from_flags", "JESTER_HIDDEN", "JESTER_MERGED",
           "JESTER_NO_ACTION", "DEMO_LOGIT_WINDOW"]

DEMO_LOGIT_WINDOW = 12
JESTER_HIDDEN = ("Pulling Hand In", "Rolling Hand Backward", "Rolling Hand Forward",
                 "Turning Hand Clockwise", "Turning Hand Counterclockwise")
JESTER_NO_ACTION = "No gesture"
JESTER_MERGED = {"Doing other things": JESTER_NO_ACTION}
HISTORY = 20          # labels the demo keeps


def _index(labels, name, what):
    if labels is None:
        raise DeployError(f"{what} names classes ('{name}'), so it needs the label list "
                          f"(--label_list).")
    try:
        return list(labels).index(name)
    except ValueError:
        raise DeployError(f"{what}: class '{name}' is not in the label list "
                          f"({len(labels)} classes, e.g. '{labels[0]}').") from None


class OutputRules:
    """logits of each frame in, the index of the label to show out (see the module docstring).

    logit_window: frames whose logits are averaged (1: the frame alone).
    hidden: class names never shown. refine: the demo's history smoothing, with `merged`
    ({name: shown as name}) and `no_action` (the history's first label).
    """

    def __init__(self, labels=None, logit_window=1, hidden=(), refine=False,
                 merged=None, no_action=JESTER_NO_ACTION):
        if int(logit_window) < 1:
            raise DeployError(f"the logit window must be at least 1 frame, got {logit_window}.")
        self.logit_window = int(logit_window)
        self.hidden = {_index(labels, n, "--hide") for n in hidden}
        self.refine = bool(refine)
        self.merged, self.no_action = {}, None
        if self.refine:
            self.no_action = _index(labels, no_action, "--refine")
            self.merged = {_index(labels, a, "--refine"): _index(labels, b, "--refine")
                           for a, b in (merged or {}).items()}
        self.reset()

    @classmethod
    def jester_demo(cls, labels):
        """All three rules with the demo's settings, for a Jester label list."""
        return cls(labels, DEMO_LOGIT_WINDOW, JESTER_HIDDEN, True, JESTER_MERGED,
                   JESTER_NO_ACTION)

    def reset(self):
        """A new stream: no logits, the history back to its start."""
        self.recent = collections.deque(maxlen=self.logit_window)
        self.history = [self.no_action] if self.refine else []
        self.shown = self.no_action

    def __call__(self, logits):
        self.recent.append(np.asarray(logits, dtype=np.float64).reshape(-1))
        index = int(np.mean(self.recent, axis=0).argmax())
        if index in self.hidden:
            if self.shown is not None:
                index = self.shown
            else:                                    # nothing shown yet: the best visible class
                mean = np.mean(self.recent, axis=0)
                mean[list(self.hidden)] = -np.inf
                index = int(mean.argmax())
        if self.refine:
            index = self.merged.get(index, index)
            last = self.history[-1]
            stable = len(self.history) >= 2 and self.history[-2] == last
            if index != last and not stable:
                index = last
            self.history = (self.history + [index])[-HISTORY:]
        self.shown = index
        return index


def rules_from_flags(demo_rules=False, logit_window=None, refine=None, hide=None, labels=None):
    """The OutputRules online_predict's flags ask for, or None (its mean probability over
    --window): --demo_rules sets all three as the demo does, each other flag overrides its part
    (hide: comma-separated names; '' hides none)."""
    window = logit_window if logit_window is not None else (
        DEMO_LOGIT_WINDOW if demo_rules else None)
    refine = refine if refine is not None else demo_rules
    if hide is not None:
        hidden = tuple(n.strip() for n in hide.split(",") if n.strip())
    else:
        hidden = JESTER_HIDDEN if demo_rules else ()
    if window is None and not refine and not hidden:
        return None
    return OutputRules(labels, window or 1, hidden, refine, JESTER_MERGED if refine else None)
