"""The run record: what a run leaves behind, where, and how a benchmark keeps its finished runs in one file.

A run folder (memnet.train writes it; a population member writes the same through these functions):

    RUN/config.json      the spec as resolved, the sizes read from the data, the environment that ran it
    RUN/metrics.jsonl    one line per epoch
    RUN/checkpoint.pt    everything to resume or to predict (stays on the user's disk, never in git)
    RUN/summary.json     test/valid/train error, seconds, seed: its presence means the run finished
    RUN/code-HASH.diff   the uncommitted code that ran, when there was any

A benchmark folder (memnet bench, and the scripts that train grids) keeps every finished run in one file:

    BENCH/runs.jsonl.gz  one JSON object a line per finished run, added as each run finishes:
                         {"path": "runs/.../seed-S", "identity": {...} or null, "config": {...},
                          "summary": {...}, "metrics": [{...}, ...], "extra": {name: object}}
    BENCH/code-HASH.diff each code diff once, not once per run
    BENCH/runs/...       the run folders (checkpoints, for resume, `inspect` and `serve`): on disk, not in git

`path` is the run folder relative to BENCH; `identity` is what the run is in its grid (model, preset,
setting, variant, mode, task, seed), recorded when it is packed so no reader parses a folder name;
`extra` holds any other JSON record a script wrote beside the summary (by_length.json). The file is
gzip-compressed JSON lines, rewritten atomically with a fixed gzip time stamp, so it reads with
`pandas.read_json(path, lines=True)`, `datasets.load_dataset("json", data_files=path)` and
`zcat path | jq`, and the same runs give the same bytes.
"""

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

from memnet.records import RecordError, read_json, read_jsonl, write_atomic, write_json

CONFIG, METRICS, SUMMARY, CHECKPOINT = "config.json", "metrics.jsonl", "summary.json", "checkpoint.pt"
PACK = "runs.jsonl.gz"
RUNS = "runs"  # the folder of a benchmark that holds its run folders
RECORD_FILES = (CONFIG, METRICS, SUMMARY)


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One finished run as its records hold it."""

    path: str  # the run folder, relative to its benchmark folder ("runs/memn2n-release/en-per-task/task-1/seed-0")
    config: dict  # config.json
    summary: dict  # summary.json
    metrics: list[dict]  # metrics.jsonl, one entry per epoch
    identity: dict | None = None  # model, preset, setting, variant, mode, task, seed; None where a script keeps none
    extra: dict = dataclasses.field(default_factory=dict)  # other JSON records of the run folder, by file name

    def line(self) -> dict:
        return {"path": self.path, "identity": self.identity, "config": self.config, "summary": self.summary,
                "metrics": self.metrics, **({"extra": self.extra} if self.extra else {})}

    @classmethod
    def from_line(cls, line: dict) -> "RunRecord":
        return cls(line["path"], line["config"], line["summary"], line["metrics"], line.get("identity"), line.get("extra", {}))


# ---- a run folder ------------------------------------------------------------------------------------------------

def start_run(out: Path, config: dict) -> None:
    """A new run's config.json and an empty metrics.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / METRICS, "")
    write_json(out / CONFIG, config)


def epoch_line(epoch: int, phase: str, lr: float, train_loss: float, train_error: float, valid_loss: float,
               valid_error: float, seconds: float) -> dict:
    """One line of metrics.jsonl: losses are per example, errors fractions; a lone run and a population member write the same."""
    return {"epoch": epoch, "phase": phase, "lr": lr, "train_loss": train_loss, "train_error": train_error,
            "valid_loss": valid_loss, "valid_error": valid_error, "seconds": round(seconds, 4)}


def append_epoch(out: Path, line: dict) -> None:
    """One epoch's metrics line (a crash mid-append leaves a partial last line, which a resume drops)."""
    with open(out / METRICS, "a") as file:
        file.write(json.dumps(line) + "\n")


def write_summary(out: Path, summary: dict) -> None:
    """The run's summary.json: written last, it marks the run finished."""
    write_json(out / SUMMARY, summary)


def is_finished(run_dir: Path) -> bool:
    """Whether a run folder holds a finished run, or its benchmark's pack holds it."""
    return (Path(run_dir) / SUMMARY).exists() or packed_record(run_dir) is not None


def read_run(run_dir: Path, root: Path | None = None, identity: dict | None = None) -> RunRecord:
    """The records of a finished run folder; `path` relative to `root` (its benchmark folder by default)."""
    run_dir = Path(run_dir)
    root = root if root is not None else benchmark_of(run_dir)
    extra = {path.name: read_json(path) for path in sorted(run_dir.glob("*.json")) if path.name not in RECORD_FILES}
    metrics = read_jsonl(run_dir / METRICS) if (run_dir / METRICS).exists() else []
    config = read_json(run_dir / CONFIG) if (run_dir / CONFIG).exists() else {}
    return RunRecord(run_dir.relative_to(root).as_posix(), config, read_json(run_dir / SUMMARY), metrics,
                     identity or config.get("identity"), extra)


def summary_of(run_dir: Path) -> dict:
    """A finished run's summary, from its folder or, where the folder is gone (a fresh clone), its benchmark's pack."""
    if (Path(run_dir) / SUMMARY).exists():
        return read_json(Path(run_dir) / SUMMARY)
    record = packed_record(run_dir)
    if record is None:
        raise FileNotFoundError(f"no finished run at {run_dir}: neither {SUMMARY} there nor a line in {benchmark_of(run_dir) / PACK}")
    return record.summary


def metrics_of(run_dir: Path) -> list[dict]:
    """A run's epochs, from its folder or its benchmark's pack ([] where neither has them)."""
    if (Path(run_dir) / METRICS).exists():
        return read_jsonl(Path(run_dir) / METRICS)
    record = packed_record(run_dir)
    return record.metrics if record else []


# ---- a benchmark folder ------------------------------------------------------------------------------------------

def benchmark_of(run_dir: Path) -> Path:
    """The benchmark folder a run folder belongs to: the parent of its nearest `runs` folder (else its own parent)."""
    run_dir = Path(run_dir)
    for parent in run_dir.parents:
        if parent.name == RUNS:
            return parent.parent
    return run_dir.parent


_PACKS: dict[Path, tuple[tuple, dict[str, RunRecord]]] = {}  # a pack read once per change (a table build reads it often)


def read_pack(root: Path) -> dict[str, RunRecord]:
    """path -> RunRecord of every run in `root`'s pack ({} when there is none); RecordError names a damaged line."""
    pack = Path(root) / PACK
    if not pack.exists():
        return {}
    stat = pack.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _PACKS.get(pack.resolve())
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        text = gzip.decompress(pack.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise RecordError(f"{pack} cannot be read as gzip-compressed JSON lines ({error}): it was cut short or corrupted; "
                          "restore it from git (`git checkout -- {pack}`) or from a copy") from None
    runs = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        try:
            record = RunRecord.from_line(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise RecordError(f"{pack}:{line_no}: not a run record ({error}); restore the file from git or from a copy") from None
        runs[record.path] = record
    _PACKS[pack.resolve()] = (stamp, runs)
    return runs


def packed_record(run_dir: Path) -> RunRecord | None:
    root = benchmark_of(run_dir)
    return read_pack(root).get(Path(run_dir).relative_to(root).as_posix())


def write_pack(root: Path, runs: dict[str, RunRecord]) -> None:
    """The pack of `root`, runs in path order, written atomically (gzip's time stamp fixed: same runs, same bytes)."""
    text = "".join(json.dumps(runs[path].line()) + "\n" for path in sorted(runs))
    write_atomic(Path(root) / PACK, gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


def finished_folders(root: Path) -> list[Path]:
    """Every run folder under `root`/runs that holds a summary.json."""
    return sorted(path.parent for path in (Path(root) / RUNS).rglob(SUMMARY)) if (Path(root) / RUNS).is_dir() else []


def pack(root: Path, run_dirs: list[Path] | None = None, identities: dict[str, dict] | None = None) -> list[str]:
    """Add the finished run folders under `root` (or those of `run_dirs` that finished) that its pack lacks;
    return their paths.

    A run's identity is the one its config.json records, else `identities[path]` (a benchmark knows what
    each of its runs is). Each code diff a run names is copied once into `root`. Only the folder's holder
    calls this (the benchmark's lock), so the pack has one writer.
    """
    root = Path(root)
    runs = dict(read_pack(root))
    added = []
    folders = finished_folders(root) if run_dirs is None else [Path(d) for d in run_dirs if (Path(d) / SUMMARY).exists()]
    for run_dir in folders:
        path = run_dir.relative_to(root).as_posix()
        if path in runs:
            continue
        record = read_run(run_dir, root)
        identity = record.config.get("identity") or (identities or {}).get(path)
        runs[path] = dataclasses.replace(record, identity=identity)
        added.append(path)
        for diff in run_dir.glob("code-*.diff"):
            if not (root / diff.name).exists():
                shutil.copyfile(diff, root / diff.name)
    if added:
        write_pack(root, runs)
    return added


def has_runs(folder: Path) -> bool:
    """Whether a folder holds a benchmark's finished runs: a pack, or a finished run folder."""
    return (Path(folder) / PACK).exists() or bool(finished_folders(folder))


def runs_of(root: Path) -> dict[str, RunRecord]:
    """Every finished run of the benchmark in `root`: its pack, and any finished folder not yet packed. Read-only."""
    root = Path(root)
    runs = dict(read_pack(root))
    for run_dir in finished_folders(root):
        path = run_dir.relative_to(root).as_posix()
        if path not in runs:
            runs[path] = read_run(run_dir, root)
    return dict(sorted(runs.items()))


def benchmark_folders(results_dir: Path) -> list[Path]:
    """Every folder under `results_dir` (itself included) that holds runs: a pack, or finished run folders."""
    results_dir = Path(results_dir)
    found = {path.parent for path in results_dir.rglob(PACK)}
    found |= {benchmark_of(path.parent) for path in results_dir.rglob(SUMMARY) if RUNS in path.relative_to(results_dir).parts}
    return sorted(found)
