"""``benchmarks/_records.write_records``: a benchmark's table as Markdown and JSON, the JSON
carrying the commit of the code that measured it and the machine it ran on."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from genoise.train.run_folder import git_commit, machine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def write_records():
    sys.path.insert(0, str(ROOT))
    from benchmarks._records import write_records

    return write_records


def test_the_record_carries_the_commit_of_the_source_tree(write_records, tmp_path):
    payload = {"command": "python benchmarks/x.py", "date": "2026-12-06", "rows": [{"a": 1.5}]}
    write_records(tmp_path / "records", "x", "| a |\n", payload)
    record = json.loads((tmp_path / "records" / "x.json").read_text())
    assert record == {**payload, "commit": git_commit(), "machine": machine()}
    assert (tmp_path / "records" / "x.md").read_text() == "| a |\n"
    assert "commit" not in payload and "machine" not in payload  # the caller's dictionary is not changed
    if (ROOT / ".git").exists():  # a checkout: the hash, marked when tracked files differ
        assert re.fullmatch(r"[0-9a-f]{40}( \(modified\))?", record["commit"])


def test_a_payload_that_names_its_commit_keeps_it_and_the_indent_is_the_callers(write_records, tmp_path):
    write_records(tmp_path, "y", "", {"rows": [], "commit": "abc", "machine": {"cpu": "elsewhere"}}, indent=2)
    text = (tmp_path / "y.json").read_text()
    assert json.loads(text)["commit"] == "abc"
    assert json.loads(text)["machine"] == {"cpu": "elsewhere"}
    assert text.startswith('{\n  "rows"')


def test_the_machine_names_the_cpu_and_the_instruction_set_torch_dispatches_to():
    info = machine()
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["torch_threads"] == torch.get_num_threads()
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["cores"] is None or info["cores"] >= 1
