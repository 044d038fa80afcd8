"""The latency harness: a fresh process per measurement, the thread count it used, sane
statistics, any network (images, token stories), clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genoise.deploy.latency import Latency, measure, measure_in_subprocess
from genoise.deploy.onnx_runtime import export_onnx, has_extra
from genoise.memory.memn2n import MemN2N
from genoise.nn import LeNet5


@pytest.mark.parametrize("threads", [1, 2])
def test_subprocess_reports_the_thread_count_it_used(threads: int) -> None:
    model = LeNet5(image_size=8, activation="relu").eval()
    x = torch.rand(4, 1, 8, 8)
    result = measure_in_subprocess(
        "eager", model=model, one=(x[:1],), many=(x,), threads=threads, repeats=20, warmup=2
    )
    assert isinstance(result, Latency) and result.threads == threads and result.runner == "eager"
    assert 0 < result.batch1_median_us <= result.batch1_p90_us
    assert result.batch_n == 4 and result.batch_n_ms > 0


@pytest.mark.skipif(
    not has_extra("onnx", "onnxscript", "onnxruntime"), reason="the [deploy] extra is missing"
)
def test_onnx_runner(tmp_path) -> None:
    path = export_onnx(nn.Linear(16, 4), torch.rand(2, 16), tmp_path / "l.onnx")
    result = measure_in_subprocess(
        "onnx", onnx=path, one=(torch.rand(1, 16),), threads=1, repeats=10, warmup=1
    )
    assert result.runner == "onnx" and result.threads == 1 and result.batch_n == 0


def test_any_network_times_in_process() -> None:
    """MemN2N takes token stories, not images: the harness only needs example inputs."""
    model = MemN2N(vocab_size=20, memory_size=6, embedding_dim=8, hops=2).eval()
    queries, sentences = torch.randint(1, 20, (1, 5)), torch.randint(1, 20, (7, 5))
    memories = torch.arange(1, 7).view(1, 6)
    result = measure(model, (queries, sentences, memories), repeats=10, warmup=1)
    assert result.batch1_median_us > 0 and result.threads == torch.get_num_threads()


def test_bad_requests() -> None:
    one = (torch.rand(1, 3),)
    with pytest.raises(ValueError, match="unknown runner"):
        measure_in_subprocess("tpu", model=nn.Linear(3, 1), one=one)
    with pytest.raises(ValueError, match="needs the ONNX file"):
        measure_in_subprocess("onnx", one=one)
    with pytest.raises(ValueError, match="needs calibration"):
        measure_in_subprocess("pt2e", model=nn.Linear(3, 1), one=one)
    with pytest.raises(ValueError, match="threads"):
        measure_in_subprocess("eager", model=nn.Linear(3, 1), one=one, threads=0)
