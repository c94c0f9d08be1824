"""scripts/bench_sequences.py leaves a record per run, and `memnet report` makes its tables from those records alone."""

import subprocess
import sys
from pathlib import Path

from memnet.cli import main
from memnet.records import read_json
from memnet.report import kind_of, sequences_tables

REPO = Path(__file__).resolve().parents[1]
TABLES = ["temporal_order.md", "temporal_order.json", "echo.md", "echo.json", "seq2seq.md", "seq2seq.json"]


def smoke(out: Path) -> str:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_sequences.py"), "--smoke", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_tables_are_made_from_the_run_records_and_a_rerun_trains_nothing(tmp_path, capsys):
    out = tmp_path / "sequences"
    smoke(out)
    assert kind_of(out) == "sequences"
    written = {name: (out / name).read_text() for name in TABLES}
    summaries = {path: path.stat().st_mtime_ns for path in out.glob("runs/**/summary.json")}
    # the smoke plan: temporal 2 rows x 4 columns (3 seeds), echo 2 x 2, seq2seq 2 x 2 and the length rows 2 tasks x 2 symbols x 2 seeds
    assert len(summaries) == 12 + 4 + 4 + 8
    assert len(list(out.glob("runs/seq2seq/*-symbols-4/shift/seed-*/summary.json"))) == 4  # the other alphabet's folders

    for name in TABLES:  # the records alone give the same tables
        (out / name).unlink()
    assert {path.name: text for path, text in sequences_tables(out).items()} == written
    main(["report", str(out)])
    main(["report", str(out), "--check"])
    assert "all 6 tables in 1 folder match their records" in capsys.readouterr().out

    seq2seq = written["seq2seq.md"]  # each seed of the length rows at the longest trained length, twice and four times it
    assert "Each seed at lengths 4, 8, 16" in seq2seq and seq2seq.count("| shift | 4 |") == 2 * 3  # 2 tasks: bands, seeds, by length
    # each seq2seq run's by_length.json agrees with its summary's test error
    for by_length_path in out.glob("runs/seq2seq/*/*/seed-*/by_length.json"):
        by_length, summary = read_json(by_length_path), read_json(by_length_path.parent / "summary.json")
        right = sum(by_length["exact_match"][n] * count for n, count in by_length["sequences"].items()) / sum(by_length["sequences"].values())
        assert abs(right - (100 - summary["test_error"]["all"])) < 0.1

    log = smoke(out)  # resumable: every run has its summary, so none trains again and the tables stay
    assert log.count(" 0 runs trained now") == 3
    assert {path: path.stat().st_mtime_ns for path in out.glob("runs/**/summary.json")} == summaries
    assert {name: (out / name).read_text() for name in TABLES} == written
    assert len(read_json(out / "sequences.json")["invocations"]) == 2
