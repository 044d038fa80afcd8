"""bAbI reader: handmade files (well-formed and malformed) and the real files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from genoise.data.babi import TASK_NAMES, Vocabulary, encode, load_babi, parse_babi, task_file

STORY = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary?\tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel? \thallway\t4
1 Sandra travelled to the office.
2 Where is Sandra?\toffice\t1
"""


def _write(tmp_path: Path, text: str, name: str = "qa1.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_handmade_story(tmp_path):
    qs = parse_babi(_write(tmp_path, STORY), task=1)
    assert len(qs) == 3
    assert qs[0].story == (("mary", "moved", "to", "the", "bathroom"),
                           ("john", "went", "to", "the", "hallway"))
    assert qs[0].question == ("where", "is", "mary") and qs[0].answer == "bathroom"
    assert qs[0].supporting == (1,)
    assert len(qs[1].story) == 3 and qs[1].story_ids == (1, 2, 4)  # questions are not memories
    assert qs[2].story == (("sandra", "travelled", "to", "the", "office"),)  # a new story


@pytest.mark.parametrize("text, match", [
    ("1 Mary moved.\nx John went.\n", r"qa1.txt:2: line must start"),
    ("1 Mary moved.\n3 John went.\n", r"qa1.txt:2: id 3 does not follow 1"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\n", r"qa1.txt:2: question line needs 3"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\tone\n", r"qa1.txt:2: supporting fact ids must be integers"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\t5\n", r"qa1.txt:2: supporting fact id\(s\) \[5\]"),
    ("1 Mary moved.\n2 Where is Mary? kitchen 1\n", r"qa1.txt:2: question line without tab"),
    ("1 Mary moved.\n2 Where is Mary?\t\t1\n", r"qa1.txt:2: empty answer"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        parse_babi(_write(tmp_path, text))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.txt: missing"):
        parse_babi(tmp_path / "nothere.txt")


def test_encode_keeps_last_sentences_most_recent_first(tmp_path):
    lines = [f"{i} Mary went to place{i}." for i in range(1, 8)] + ["8 Where is Mary?\tplace7\t7"]
    qs = parse_babi(_write(tmp_path, "\n".join(lines) + "\n"))
    vocab = Vocabulary.from_questions(qs)
    data = encode(qs, vocab, memory_size=3)
    assert data.memories.shape == (1, 3)
    first = data.sentences[data.memories[0, 0]]
    assert vocab.words[int(first[3])] == "place7"  # slot 0 = most recent
    assert vocab.words[int(data.sentences[data.memories[0, 2]][3])] == "place5"
    assert data.supporting[0].tolist() == [True, False, False]
    assert vocab.words[int(data.answers[0])] == "place7"
    assert torch.all(data.sentences[0] == 0)


def _fake_babi(root: Path, tasks=(1, 2), n_train=20) -> Path:
    for babi_set in ("en", "en-10k"):
        (root / "babi" / babi_set).mkdir(parents=True, exist_ok=True)
    for t in tasks:
        block = "1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1\n"
        for babi_set, n in (("en", n_train), ("en-10k", 10 * n_train)):
            task_file(root, t, "test", babi_set).write_text(block * 5)
            if not (babi_set == "en-10k" and t == 2):  # like the real qa3: missing 10k train file
                task_file(root, t, "train", babi_set).write_text(block * n)
    return root


def test_load_babi_validation_split_and_10k_fallback(tmp_path):
    root = _fake_babi(tmp_path)
    data = load_babi(root, [1, 2], "en", memory_size=50, valid_fraction=0.1, seed=0)
    assert (len(data.train), len(data.valid), len(data.test)) == (36, 4, 10)
    assert data.train.tasks.bincount().tolist()[1:] == [18, 18]
    with pytest.warns(UserWarning, match=r"en-10k/qa2_two-supporting-facts_train.txt: missing"):
        big = load_babi(root, [1, 2], "en-10k")
    assert list(big.fallbacks) == [2]
    assert int((big.train.tasks == 1).sum() + (big.valid.tasks == 1).sum()) == 200
    assert int((big.train.tasks == 2).sum() + (big.valid.tasks == 2).sum()) == 20  # the 1k file


@pytest.mark.parametrize(("payload", "message"), [
    (b"", r"empty file; not a bAbI task file"),
    (b"\n  \n", r"empty file; not a bAbI task file"),
    (b"1 Mary moved to the bathroom.\n2 John went to the hallway.\n", r"no question line"),
    (b"1 Mary moved to the b\xe4throom.\n", r"not UTF-8 text \(byte 0xe4 at offset 21\)"),
    ("1 Mary moved.\n2 Where is Mary?\tkitchen\t1\n".encode("utf-16"),
     r"not UTF-8 text \(byte 0xff at offset 0\)"),
])
def test_empty_or_non_utf8_file_is_one_line_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "qa1_single-supporting-fact_train.txt"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=r"^\S*qa1_single-supporting-fact_train\.txt: " + message):
        parse_babi(path, 1)


def test_empty_task_file_inside_load_babi_names_it(tmp_path):
    root = _fake_babi(tmp_path)
    task_file(root, 2, "test", "en").write_text("")
    with pytest.raises(ValueError, match=r"qa2_two-supporting-facts_test\.txt: empty file"):
        load_babi(root, [1, 2], "en")


def test_no_data_folder_names_genoise_data_and_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no bAbI data folder: set GENOISE_DATA .*\(looked for "
                                                r"2 file\(s\) such as babi/en/qa1_single-supporting-fact_"):
        load_babi(None, 1, "en")
    with pytest.raises(FileNotFoundError, match=r"looked for 40 file\(s\) such as babi/en-10k/qa1_"):
        load_babi(None, "all", "en-10k")


def test_missing_files_name_the_first_the_count_and_genoise_data(tmp_path):
    root = _fake_babi(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^bAbI file \S*babi/en/qa3_three-supporting-facts_"
                                                r"train\.txt is missing and 1 more of the 6 files "
                                                r"looked for; set GENOISE_DATA or data_dir="):
        load_babi(root, [1, 2, 3], "en")
    with pytest.raises(FileNotFoundError, match=r"bAbI file \S*/qa1_single-supporting-fact_train\.txt is "
                                                r"missing and 1 more of the 2 files looked for"):
        load_babi(tmp_path / "elsewhere", 1, "en")


def test_bad_task_and_set_are_refused(tmp_path):
    with pytest.raises(ValueError, match="task must be"):
        load_babi(tmp_path, 21)
    with pytest.raises(ValueError, match="babi_set"):
        task_file(tmp_path, 1, "train", "hn")


def test_real_files_have_the_documented_counts(shared_data):
    if shared_data is None or not (Path(shared_data) / "babi" / "en").is_dir():
        pytest.skip("no bAbI data folder")
    for task in (1, 3, 16, 20):
        for split in ("train", "test"):
            assert len(parse_babi(task_file(shared_data, task, split, "en"), task)) == 1000
    assert len(parse_babi(task_file(shared_data, 1, "train", "en-10k"), 1)) == 10000
    assert not task_file(shared_data, 3, "train", "en-10k").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_babi(shared_data, [1, 3], "en")
    assert (len(data.train), len(data.valid), len(data.test)) == (1800, 200, 2000)
    assert data.train.memories.shape[1] == 50
    assert int(data.train.memory_mask.sum(1).max()) == 50  # task 3 stories exceed 50 sentences
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = load_babi(shared_data, 16, "en")
    # memory width = longest training story (task 16: stories of 9 sentences), as config.sz
    longest = int(short.train.memory_mask.sum(1).max())
    assert short.memory_size == short.train.memories.shape[1] == short.test.memories.shape[1] == longest < 50
    assert len(TASK_NAMES) == 20
