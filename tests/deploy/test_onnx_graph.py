"""The ONNX graph rewrites compute the same function with fewer nodes, and leave alone what
they cannot rewrite safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genoise.deploy.onnx_runtime import export_onnx, has_extra, ort_run, ort_session
from genoise.nn.encoder import ConvEncoder

pytestmark = pytest.mark.skipif(
    not has_extra("onnx", "onnxscript", "onnxruntime"),
    reason="the [deploy] extra (onnx, onnxscript, onnxruntime) is not installed",
)


def _ops(path) -> list[str]:
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def _same_function(model: nn.Module, path, shape: tuple[int, ...]) -> None:
    session = ort_session(path)
    for batch in (1, 7):
        x = torch.rand(batch, *shape)
        with torch.no_grad():
            assert torch.allclose(ort_run(session, x), model(x), atol=1e-5, rtol=1e-4)


def test_the_classifier_tail_becomes_global_pooling_and_one_product(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(ConvEncoder(3, 16, 32, width=8), nn.Linear(32, 10)).eval()
    plain = export_onnx(model, torch.rand(2, 3, 16, 16), tmp_path / "plain.onnx", simplify=False)
    simple = export_onnx(model, torch.rand(2, 3, 16, 16), tmp_path / "simple.onnx")
    assert _ops(plain)[-3:] == ["ReduceMean", "Gemm", "Gemm"]
    assert _ops(simple)[-3:] == ["GlobalAveragePool", "Flatten", "Gemm"]
    _same_function(model, simple, (3, 16, 16))
    assert (tmp_path / "simple.onnx").stat().st_size < (tmp_path / "plain.onnx").stat().st_size


def test_a_chain_of_three_linear_layers_folds_into_one(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 6), nn.Linear(6, 3)).eval()
    path = export_onnx(model, torch.rand(2, 5), tmp_path / "m.onnx")
    assert _ops(path) == ["Gemm"]
    _same_function(model, path, (5,))


class Tails(nn.Module):
    """Means and linear layers that must not all be rewritten."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c, self.d = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kept = x.mean(dim=(2, 3), keepdim=True)  # → GlobalAveragePool alone
        channels = x.mean(dim=1)  # not spatial: stays a ReduceMean
        h = self.a(x.mean(dim=(2, 3)))
        g = self.b(h) + h  # h feeds two nodes: a and b stay apart
        y = self.d(torch.relu(self.c(g)))  # a ReLU between c and d: not affine
        return kept, channels, y


def test_only_safe_patterns_are_rewritten(tmp_path) -> None:
    torch.manual_seed(0)
    model = Tails().eval()
    path = export_onnx(model, torch.rand(2, 4, 5, 5), tmp_path / "m.onnx")
    ops = _ops(path)
    assert ops.count("GlobalAveragePool") == 2 and ops.count("Flatten") == 1
    assert ops.count("ReduceMean") == 1 and ops.count("Gemm") == 4
    session = ort_session(path)
    x = torch.rand(3, 4, 5, 5)
    with torch.no_grad():
        want = model(x)
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {names[0]: x.numpy()})
    for a, b in zip(got, want, strict=True):
        assert np.allclose(a, b.numpy(), atol=1e-6)


def _gemm_graph(first: dict, second: dict, bias_first: bool):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((3, 4)).astype(np.float32)  # (in, out): transB = 0
    w2 = rng.standard_normal((2, 4)).astype(np.float32)  # (out, in): transB = 1
    b1, b2 = rng.standard_normal(4).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    inits = [numpy_helper.from_array(a, name) for a, name in ((w1, "w1"), (w2, "w2"), (b2, "b2"))]
    inputs_first = ["x", "w1"]
    if bias_first:
        inits.append(numpy_helper.from_array(b1, "b1"))
        inputs_first.append("b1")
    graph = helper.make_graph(
        [helper.make_node("Gemm", inputs_first, ["h"], name="g1", **first),
         helper.make_node("Gemm", ["h", "w2", "b2"], ["y"], name="g2", transB=1, **second)],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model, (w1, b1 if bias_first else np.zeros(4, np.float32), w2, b2)


@pytest.mark.parametrize("bias_first", [True, False])
def test_two_gemms_fold_into_the_closed_form(bias_first: bool) -> None:
    import onnxruntime as ort

    from genoise.deploy.onnx_graph import simplify_for_inference

    model, (w1, b1, w2, b2) = _gemm_graph({}, {}, bias_first)
    folded, counts = simplify_for_inference(model)
    assert counts == {"global_pool": 0, "folded_gemm": 1}
    assert [n.op_type for n in folded.graph.node] == ["Gemm"]
    assert {i.name for i in folded.graph.initializer} == {"y__folded_weight", "y__folded_bias"}
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    want = (x.astype(np.float64) @ w1 + b1) @ w2.T.astype(np.float64) + b2  # y = (x W1 + b1) W2ᵀ + b2
    session = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {"x": x})[0], want, atol=1e-5)
    assert len(model.graph.node) == 2  # the input model is not modified


@pytest.mark.parametrize(
    ("first", "second", "folds"), [({"alpha": 2.0}, {}, 0), ({}, {"beta": 0.5}, 0), ({"transA": 0}, {}, 1)]
)
def test_scaled_gemms_are_left_apart(first: dict, second: dict, folds: int) -> None:
    from genoise.deploy.onnx_graph import simplify_for_inference

    model, _ = _gemm_graph(first, second, bias_first=True)
    assert simplify_for_inference(model)[1]["folded_gemm"] == folds
