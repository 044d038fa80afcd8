"""The documentation holds: every ```python block of README.md and docs/*.md runs as written
(each file's blocks in order, in one namespace, in a temporary working directory), every
``genoise SUBCOMMAND`` a shell block names is a sub-command of the CLI, and every relative
link or image points to a file tracked by git (docs never embed git-ignored files such as
``runs/…`` or ``benchmarks/results/…``)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```", flags=re.S | re.M)  # also indented (in lists)
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"""<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", flags=re.I)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s.*)?$", flags=re.M)
REAL_DATA = ("mnist", "cifar10", "babi")  # data sets that need GENOISE_DATA (digits do not)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", flags=re.I)


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def code_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """``(first line number of the code, code)`` of every fenced block in ``language``."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(3)) + 1, textwrap.dedent(m.group(3)))
            for m in FENCE.finditer(text) if m.group(2) == language]


PYTHON_DOCS = [path for path in DOCS if code_blocks(path, "python")]


def test_the_docs_have_python_examples():
    assert (ROOT / "README.md") in PYTHON_DOCS and len(PYTHON_DOCS) >= 5


@pytest.mark.parametrize("path", PYTHON_DOCS, ids=_name)
def test_python_blocks_run_as_written(path, tmp_path, monkeypatch, shared_data):
    """Each file's blocks run in order in one namespace (a later block may use an earlier
    block's names, as a reader following the page would), in an empty working directory so
    that a block that writes ``runs/…`` writes nowhere in the checkout. ``GENOISE_DATA``
    points at the shared data folder; without one, a page that reads a real data set is
    skipped (saying so), never run on other data."""
    blocks = code_blocks(path, "python")
    if shared_data is None:
        needs = sorted({name for _, code in blocks for name in REAL_DATA if f'"{name}"' in code})
        if needs:
            pytest.skip(f"{_name(path)} reads {', '.join(needs)}: set GENOISE_DATA")
    monkeypatch.chdir(tmp_path)
    if shared_data is not None:
        monkeypatch.setenv("GENOISE_DATA", str(shared_data))
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    for line, code in blocks:
        # pad with blank lines so that a traceback names the line of the Markdown file
        exec(compile("\n" * (line - 1) + code, _name(path), "exec"), namespace)


def _cli_subcommands() -> set[str]:
    from genoise import cli

    parser = cli._parser()
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


COMMAND = re.compile(r"(?:^|[\s;&|(`$])genoise\s+([A-Za-z][\w-]*)")


def shell_commands() -> list[tuple[str, int, str]]:
    """``(file, line, sub-command)`` of every ``genoise WORD`` in a shell block."""
    found = []
    for path in DOCS:
        for language in ("bash", "sh", "shell", "console"):
            for start, code in code_blocks(path, language):
                for offset, text in enumerate(code.splitlines()):
                    found += [(_name(path), start + offset, m.group(1)) for m in COMMAND.finditer(text)]
    return found


def test_shell_blocks_name_real_cli_subcommands():
    commands = shell_commands()
    assert len({word for *_, word in commands}) >= 4, commands  # the test sees the blocks
    known = _cli_subcommands()
    unknown = [f"{file}:{line}: genoise {word}" for file, line, word in commands if word not in known]
    assert not unknown, f"not sub-commands of genoise ({', '.join(sorted(known))}): {unknown}"


def _prose(text: str) -> str:
    """The text without fenced blocks and inline code (a ``[x](y)`` there is code, not a link)."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text)


def relative_links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every relative link and image (Markdown, reference or HTML)."""
    text = _prose(path.read_text(encoding="utf-8"))
    found = []
    for pattern in (LINK, HTML_SRC, REFERENCE):
        for m in pattern.finditer(text):
            target = m.group(1)
            if not EXTERNAL.match(target):
                found.append((text.count("\n", 0, m.start()) + 1, target.split("#")[0]))
    return found


def _tracked_files() -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return set(listing.stdout.decode("utf-8").split("\0")) - {""}


def test_command_finder_reads_shell_lines():
    lines = "$ genoise train x\nGENOISE_DATA=d genoise demo --only y && genoise eval knn r\n# mygenoise no\n"
    assert [m.group(1) for m in COMMAND.finditer(lines)] == ["train", "demo", "eval"]


def test_relative_links_point_to_tracked_files():
    tracked = _tracked_files()
    folders = {parent.as_posix() for name in tracked for parent in Path(name).parents}
    links = [(path, line, target) for path in DOCS for line, target in relative_links(path)]
    assert len(links) >= 10  # the test sees the links
    broken = []
    for path, line, target in links:
        resolved = (path.parent / target).resolve()
        try:
            name = resolved.relative_to(ROOT).as_posix()
        except ValueError:
            broken.append(f"{_name(path)}:{line}: {target} (outside the repository)")
            continue
        if name not in tracked and name not in folders:
            broken.append(f"{_name(path)}:{line}: {target} (not tracked by git)")
    assert not broken, "links to files git does not track:\n" + "\n".join(broken)


def test_link_checker_sees_images_and_skips_code(tmp_path):
    """The checker's own parsing: an image, an HTML image and a reference link are found;
    links inside code and external addresses are not."""
    page = tmp_path / "page.md"
    page.write_text("![plot](../runs/x/plot.png) and [doc](docs/a.md#part)\n"
                    '<img src="benchmarks/results/b.png">\n[ref]: runs/c.md\n'
                    "`[no](code.md)` [web](https://example.org) [anchor](#top)\n"
                    "```python\nLOSSES[\"hinge\"](e, t)\n```\n", encoding="utf-8")
    assert relative_links(page) == [(1, "../runs/x/plot.png"), (1, "docs/a.md"),
                                    (2, "benchmarks/results/b.png"), (3, "runs/c.md")]
