"""bAbI as a Hugging Face `datasets.DatasetDict`, for users who want the usual `datasets` tools.

Each row is one question: story (list of sentences, each a list of words), question (list of
words), answer (string), supporting (indices into story) and task (1-20).
"""

from datasets import Dataset, DatasetDict, Features, Sequence, Value

from tasks.babi import SPLITS, load_task, parse_task_list

FEATURES = Features({
    "story": Sequence(Sequence(Value("string"))),
    "question": Sequence(Value("string")),
    "answer": Value("string"),
    "supporting": Sequence(Value("int32")),
    "task": Value("int32"),
})


def to_datasets(data_dir=None, variant: str = "en", tasks: str = "all") -> DatasetDict:
    """train/valid/test `Dataset`s of the given tasks ('all', '2', '1-3,6')."""
    rows = {split: {name: [] for name in FEATURES} for split in SPLITS}
    for task in parse_task_list(tasks):
        for split, examples in load_task(data_dir, variant, task).items():
            for example in examples:
                for name in FEATURES:
                    rows[split][name].append(getattr(example, name))
    return DatasetDict({split: Dataset.from_dict(columns, features=FEATURES) for split, columns in rows.items()})
