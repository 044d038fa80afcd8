"""ONNX export and ONNX Runtime: the exported graph computes what eager PyTorch computes, at
every batch size; int8 static quantisation keeps a trained LeNet-5's accuracy; a forward
without a static graph is refused in one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.deploy.onnx_runtime import export_onnx, has_extra, ort_run, ort_session, quantize_onnx_int8
from genoise.nn import LeNet5
from genoise.nn.encoder import ConvEncoder
from genoise.world.jepa import ActionConditionedJEPA

pytestmark = pytest.mark.skipif(
    not has_extra("onnx", "onnxscript", "onnxruntime"),
    reason="the [deploy] extra (onnx, onnxscript, onnxruntime) is not installed",
)


@pytest.mark.parametrize("name", ["lenet5", "ssl_convnet", "world_model_encoder"])
def test_exported_model_equals_eager_at_any_batch(tmp_path, name: str) -> None:
    torch.manual_seed(0)
    if name == "lenet5":
        model, shape = LeNet5(image_size=28, activation="relu"), (1, 28, 28)
    elif name == "ssl_convnet":
        model, shape = nn.Sequential(ConvEncoder(3, 32, 64, width=8), nn.Linear(64, 10)), (3, 32, 32)
    else:  # the encoder of the Two Rooms JEPA world model (genoise.world.jepa)
        jepa = ActionConditionedJEPA()
        model, shape = jepa.encoder, (2, jepa.config.image_size, jepa.config.image_size)
    model.eval()
    path = export_onnx(model, torch.rand(2, *shape), tmp_path / "m.onnx")
    session = ort_session(path, threads=1)
    for batch in (1, 7):
        x = torch.rand(batch, *shape)
        with torch.no_grad():
            assert torch.allclose(ort_run(session, x), model(x), atol=1e-5, rtol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.linear(x)
        return -x


def test_data_dependent_control_flow_is_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(ValueError, match="control flow that depends on tensor values") as err:
        export_onnx(DataDependent(), torch.rand(2, 4), tmp_path / "m.onnx")
    assert "\n" not in str(err.value) and "if x.sum() > 0" in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_missing_model_and_wrong_input_count(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such ONNX model"):
        ort_session(tmp_path / "absent.onnx")
    path = export_onnx(nn.Linear(3, 2), torch.rand(2, 3), tmp_path / "l.onnx")
    with pytest.raises(ValueError, match="takes 1 input"):
        ort_run(ort_session(path), torch.rand(1, 3), torch.rand(1, 3))


def test_int8_accuracy_within_the_goal_on_a_small_split(tmp_path, small_lenet) -> None:
    model, train, test, fp32_acc = small_lenet
    path = export_onnx(model, test.images[:2], tmp_path / "m.onnx")
    int8 = quantize_onnx_int8(path, tmp_path / "m8.onnx", train.images[:512])
    preds = ort_run(ort_session(int8), test.images).argmax(1)
    int8_acc = 100 * float((preds == test.labels).float().mean())
    # The goal (a drop <= 0.1 point) is measured on the full MNIST test set by
    # benchmarks/inference.py; on this 1,000-image split of a briefly trained network one
    # image is 0.1 point, so the test asks for at most two images lost and 99 % of the
    # predictions unchanged.
    with torch.no_grad():
        fp32_preds = model(test.images).argmax(1)
    lost = int((fp32_preds == test.labels).sum()) - int((preds == test.labels).sum())
    assert lost <= 2, f"int8 lost {lost} images ({fp32_acc:.2f} -> {int8_acc:.2f} %)"
    agree = float((preds == fp32_preds).float().mean())
    assert agree >= 0.99
    assert int8.stat().st_size < 0.5 * path.stat().st_size  # int8 weights: about 4x smaller
