"""bAbI question answering tasks (Weston et al., "Towards AI-Complete Question Answering:
A Set of Prerequisite Toy Tasks", arXiv:1502.05698, 2015), read from the original text
format, and turned into padded tensors for memory networks.

File format (one file per task and split, ``qa{N}_{name}_{train|test}.txt``)::

    ID text
    ID question<TAB>answer<TAB>supporting fact ids

IDs restart at 1 at each new story. A question sees every story sentence before it
(questions are not memories). As in Sukhbaatar et al. (2015, §4.2) a question's memory
holds only the **last** ``memory_size`` (50) sentences of its story.

Tensors (:func:`encode`): sentences are stored once in a table ``sentences (S, L)``
(row 0 is the empty sentence) and each question's memory is a list of row indices
``memories (Q, M)`` ordered **most recent first** (slot 0 = the sentence just before the
question), so the slot number is the temporal index of the paper's T_A / T_C.

Missing file: the shared copy of ``en-10k`` lacks ``qa3_three-supporting-facts_train.txt``
(see the data folder's SOURCE.md). :func:`load_babi` with ``babi_set="en-10k"`` warns
and uses ``en/qa3_three-supporting-facts_train.txt`` instead (its first 1000 questions
are exactly the first 1000 of the missing file); ``BabiData.fallbacks`` records it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from genoise.data.paths import record_read

BABI_SETS = ("en", "en-10k")
TASK_NAMES = {
    1: "single-supporting-fact", 2: "two-supporting-facts", 3: "three-supporting-facts",
    4: "two-arg-relations", 5: "three-arg-relations", 6: "yes-no-questions", 7: "counting",
    8: "lists-sets", 9: "simple-negation", 10: "indefinite-knowledge", 11: "basic-coreference",
    12: "conjunction", 13: "compound-coreference", 14: "time-reasoning", 15: "basic-deduction",
    16: "basic-induction", 17: "positional-reasoning", 18: "size-reasoning", 19: "path-finding",
    20: "agents-motivations",
}
_TOKEN = re.compile(r"[A-Za-z0-9]+")


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-case word tokens; punctuation ('.', '?', ',') is dropped."""
    return tuple(t.lower() for t in _TOKEN.findall(text))


@dataclass(frozen=True)
class BabiQuestion:
    """One question with the story sentences that precede it (chronological, uncapped).

    ``story_ids`` are the sentences' line ids; ``supporting`` the supporting-fact line ids."""

    task: int
    story: tuple[tuple[str, ...], ...]
    story_ids: tuple[int, ...]
    question: tuple[str, ...]
    answer: str
    supporting: tuple[int, ...]


def _read_text(path: Path) -> str:
    """The file's text; one-line errors naming it when missing or not UTF-8."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (a bAbI task file)")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                         "a bAbI task file is plain text") from None


def parse_babi(path: str | Path, task: int = 0) -> list[BabiQuestion]:
    """Parse one bAbI file. A malformed line raises ``ValueError("file:line: problem")``; a
    missing file ``FileNotFoundError``; an empty file (no question) or one that is not
    UTF-8 a ``ValueError`` naming it."""
    path = Path(path)
    content = _read_text(path)
    questions: list[BabiQuestion] = []
    story: list[tuple[str, ...]] = []
    story_ids: list[int] = []
    previous = 0
    for lineno, raw in enumerate(content.splitlines(), start=1):
        line = raw
        if not line.strip():
            continue

        def fail(problem: str, _lineno: int = lineno, _line: str = line) -> ValueError:
            return ValueError(f"{path}:{_lineno}: {problem}: {_line[:80]!r}")

        head, sep, rest = line.partition(" ")
        if not sep or not head.isdigit():
            raise fail("line must start with '<id> '")
        line_id = int(head)
        if line_id == 1:
            story, story_ids = [], []
        elif line_id != previous + 1:
            raise fail(f"id {line_id} does not follow {previous} (ids restart at 1 per story)")
        previous = line_id
        if "\t" not in rest:
            if "?" in rest:
                raise fail("question line without tab-separated answer and supporting ids")
            story.append(tokenize(rest))
            story_ids.append(line_id)
            continue
        fields = rest.split("\t")
        if len(fields) != 3:
            raise fail(f"question line needs 3 tab-separated fields, got {len(fields)}")
        text, answer, support = (f.strip() for f in fields)
        if not answer:
            raise fail("empty answer")
        try:
            supporting = tuple(int(s) for s in support.split())
        except ValueError:
            raise fail("supporting fact ids must be integers") from None
        known = set(story_ids)
        bad = [s for s in supporting if s not in known]
        if bad:
            raise fail(f"supporting fact id(s) {bad} are not earlier story sentences")
        questions.append(BabiQuestion(task, tuple(story), tuple(story_ids), tokenize(text),
                                      answer.lower(), supporting))
    if not questions:
        what = "empty file" if not content.strip() else "no question line (id text<TAB>answer<TAB>ids)"
        raise ValueError(f"{path}: {what}; not a bAbI task file")
    record_read(str(path))
    return questions


def task_file(data_dir: str | Path, task: int, split: str, babi_set: str = "en") -> Path:
    """Path of ``qa{task}_{name}_{split}.txt`` under ``data_dir/babi/{babi_set}`` (or
    ``data_dir/{babi_set}`` when ``data_dir`` is the bAbI folder itself)."""
    if task not in TASK_NAMES:
        raise ValueError(f"task must be in 1..20, got {task!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if babi_set not in BABI_SETS:
        raise ValueError(f"babi_set must be one of {BABI_SETS}, got {babi_set!r}")
    root = Path(data_dir)
    if (root / "babi").is_dir():
        root = root / "babi"
    return root / babi_set / f"qa{task}_{TASK_NAMES[task]}_{split}.txt"


class Vocabulary:
    """Word ↔ index map; index 0 is the padding / nil word."""

    def __init__(self, words: list[str] | tuple[str, ...]) -> None:
        self.words = ["<nil>", *sorted(set(words) - {"<nil>"})]
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: tuple[str, ...] | list[str]) -> list[int]:
        try:
            return [self.index[t] for t in tokens]
        except KeyError as err:
            raise ValueError(f"word {err.args[0]!r} is not in the vocabulary") from None

    @classmethod
    def from_questions(cls, *groups: list[BabiQuestion]) -> Vocabulary:
        words: set[str] = set()
        for group in groups:
            for q in group:
                words.update(q.question)
                words.add(q.answer)
                for sentence in q.story:
                    words.update(sentence)
        return cls(sorted(words))


@dataclass
class BabiTensors:
    """Padded tensors of a set of questions (see the module docstring).

    sentences (S, L) int64, row 0 empty; memories (Q, M) int64 rows of ``sentences``,
    slot 0 most recent, 0 = empty slot; queries (Q, Lq) int64; answers (Q,) int64;
    tasks (Q,) int64; supporting (Q, M) bool — slot holds a supporting fact."""

    sentences: Tensor
    memories: Tensor
    queries: Tensor
    answers: Tensor
    tasks: Tensor
    supporting: Tensor

    def __len__(self) -> int:
        return int(self.answers.shape[0])

    def subset(self, index: Tensor) -> BabiTensors:
        return BabiTensors(self.sentences, self.memories[index], self.queries[index],
                           self.answers[index], self.tasks[index], self.supporting[index])

    @property
    def memory_mask(self) -> Tensor:
        return self.memories > 0


def encode(questions: list[BabiQuestion], vocab: Vocabulary, memory_size: int = 50,
           sentence_len: int | None = None, query_len: int | None = None) -> BabiTensors:
    """Turn questions into :class:`BabiTensors`, keeping the last ``memory_size`` sentences."""
    if memory_size < 1:
        raise ValueError(f"memory_size must be >= 1, got {memory_size}")
    if not questions:
        raise ValueError("no questions to encode")
    table: dict[tuple[str, ...], int] = {(): 0}
    memories = torch.zeros(len(questions), memory_size, dtype=torch.long)
    supporting = torch.zeros(len(questions), memory_size, dtype=torch.bool)
    for qi, q in enumerate(questions):
        recent = q.story[-memory_size:][::-1]
        ids = q.story_ids[-memory_size:][::-1]
        memories[qi, : len(recent)] = torch.tensor([table.setdefault(s, len(table)) for s in recent])
        support = set(q.supporting)
        supporting[qi, : len(ids)] = torch.tensor([i in support for i in ids])
    sentence_len = sentence_len or max(1, max(len(s) for s in table))
    query_len = query_len or max(len(q.question) for q in questions)
    sentences = torch.zeros(len(table), sentence_len, dtype=torch.long)
    for sentence, row in table.items():
        if len(sentence) > sentence_len:
            raise ValueError(f"sentence of {len(sentence)} words exceeds sentence_len={sentence_len}")
        sentences[row, : len(sentence)] = torch.tensor(vocab.encode(sentence), dtype=torch.long)
    queries = torch.zeros(len(questions), query_len, dtype=torch.long)
    for qi, q in enumerate(questions):
        if len(q.question) > query_len:
            raise ValueError(f"question of {len(q.question)} words exceeds query_len={query_len}")
        queries[qi, : len(q.question)] = torch.tensor(vocab.encode(q.question), dtype=torch.long)
    answers = torch.tensor([vocab.index[q.answer] for q in questions], dtype=torch.long)
    tasks = torch.tensor([q.task for q in questions], dtype=torch.long)
    return BabiTensors(sentences, memories, queries, answers, tasks, supporting)


@dataclass
class BabiData:
    """Train / validation / test tensors of one or more tasks, with their vocabulary.

    ``fallbacks`` lists the substitutions made for missing files (task → file used)."""

    train: BabiTensors
    valid: BabiTensors
    test: BabiTensors
    vocab: Vocabulary
    tasks: list[int]
    babi_set: str
    memory_size: int
    fallbacks: dict[int, str] = field(default_factory=dict)


def parse_tasks(task: int | str | list[int]) -> list[int]:
    """``"all"`` → 1..20; an int or list of ints in 1..20 otherwise."""
    if task == "all":
        return list(range(1, 21))
    tasks = [task] if isinstance(task, (int, str)) else list(task)
    out = []
    for t in tasks:
        try:
            value = int(t)
        except (TypeError, ValueError):
            raise ValueError(f"task must be 1..20 or 'all', got {t!r}") from None
        if value not in TASK_NAMES:
            raise ValueError(f"task must be 1..20 or 'all', got {t!r}")
        out.append(value)
    return out


def babi_files(data_dir: str | Path | None, tasks: list[int], babi_set: str = "en"
               ) -> tuple[dict[int, tuple[Path, Path]], dict[int, str]]:
    """The (train, test) files of each task and the 1k fallbacks taken for missing 10k
    training files (module docstring). Raises ``FileNotFoundError`` naming ``GENOISE_DATA``
    and the files looked for when there is no data folder or a file is missing."""
    if data_dir is None:
        first = f"babi/{babi_set}/qa{tasks[0]}_{TASK_NAMES[tasks[0]]}_train.txt"
        raise FileNotFoundError(
            f"no bAbI data folder: set GENOISE_DATA or data_dir= (--data-dir) to the folder holding "
            f"babi/{babi_set}/ (looked for {2 * len(tasks)} file(s) such as {first})")
    files, fallbacks, missing = {}, {}, []
    for t in tasks:
        train, test = task_file(data_dir, t, "train", babi_set), task_file(data_dir, t, "test", babi_set)
        if not train.is_file() and babi_set == "en-10k" and task_file(data_dir, t, "train", "en").is_file():
            fallbacks[t] = str(task_file(data_dir, t, "train", "en"))
            warnings.warn(f"{train}: missing; task {t} trains on the 1k file {fallbacks[t]} instead",
                          stacklevel=3)
            train = Path(fallbacks[t])
        files[t] = (train, test)
        missing += [f for f in (train, test) if not f.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more of the {2 * len(tasks)} files looked for" \
            if len(missing) > 1 else ""
        raise FileNotFoundError(f"bAbI file {missing[0]} is missing{more}; set GENOISE_DATA or data_dir= "
                                f"(--data-dir) to the folder holding babi/{babi_set}/")
    return files, fallbacks


def load_babi(data_dir: str | Path | None, task: int | str | list[int] = "all", babi_set: str = "en",
              memory_size: int = 50, valid_fraction: float = 0.1, seed: int = 0) -> BabiData:
    """Read the train and test files of ``task`` and hold out ``valid_fraction`` of each
    task's training questions (chosen at random with ``seed``) as the validation set, as
    in Sukhbaatar et al. (2015, §4.2: "10 % of the bAbI training set was held-out").
    ``data_dir=None`` or a missing file raises ``FileNotFoundError`` (:func:`babi_files`)."""
    tasks = parse_tasks(task)
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    if babi_set not in BABI_SETS:
        raise ValueError(f"babi_set must be one of {BABI_SETS}, got {babi_set!r}")
    files, fallbacks = babi_files(data_dir, tasks, babi_set)
    generator = torch.Generator().manual_seed(seed)
    train, valid, test = [], [], []
    for t in tasks:
        questions = parse_babi(files[t][0], t)
        order = torch.randperm(len(questions), generator=generator).tolist()
        n_valid = round(valid_fraction * len(questions))
        held = set(order[:n_valid])
        valid += [q for i, q in enumerate(questions) if i in held]
        train += [q for i, q in enumerate(questions) if i not in held]
        test += parse_babi(files[t][1], t)
    vocab = Vocabulary.from_questions(train, valid, test)
    everything = train + valid + test
    # Slots that can be filled: the longest training story, capped at memory_size (the
    # released code's config.sz = min(50, longest story)); test stories keep their last ones.
    slots = max(1, min(memory_size, max(len(q.story) for q in train + valid)))
    sentence_len = max(1, max(len(s) for q in everything for s in q.story[-slots:] or [()]))
    query_len = max(len(q.question) for q in everything)

    def enc(qs: list[BabiQuestion]) -> BabiTensors:
        return encode(qs, vocab, slots, sentence_len, query_len)

    valid_tensors = enc(valid) if valid else enc(train[:0] or train[:1]).subset(torch.arange(0))
    return BabiData(enc(train), valid_tensors, enc(test), vocab, tasks, babi_set, slots, fallbacks)
