"""Questions a person types, answered by a trained run: the story and question as text, not a split's rows.

A story is text with one sentence a line, read the way the bAbI parser reads a task file
(`tasks.babi.tokenize`: lower case, punctuation dropped); blank lines are skipped:

    story    "Mary went to the kitchen.\\nJohn went to the garden."
    question "Where is Mary?"
    -> Example(story=(('mary', 'went', 'to', 'the', 'kitchen'), ('john', 'went', 'to', 'the', 'garden')),
               question=('where', 'is', 'mary'), ...)

and is encoded exactly as the run's own data was (`tasks.babi_tensors.encode`, the run's vocabulary
and memory size), so the answer is the one the model would give the same story in a task file.
Three things a typed story can do that a task file cannot, each answered here and not in a UI:
- a word the run never saw: `UnknownWords` lists them (the model would read them all as <unk>);
- an empty story or question: `AskError` says which;
- more sentences than the memory holds: the most recent `memory_size` are kept, as in training, and
  the answer says how many older ones were left out (`dropped`).

A seq2seq run reads a typed sequence of its symbols ("3 1 4") the same way (`align_typed`).
"""

from memnet.inspection import Run, aligned, describe
from tasks.babi import Example, tokenize
from tasks.babi_tensors import encode
from tasks.vocab import PAD, UNK


class AskError(ValueError):
    """A typed story, question or sequence that the run cannot read; the message says why."""


class UnknownWords(AskError):
    """Words outside the run's vocabulary, listed in order of first appearance."""

    def __init__(self, words: list[str], vocab_size: int):
        self.words = words
        super().__init__(f"unknown word{'s' if len(words) > 1 else ''} (not in the run's vocabulary of "
                         f"{vocab_size - 2} words): {', '.join(words)}")


def read_story(text: str) -> tuple[tuple[str, ...], ...]:
    """One tokenised sentence per non-blank line."""
    return tuple(words for words in map(tokenize, text.splitlines()) if words)


def unknown_words(run: Run, words) -> list[str]:
    """The words (in order, once each) that the run's vocabulary does not hold."""
    index = run.data.vocab.index
    return list(dict.fromkeys(word for word in words if word not in index or word in (PAD, UNK)))


def ask(run: Run, story: str, question: str) -> dict:
    """The run's answer to a typed story and question.

    Returns {"answer", "top": [(answer, probability)] (the 5 most probable), "hops": per hop a weight
    per kept sentence, "row": the word naming one of those rows ("hop"; "layer", "step" for models that say so:
    memnet.models.output), "empty": per hop the weight on the empty memories (empty where the model's rows are
    not distributions over them), "steps": the steps each kept sentence took (None unless the model reports them),
    "sentences": the kept sentences and "question" as the run read them, "dropped": how many older sentences did
    not fit in the memory, "memory_size"}.
    A model without attention (the LSTM) answers with "hops" and "empty" empty.
    """
    sentences, asked = read_story(story), tokenize(question)
    if not sentences:
        raise AskError("the story is empty: type at least one sentence, one sentence a line")
    if not asked:
        raise AskError("the question is empty: type a question about the story")
    unknown = unknown_words(run, [word for words in (*sentences, asked) for word in words])
    if unknown:
        raise UnknownWords(unknown, len(run.data.vocab))
    memory = run.data.sizes.memory_size
    # no true answer: PAD stands in, so that encoding counts no unknown word
    example = Example(story=sentences, question=asked, answer=PAD, supporting=(), task=0, story_id=0, source="typed")
    shown = describe(run, encode([example], run.data.vocab, memory), [example], [None])[0]
    return {"answer": shown["predicted"], "top": shown["top"], "hops": shown["attention"] or [], "row": shown["row"],
            "empty": shown["empty"] or [], "steps": shown["steps"], "sentences": shown["sentences"], "question": shown["question"],
            "dropped": max(0, len(sentences) - memory), "memory_size": memory}


def align_typed(run: Run, text: str) -> dict:
    """A seq2seq run's greedy output and alignment (t, s) for a typed source of its symbols, e.g. "3 1 4"
    (`inspection.align`'s dict; "target" is what the task asks for that source), with the run's attention and
    ("mechanism": its config's attention) and the source lengths it trained on ("trained_lengths" [low, high]), so a longer source can be told apart."""
    from tasks.seq2seq_tasks import DEFAULTS, TRANSFORMS, encode as encode_sequences
    from tasks.sequences import parse_spec

    family = run.data.name.partition(":")[0]
    if family not in TRANSFORMS:
        raise AskError(f"run {run.path} is not a sequence-to-sequence run ({run.data.name})")
    symbols = text.replace(",", " ").split()
    if not symbols:
        raise AskError("the sequence is empty: type its symbols separated by spaces, e.g. 3 1 4")
    known = {word for word in run.data.vocab.words if word.isdigit()}
    unknown = [symbol for symbol in dict.fromkeys(symbols) if symbol not in known]
    if unknown:
        raise AskError(f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                       f"this run reads {', '.join(sorted(known, key=int))}")
    example = aligned(run, encode_sequences(family, [[int(symbol) for symbol in symbols]], run.data.vocab), None)
    trained = parse_spec(family, run.data.name.partition(":")[2], DEFAULTS)["train"]
    return {**example, "trained_lengths": list(trained), "mechanism": getattr(getattr(run.model, "config", None), "attention", None)}
