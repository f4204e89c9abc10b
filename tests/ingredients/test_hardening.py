"""Issue 15, ingredient side: output only to regular files, no partial files left, per-row
encoding fallback, unbalanced quotes reported, control characters stripped and never echoed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deeproot.cli.main import main
from deeproot.ingredients import tag
from deeproot.ingredients.batch import read_csv_rows, sweep_partials, tag_csv, write_records

HEADER = ",Unnamed: 0,page,product_name,ingredient,type"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def rows_csv(n: int = 6) -> str:
    lines = [HEADER]
    for i in range(n):
        lines.append(f'{i},{i},1,상품 {i},"정제수, 글리세린, 소듐라우레스설페이트, 리모넨",지성')
    return "\n".join(lines) + "\n"


# -- --out ---------------------------------------------------------------------------------------


def test_out_onto_a_fifo_is_refused_and_left_alone(capsys, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(rows_csv(), encoding="utf-8")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "ingredients", "tag", "--csv", str(src), "--out", str(fifo))
    assert code == 3
    assert err.strip() == (
        f"error: output {fifo} is not a regular file; give a regular file path (or - for stdout)"
    )
    assert fifo.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "pipe"]


def test_out_onto_a_device_is_refused(capsys, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(rows_csv(), encoding="utf-8")
    code, _, err = run(capsys, "ingredients", "tag", "--csv", str(src), "--out", "/dev/null")
    assert code == 3 and "/dev/null is not a regular file" in err
    assert Path("/dev/null").is_char_device()


def test_interrupted_write_leaves_no_partial_and_keeps_the_old_file(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(rows_csv(), encoding="utf-8")
    out = tmp_path / "tags.jsonl"
    out.write_text("previous run\n", encoding="utf-8")
    records, _ = tag_csv(src)

    def interrupted():
        for i, rec in enumerate(records):
            if i == 3:
                raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, which main() turns into it)
            yield rec

    with pytest.raises(KeyboardInterrupt):
        write_records(interrupted(), "jsonl", out, sys.stdout)
    assert out.read_text(encoding="utf-8") == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "tags.jsonl"]


def test_partials_of_killed_runs_are_swept(tmp_path):
    out = tmp_path / "tags.jsonl"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)  # the process has exited
    stale = tmp_path / f".tags.jsonl.partial-{dead_pid}"
    legacy = tmp_path / ".tags.jsonl.partial"  # what older versions left behind
    live = tmp_path / f".tags.jsonl.partial-{os.getppid()}"  # a run still going
    other = tmp_path / f".other.jsonl.partial-{dead_pid}"
    for p in (stale, legacy, live, other):
        p.write_text("x", encoding="utf-8")
    assert sweep_partials(out) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_killed_batch_leaves_nothing_the_next_run_keeps(tmp_path):
    """kill -9 in the middle of writing, then a normal run: no partial file survives."""
    src = tmp_path / "in.csv"
    src.write_text(rows_csv(400), encoding="utf-8")
    out = tmp_path / "tags.jsonl"
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from deeproot.ingredients.batch import tag_csv, write_records\n"
        f"records, _ = tag_csv(Path({str(src)!r}))\n"
        "def killed():\n"
        "    for i, rec in enumerate(records):\n"
        "        if i == 50:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        yield rec\n"
        f"write_records(killed(), 'jsonl', Path({str(out)!r}), sys.stdout)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert res.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tags.jsonl.partial-")]
    assert len(left) == 1 and not out.exists()
    records, _ = tag_csv(src)
    write_records(records, "jsonl", out, sys.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "tags.jsonl"]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 400


# -- encodings and quotes ------------------------------------------------------------------------


def test_one_bad_byte_in_a_cp949_file_costs_one_row(capsys, tmp_path):
    data = rows_csv(6).encode("cp949")
    row3 = data.index("3,3,1,".encode("cp949"))
    at = data.index("글리세린".encode("cp949"), row3)
    data = data[:at] + b"\xff" + data[at + 1 :]  # break the first byte of 글 in row 3
    src = tmp_path / "cp949.csv"
    src.write_bytes(data)
    out = tmp_path / "o.jsonl"
    code, _, err = run(capsys, "ingredients", "tag", "--csv", str(src), "--out", str(out))
    assert code == 0
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["error"] is not None for r in recs] == [False, False, False, True, False, False]
    assert recs[3]["error"] == "undecodable bytes in the ingredient text (line 5)"
    assert all(r["flags"] and r["types"] for i, r in enumerate(recs) if i != 3)
    assert "tagged 6 rows (cp949, 1 line(s) in another encoding or undecodable)" in err
    assert "1 bad" in err


def test_a_utf8_line_in_a_cp949_file_is_read(tmp_path):
    lines = rows_csv(4).splitlines(keepends=True)
    data = b"".join(line.encode("utf-8" if i == 2 else "cp949") for i, line in enumerate(lines))
    src = tmp_path / "mixed.csv"
    src.write_bytes(data)
    rows, encoding = read_csv_rows(src, "ingredient")
    got = list(rows)
    assert encoding == "cp949, 1 line(s) in another encoding or undecodable"
    assert [e for _, e in got] == [None] * 4
    assert {t for t, _ in got} == {"정제수, 글리세린, 소듐라우레스설페이트, 리모넨"}


def test_unbalanced_quote_is_reported_with_its_line_and_rows_are_not_merged(tmp_path):
    # the quote before 정제수 is never closed: csv would run row 2 into rows 3, 4, …
    lines = rows_csv(6).splitlines(keepends=True)
    lines[3] = lines[3].replace('리모넨",지성', "리모넨,지성")
    text = "".join(lines)
    src = tmp_path / "q.csv"
    src.write_text(text, encoding="utf-8")
    got = list(read_csv_rows(src, "ingredient")[0])
    errors = [e for _, e in got]
    assert len(got) == 6
    assert errors[2] is not None and errors[2].startswith("unbalanced quote at line 4:")
    # every other row is read on its own, none merged into the broken one
    assert [t for t, e in got if e is None] == [
        "정제수, 글리세린, 소듐라우레스설페이트, 리모넨"
    ] * 5


def test_stray_quote_that_shifts_fields_is_a_bad_row(tmp_path):
    text = rows_csv(6).replace('2,2,1,상품 2,"정제수', '2,2,1,"상품 2,"정제수')
    src = tmp_path / "q.csv"
    src.write_text(text, encoding="utf-8")
    got = list(read_csv_rows(src, "ingredient")[0])
    assert got[2] == (None, "row at line 4 has 8 fields, the header 6; check its quotes and commas")
    assert [e for _, e in got].count(None) == 5


def test_quoted_list_over_several_lines_is_one_row(tmp_path):
    text = rows_csv(3).replace(
        '"정제수, 글리세린, 소듐라우레스설페이트, 리모넨"',
        '"정제수, 글리세린,\n소듐라우레스설페이트,\n리모넨, 향료, 시트랄, 제라니올, 리날룰, '
        '쿠마린, 헥실신남알, 벤질알코올, 유제놀, 파네솔"',
    )
    src = tmp_path / "wrapped.csv"
    src.write_text(text, encoding="utf-8")
    got = list(read_csv_rows(src, "ingredient")[0])
    assert [e for _, e in got] == [None, None, None]
    assert all("\n리모넨, 향료" in t for t, _ in got)


# -- control characters --------------------------------------------------------------------------

GLUED = ["\u202e리모넨", "\ufeff리날룰", "제라니올\x07", "\x1b[31m시트랄\x1b[0m", "쿠마린\u200b"]


@pytest.mark.parametrize("sep", [", ", "\n"])
def test_control_characters_glued_to_names_are_stripped(sep):
    result = tag(sep.join(["정제수", *GLUED, "글리세린"]))
    assert result.unknown == ()
    assert [i.canonical for i in result.ingredients] == [
        "정제수",
        "리모넨",
        "리날룰",
        "제라니올",
        "시트랄",
        "쿠마린",
        "글리세린",
    ]
    assert {f.canonical for f in result.flags} == {
        "리모넨",
        "리날룰",
        "제라니올",
        "시트랄",
        "쿠마린",
    }
    texts = json.dumps(result.record(), ensure_ascii=False)
    assert not any(c in texts for c in "\u202e\ufeff\x07\x1b\u200b")


def test_nothing_raw_reaches_the_terminal(capsys):
    hostile = "정제수, \u202e리모넨, 모르는성분\x1b]0;title\x07이름, \x1b[2J가짜성분"
    for cmd in ("tag", "parse"):
        code, out, _ = run(capsys, "ingredients", cmd, hostile)
        assert code == 0
        assert not any(c in out for c in "\u202e\x07\x1b"), out
    code, out, _ = run(capsys, "ingredients", "tag", hostile)
    assert "  allergen\t리모넨\t리모넨 (name)" in out.splitlines()
