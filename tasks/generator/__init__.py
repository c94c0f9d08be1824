"""Our own bAbI: stories in the official file format and vocabulary, from a simulated world.

Nothing is downloaded: `generate_babi(out_dir)` writes `out_dir/en/qaN_<name>_{train,valid,test}.txt`
for the 20 tasks of Weston et al. 2015 ("Towards AI-Complete Question Answering"), drawn from
`GeneratorConfig(seed=...)` alone, with the sentence forms, story lengths, question positions and
answer shares counted from the real bAbI v1.2 English files. A task-2 story as written
(`GeneratorConfig(questions=3)`, train split):

    1 Daniel moved to the bathroom.
    2 John went back to the office.
    3 Daniel took the apple there.
    4 Daniel dropped the apple.
    5 Where is the apple? \tbathroom\t4 1

and as `tasks.babi.load_task(out_dir, "en", 2)` reads it:

    Example(story=(('daniel', 'moved', 'to', 'the', 'bathroom'), ('john', 'went', 'back', 'to', 'the', 'office'),
                   ('daniel', 'took', 'the', 'apple', 'there'), ('daniel', 'dropped', 'the', 'apple')),
            question=('where', 'is', 'the', 'apple'), answer='bathroom', supporting=(3, 0), task=2, ...)

Train on short stories, test on long ones: call twice, e.g. `GeneratorConfig(gap=2)` into one
folder and `GeneratorConfig(gap=6, seed=1)` into another.
"""

from tasks.generator.tasks import TASK_NAMES, TASKS
from tasks.generator.writer import GeneratorConfig, generate_babi

__all__ = ["GeneratorConfig", "TASK_NAMES", "TASKS", "generate_babi"]
