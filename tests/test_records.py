"""Readers and writers: field mapping, rejects with reasons, reconciled counts, atomic and resumable writes."""

from __future__ import annotations

import json

import pytest

from eval.problem import PROBLEM_REQUIRED, Problem
from eval.records import (
    DataError,
    RowError,
    append_jsonl,
    load_records,
    read_jsonl,
    write_jsonl,
    write_parquet,
)


def _problem(row):
    if not str(row["answer"]).strip():
        raise RowError("empty answer", field="answer")
    return Problem(id=str(row["id"]), problem=row["problem"], answer=str(row["answer"]), source="fixture")


def _ten_rows_three_bad(path):
    lines = [json.dumps({"id": i, "question": f"What is {i}+1?", "final": str(i + 1)}) for i in range(7)]
    lines.insert(2, '{"id": 70, "question": "broken json", ')  # invalid JSON
    lines.insert(5, json.dumps({"id": 71, "final": "3"}))  # missing question
    lines.insert(8, json.dumps({"id": 72, "question": "Blank answer?", "final": "  "}))  # empty answer
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ten_rows_three_malformed(tmp_path):
    source = _ten_rows_three_bad(tmp_path / "pool.jsonl")
    result = load_records(
        source, _problem, field_map={"problem": "question", "answer": "final"}, required=PROBLEM_REQUIRED
    )
    assert result.counts() == {"read": 10, "kept": 7, "rejected": 3}
    assert result.reconciled
    by_row = {r.row: r for r in result.rejects}
    assert sorted(by_row) == [3, 6, 9]
    assert "invalid JSON" in by_row[3].reason
    assert by_row[6].field == "problem" and "missing required field" in by_row[6].reason
    assert by_row[9].field == "answer"
    assert all(r.source == str(source) for r in result.rejects)
    assert result.checksum and len(result.checksum) == 64
    assert [p.answer for p in result.kept] == [str(i + 1) for i in range(7)]


def test_parquet_round_trip_and_mapping(tmp_path):
    rows = [{"uid": "a", "problem": "p1", "answer": "1"}, {"uid": "b", "problem": "p2", "answer": None}]
    write_parquet(tmp_path / "x.parquet", rows)
    result = load_records(tmp_path / "x.parquet", _problem, field_map={"id": "uid"}, required=PROBLEM_REQUIRED)
    assert result.counts() == {"read": 2, "kept": 1, "rejected": 1}
    assert result.rejects[0].field == "answer"


def test_saved_hf_dataset_folder(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"id": "1", "problem": "p", "answer": "2"}]).save_to_disk(str(tmp_path / "ds"))
    result = load_records(tmp_path / "ds", _problem, required=PROBLEM_REQUIRED)
    assert result.counts() == {"read": 1, "kept": 1, "rejected": 0}


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file"):
        load_records(tmp_path / "nope.jsonl", _problem)


def test_unknown_format_is_one_line_error(tmp_path):
    (tmp_path / "pool.xlsx").write_text("a,b\n")
    with pytest.raises(DataError, match=r"unknown format \(expected .jsonl, .json, .csv, .tsv, .parquet"):
        load_records(tmp_path / "pool.xlsx", _problem)


def test_a_json_object_holding_a_table_is_read_as_its_rows_and_said(tmp_path, caplog):
    import pandas as pd

    frame = pd.DataFrame({"id": [1, 2, 3], "question": ["What is 1+1?", "What is 2+2?", "What is 3+3?"]})
    frame["final"] = ["2", "4", "6"]
    frame.to_json(tmp_path / "columns.json")  # pandas' default: {column: {row: value}}
    for orient in ("index", "split", "records"):
        frame.to_json(tmp_path / f"{orient}.json", orient=orient)
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": frame.to_dict("records"), "version": 1}))
    (tmp_path / "one_row.json").write_text(json.dumps({"id": 1, "question": "What is 1+1?", "final": "2"}))
    for name in ("columns", "index", "split", "records", "wrapped"):
        with caplog.at_level("WARNING", logger="eval.records"):
            result = load_records(tmp_path / f"{name}.json", lambda r: r, field_map={"answer": "final"})
        assert result.counts() == {"read": 3, "kept": 3, "rejected": 0}, name
        assert [(r["id"], r["answer"]) for r in result.kept] == [(1, "2"), (2, "4"), (3, "6")], name
    assert sum("one JSON object holding a table" in m for m in caplog.messages) == 4  # records is an array
    single = load_records(tmp_path / "one_row.json", lambda r: r, field_map={"answer": "final"})
    assert single.counts() == {"read": 1, "kept": 1, "rejected": 0} and single.kept[0]["answer"] == "2"
    chat = {"id": 1, "conversations": [{"from": "human", "value": "1+1?"}, {"from": "gpt", "value": "2"}]}
    (tmp_path / "one_chat.json").write_text(json.dumps(chat))  # a list of dicts inside one row is not a table
    assert load_records(tmp_path / "one_chat.json", lambda r: r).kept == [chat]
    (tmp_path / "lines.json").write_text("".join(json.dumps({"data": [{"a": i}]}) + "\n" for i in range(3)))
    assert load_records(tmp_path / "lines.json", lambda r: r).counts()["read"] == 3  # JSON lines, not a wrapper


def test_csv_and_tsv_files_are_read_with_their_header_and_bad_rows_rejected(tmp_path):
    import csv
    import gzip

    long_chain = "step\n" * 40_000  # 200 KB in one cell: past the csv module's default field limit
    rows = [
        ["id", "question", "final", "chain"],
        ["1", "What is 1+1?", "2", 'Say "two",\nthen stop.'],  # a quoted cell across two lines
        ["2", "What is 2+2?", "", long_chain],
        ["3", "What is 3+3?", "6"],  # a cell short
        ["4", "What is 4+4?", "8", "ok"],
    ]
    for name, delimiter in (("pool.csv", ","), ("pool.tsv", "\t")):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, delimiter=delimiter).writerows(rows)
    with open(tmp_path / "pool.csv", "rb") as src, gzip.open(tmp_path / "pool.csv.gz", "wb") as dst:
        dst.write(src.read())
    for name in ("pool.csv", "pool.tsv", "pool.csv.gz"):
        result = load_records(tmp_path / name, lambda r: r, field_map={"answer": "final"})
        assert result.counts() == {"read": 4, "kept": 3, "rejected": 1}, name
        assert [r["answer"] for r in result.kept] == ["2", None, "8"]  # an empty cell is a missing value
        assert result.kept[0]["chain"] == 'Say "two",\nthen stop.' and result.kept[1]["chain"] == long_chain
        assert (result.rejects[0].row, result.rejects[0].reason) == (3, "3 cells where the header names 4 columns")
    (tmp_path / "twice.csv").write_text("id,id\n1,2\n")
    with pytest.raises(DataError, match=r"twice\.csv: the header row must name every column once"):
        load_records(tmp_path / "twice.csv", lambda r: r)


def test_required_field_absent_everywhere_names_it(tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": 1, "problem": "x"}) + "\n")
    with pytest.raises(DataError, match=r"required field 'answer' \(source field 'gold'\)"):
        load_records(tmp_path / "p.jsonl", _problem, field_map={"answer": "gold"}, required=PROBLEM_REQUIRED)


def test_write_jsonl_is_atomic_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "rows.jsonl"
    write_jsonl(target, [{"a": 1}, {"b": "é"}])
    assert read_jsonl(target) == [{"a": 1}, {"b": "é"}]
    assert [p.name for p in target.parent.iterdir()] == ["rows.jsonl"]


def test_rows_with_unicode_line_separators_in_their_text_read_back_whole(tmp_path):
    """json.dumps(ensure_ascii=False) leaves U+2028 / U+0085 raw (a GPQA problem has one); rows end at "\\n" only."""
    target = tmp_path / "samples.jsonl"
    rows = [{"problem": "first\u2028second\u0085third\u2029", "i": 0}, {"problem": "x\x1cy", "i": 1}]
    append_jsonl(target, rows)
    assert "\u2028" in target.read_text(encoding="utf-8")  # raw in the file, as our writers leave it
    assert read_jsonl(target) == rows
    assert read_jsonl(target, tolerate_torn_tail=True) == rows


def test_append_repairs_a_torn_tail(tmp_path):
    target = tmp_path / "samples.jsonl"
    append_jsonl(target, [{"i": 0}, {"i": 1}])
    with open(target, "a") as handle:
        handle.write('{"i": 2, "resp')  # a kill mid-write
    assert read_jsonl(target, tolerate_torn_tail=True) == [{"i": 0}, {"i": 1}]
    with pytest.raises(DataError, match="line 3"):
        read_jsonl(target)
    append_jsonl(target, [{"i": 2}])
    assert read_jsonl(target) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_a_tail_torn_mid_character_is_tolerated_and_a_bad_byte_elsewhere_names_its_line(tmp_path):
    """A reader beside a writer that appends can see a line cut inside a UTF-8 sequence (the Ray resume test once read
    half of one at a 4 KiB boundary)."""
    target = tmp_path / "samples.jsonl"
    append_jsonl(target, [{"text": "é"}])
    with open(target, "ab") as handle:
        handle.write('{"text": "é'.encode()[:-1])  # half of é
    assert read_jsonl(target, tolerate_torn_tail=True) == [{"text": "é"}]
    with pytest.raises(DataError, match="line 2: invalid JSON \\(not UTF-8"):
        read_jsonl(target)
    target.write_bytes(b'{"a": "\xff"}\n{"a": 1}\n')
    with pytest.raises(DataError, match="line 1: invalid JSON \\(not UTF-8"):
        read_jsonl(target, tolerate_torn_tail=True)


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n')  # as Windows editors save
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf[{"a": 1}, {"a": 2}]')
    for name in ("bom.jsonl", "bom.json"):
        assert load_records(tmp_path / name, lambda r: r).kept == [{"a": 1}, {"a": 2}], name
