"""genoise.train.allocator: glibc's thresholds raised once, the user's own settings respected,
and far fewer page faults while the allocations grow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from genoise.train.allocator import _USER_SETTINGS, ALLOCATOR_ENV, tune_cpu_allocator

_USER = (*_USER_SETTINGS, "GLIBC_TUNABLES")  # every setting of the user's the module reads

# Blocks of strictly growing size, 1 to 24 MiB by 0.5 MiB, each filled (every page touched)
# and freed, as the first steps of a training loop allocate its activations. Untuned, each block
# is above the mmap threshold glibc has adapted to (the size of the last block freed), so it is
# mapped afresh and every one of its pages faults: exactly the pages of all the blocks, 150,484
# faults in every process. Tuned (threshold 32 MiB, no trimming), the blocks come from the heap,
# which faults only as it grows: 6,436-16,421 faults (eight processes, 2026-12-07). A ConvNet's
# training loop shows the same in the wall time (docs/training.md, "The CPU allocator"); its
# fault counts untuned depend on how far glibc's threshold has adapted (0 to 130,432 per
# process), so the test measures the mechanism, whose count is deterministic.
_PROBE = """
import json, resource, torch
from genoise.train.allocator import tune_cpu_allocator
applied = tune_cpu_allocator()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for half_mib in range(2, 49):
    block = torch.ones(half_mib << 17)
    del block
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""
_PAGES = sum(half_mib << 19 for half_mib in range(2, 49)) // os.sysconf("SC_PAGE_SIZE")


def _huge_pages_always() -> bool:
    path = "/sys/kernel/mm/transparent_hugepage/enabled"
    if not os.path.exists(path):
        return False
    with open(path) as setting:
        return "[always]" in setting.read()


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
def test_tuning_cuts_the_page_faults_of_growing_allocations():
    default, tuned = _probe("system"), _probe("tuned")
    assert default["applied"] is False and tuned["applied"] is True
    if not _huge_pages_always():  # a 2 MiB page faults once for 512 small ones
        assert default["faults"] >= _PAGES  # every block mapped afresh
    assert 4 * tuned["faults"] < default["faults"], (tuned, default)


def test_cli_refuses_a_bad_choice_in_one_line_and_writes_nothing(clean_env, tmp_path, capsys):
    from genoise.cli import main

    clean_env.setenv(ALLOCATOR_ENV, "fast")
    assert main(["train", "pca-mnist", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "genoise: error: GENOISE_MALLOC must be one of 'tuned', 'system'; got 'fast'"
    assert not (tmp_path / "runs").exists()
