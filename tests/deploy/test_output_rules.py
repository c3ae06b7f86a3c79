"""The original gesture demo's output rules: each on its own, and all together."""
import numpy as np
import pytest

from paddlevideo.deploy import DeployError
from paddlevideo.deploy.output_rules import JESTER_HIDDEN, OutputRules

LABELS = ["Doing other things", "Drumming Fingers", "No gesture", "Pulling Hand In",
          "Pulling Two Fingers In", "Pushing Hand Away", "Pushing Two Fingers Away",
          "Rolling Hand Backward", "Rolling Hand Forward", "Shaking Hand",
          "Sliding Two Fingers Down", "Sliding Two Fingers Left", "Sliding Two Fingers Right",
          "Sliding Two Fingers Up", "Stop Sign", "Swiping Down", "Swiping Left", "Swiping Right",
          "Swiping Up", "Thumb Down", "Thumb Up", "Turning Hand Clockwise",
          "Turning Hand Counterclockwise", "Zooming In With Full Hand",
          "Zooming In With Two Fingers", "Zooming Out With Full Hand",
          "Zooming Out With Two Fingers"]


def onehot(*indices, scale=5.0):
    out = []
    for i in indices:
        x = np.zeros(27)
        x[i] = scale
        out.append(x)
    return out


def shown(rules, logits):
    return [rules(x) for x in logits]


def test_logit_window_averages_the_last_n_frames_logits():
    rules = OutputRules(LABELS, logit_window=3)
    frames = onehot(16, 16, 17, 17, 17, 17)
    assert shown(rules, frames) == [16, 16, 16, 17, 17, 17]      # 17 wins once it has 2 of 3
    assert shown(OutputRules(LABELS), frames) == [16, 16, 17, 17, 17, 17]


def test_hidden_classes_keep_the_previous_label():
    rules = OutputRules(LABELS, hidden=JESTER_HIDDEN)
    frames = onehot(16, 7, 8, 21, 3, 17)
    assert shown(rules, frames) == [16, 16, 16, 16, 16, 17]
    first = np.zeros(27)
    first[7], first[12] = 5.0, 4.0                    # a hidden class before anything was shown
    assert OutputRules(LABELS, hidden=JESTER_HIDDEN)(first) == 12


def test_refinement_is_the_demos_history_smoothing():
    rules = OutputRules(LABELS, refine=True, merged={"Doing other things": "No gesture"})
    # the label may change only when the shown one has held for two frames; 0 counts as 2
    frames = onehot(16, 16, 16, 0, 17, 17, 17, 17)
    assert shown(rules, frames) == [2, 16, 16, 2, 2, 17, 17, 17]
    assert rules.history[-1] == 17 and len(rules.history) == 9
    rules.reset()
    assert rules.history == [2] and shown(rules, onehot(17)) == [2]
    for _ in range(30):
        rules(onehot(17)[0])
    assert len(rules.history) == 20


def test_all_rules_together_and_unknown_names_refused():
    rules = OutputRules.jester_demo(LABELS)
    assert rules.logit_window == 12 and rules.refine and len(rules.hidden) == 5
    with pytest.raises(DeployError, match="'Waving' is not in the label list"):
        OutputRules(LABELS, hidden=["Waving"])
    with pytest.raises(DeployError, match="needs the label list"):
        OutputRules(None, refine=True)
    with pytest.raises(DeployError, match="at least 1 frame"):
        OutputRules(LABELS, logit_window=0)


def test_labelled_video_without_a_usable_window(monkeypatch, tmp_path):
    """auto: an OpenCV that cannot open a window is skipped with a warning, the file is still
    written; on: it is a one-line DeployError."""
    import cv2
    from paddlevideo.deploy.online import LabelledVideo

    def no_gui(*args):
        raise cv2.error("The function is not implemented")
    monkeypatch.setattr(cv2, "imshow", no_gui)
    frame = np.zeros((48, 64, 3), np.uint8)
    view = LabelledVideo(str(tmp_path / "a.avi"), 25, display="auto")
    assert view.add(frame, "Swiping Left") and view.add(frame, "Swiping Left")
    view.close()
    cap = cv2.VideoCapture(str(tmp_path / "a.avi"))
    ok, first = cap.read()
    assert ok and first.shape[0] > 48                  # the label strip is below the frame
    with pytest.raises(DeployError, match="--display off"):
        LabelledVideo(None, 25, display=True).add(frame, "x")


def test_flags_switch_each_rule_on_and_off():
    from paddlevideo.deploy.output_rules import rules_from_flags
    assert rules_from_flags(labels=LABELS) is None                   # default: mean probability
    demo = rules_from_flags(True, labels=LABELS)
    assert demo.logit_window == 12 and demo.refine and len(demo.hidden) == 5
    no_refine = rules_from_flags(True, refine=False, hide="", labels=LABELS)
    assert no_refine.logit_window == 12 and not no_refine.refine and not no_refine.hidden
    only_hide = rules_from_flags(hide="Stop Sign, Thumb Up", labels=LABELS)
    assert only_hide.logit_window == 1 and only_hide.hidden == {14, 20}
