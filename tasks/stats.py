"""Per-task counts of a bAbI folder: questions per split, vocabulary, longest story and sentence."""

from tasks.babi import BabiDataMissing, SPLITS, load_task, task_files, task_name
from tasks.paths import resolve_data_dir
from tasks.vocab import Vocab


def babi_stats(data_dir, variant: str, tasks) -> tuple[list[dict], list[str]]:
    """One row per task and split, and a message for each task that could not be read."""
    files = task_files(data_dir, variant)
    rows, problems = [], []
    for task in tasks:
        absent = [split for split in ("train", "test") if split not in files.get(task, {})]
        if absent:  # said in one line: the folder is there (task_files found it), a file of it is not
            problems.append(f"task {task}: no {' or '.join(absent)} file in {resolve_data_dir(data_dir) / variant} "
                            f"(expected qa{task}_<name>_{absent[0]}.txt)")
            continue
        try:
            splits = load_task(data_dir, variant, task)
        except BabiDataMissing as error:
            problems.append(f"task {task}: {error}")
            continue
        vocab = len(Vocab.build(sum(splits.values(), []))) - 2  # without <pad> and <unk>
        for split in SPLITS:
            examples = splits[split]
            rows.append({
                "task": task, "name": task_name(files.get(task, {})), "split": split, "questions": len(examples),
                "vocab": vocab,
                "longest_story": max((len(e.story) for e in examples), default=0),
                "longest_sentence": max((len(s) for e in examples for s in e.story + (e.question,)), default=0),
            })
    return rows, problems


def stats_table(rows: list[dict]) -> str:
    """A plain-text table, one line per task, splits side by side."""
    header = f"{'task':>4}  {'name':<24} {'train':>6} {'valid':>6} {'test':>6} {'train+valid':>11} {'vocab':>6} {'story':>6} {'sentence':>8}"
    lines = [header, "-" * len(header)]
    by_task: dict[int, dict[str, dict]] = {}
    for row in rows:
        by_task.setdefault(row["task"], {})[row["split"]] = row
    for task, splits in by_task.items():
        first = splits["train"]
        longest_story = max(row["longest_story"] for row in splits.values())
        longest_sentence = max(row["longest_sentence"] for row in splits.values())
        lines.append(
            f"{task:>4}  {first['name'][:24]:<24} {splits['train']['questions']:>6} {splits['valid']['questions']:>6} "
            f"{splits['test']['questions']:>6} {splits['train']['questions'] + splits['valid']['questions']:>11} "
            f"{first['vocab']:>6} {longest_story:>6} {longest_sentence:>8}"
        )
    return "\n".join(lines)
