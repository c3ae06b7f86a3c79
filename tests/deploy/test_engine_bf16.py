"""bf16 on CPU: Paddle Inference's bf16 passes fail on the unidirectional (online) model's
slice/concat shift. An automatic choice must fall back to fp32; an explicit one must say why."""
import paddle
import pytest

from paddlevideo.deploy.errors import DeployError
from paddlevideo.deploy.export import export_model
from paddlevideo.deploy.runtime import InferenceEngine, default_cpu_precision

from .conftest import NUM_SEG, SIZE, assert_close_logits, clips, make_model


@pytest.fixture(scope="module")
def online_export(tmp_path_factory):
    if default_cpu_precision() != "bf16":
        pytest.skip("this CPU has no native bf16, so the automatic precision is fp32 anyway")
    model = make_model("unidirectional")
    out = str(tmp_path_factory.mktemp("uni"))
    export_model(model, out, "M", num_seg=NUM_SEG, target_size=SIZE)
    return model, out


def test_automatic_bf16_falls_back_to_fp32_with_the_same_answers(online_export, caplog):
    model, out = online_export
    x = clips(2)
    engine = InferenceEngine(out)
    logits = engine(x)
    assert engine.precision == "fp32" and "using fp32 for this model" in caplog.text
    assert_close_logits(logits, model(paddle.to_tensor(x)).numpy())


def test_explicit_bf16_is_a_clear_error(online_export):
    _, out = online_export
    with pytest.raises(DeployError, match="bf16 passes do not handle this model; use --precision fp32"):
        InferenceEngine(out, precision="bf16")(clips(1))
