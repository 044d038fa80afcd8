"""genoise.train.allocator: glibc's thresholds raised once, the user's own settings respected,
and far fewer page faults in a ConvNet training loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genoise.train.allocator import _USER_SETTINGS, ALLOCATOR_ENV, tune_cpu_allocator

_USER = (*_USER_SETTINGS, "GLIBC_TUNABLES")  # every setting of the user's the module reads

# A small ConvNet's training step (forward, backward, AdamW) on a batch of 256 two-channel
# 33 px images, as the Two Rooms encoder takes: its activations and gradients (0.5-4 MiB
# each) are allocated and freed at every step. Minor page faults of 20 steps, after three (the
# tuned heap reaches its size in the first steps: after one, tuned processes still took
# 1,500-2,900 faults on a later machine, within 10x of the untuned ones that glibc's own
# threshold had adapted for, 4,097-8,673; after three, 0-1,025 against 11,201-130,432).
_PROBE = """
import json, resource, torch
from genoise.train.allocator import tune_cpu_allocator
applied = tune_cpu_allocator()
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(2, 16, 4, 2, 1), torch.nn.GELU(), torch.nn.Conv2d(16, 32, 4, 2, 1), torch.nn.GELU(),
    torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 32),
)
opt = torch.optim.AdamW(net.parameters(), 1e-3)
x = torch.randn(256, 2, 33, 33)
def step():
    opt.zero_grad()
    net(x).square().mean().backward()
    opt.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(choice: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _USER}
    env[ALLOCATOR_ENV] = choice
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*_USER, ALLOCATOR_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_bad_choice_is_one_line_error_naming_the_variable(clean_env):
    clean_env.setenv(ALLOCATOR_ENV, "jemalloc")
    with pytest.raises(ValueError, match="GENOISE_MALLOC must be one of 'tuned', 'system'; got 'jemalloc'"):
        tune_cpu_allocator()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (ALLOCATOR_ENV, "system"),
        ("MALLOC_TRIM_THRESHOLD_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0"),
    ],
)
def test_leaves_malloc_alone_when_asked_or_already_tuned(clean_env, name, value):
    clean_env.setenv(name, value)
    assert tune_cpu_allocator() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_tuning_cuts_the_page_faults_of_repeated_large_allocations():
    # glibc adapts its own mmap threshold as chunks are freed, so one process's count varies
    # by an order of magnitude from run to run (11,201 to 130,432 faults untuned, 0 to 1,025
    # tuned, eight processes each, 2026-12-07): the claim is made of the typical process, the
    # median of five each
    default, tuned = ([_probe(choice) for _ in range(5)] for choice in ("system", "tuned"))
    assert all(r["applied"] is False for r in default) and all(r["applied"] is True for r in tuned)
    median = [sorted(r["faults"] for r in runs)[2] for runs in (default, tuned)]
    assert 10 * median[1] < median[0], (tuned, default)


def test_cli_refuses_a_bad_choice_in_one_line_and_writes_nothing(clean_env, tmp_path, capsys):
    from genoise.cli import main

    clean_env.setenv(ALLOCATOR_ENV, "fast")
    assert main(["train", "pca-mnist", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "genoise: error: GENOISE_MALLOC must be one of 'tuned', 'system'; got 'fast'"
    assert not (tmp_path / "runs").exists()
