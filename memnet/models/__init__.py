"""Models by name. Each is a (config dataclass, module) pair; every module maps its family's batch to `Output`.

A model is built from two parts: its config (options a user chooses, typed and range-checked by
pydantic) and `DataSizes` (what the data decides: vocabulary, memory slots, ...). No option can
set a size, and no model reads the task modules: what it needs from the data comes in `sizes`.
"""

from torch import nn

from memnet.batches import DataSizes
from memnet.models.attentive import Attentive, AttentiveConfig
from memnet.models.gated_memn2n import GatedMemN2N, GatedMemN2NConfig
from memnet.models.memn2n import MemN2N, MemN2NConfig
from memnet.models.qrn import QRN, QRNConfig
from memnet.models.recurrent import GRUConfig, LSTMConfig, Recurrent, RNNConfig
from memnet.models.seq2seq import Seq2Seq, Seq2SeqConfig
from memnet.models.story_transformer import StoryTransformer, StoryTransformerConfig
from memnet.models.universal_transformer import UniversalTransformer, UniversalTransformerConfig

MODELS = {
    "memn2n": (MemN2NConfig, MemN2N),
    "gmemn2n": (GatedMemN2NConfig, GatedMemN2N),  # Liu and Perez 2017: MemN2N with a gate on each hop's update
    "lstm": (LSTMConfig, Recurrent),  # the recurrent cell comes with the name, never from an option
    "gru": (GRUConfig, Recurrent),
    "rnn": (RNNConfig, Recurrent),
    "attentive": (AttentiveConfig, Attentive),
    "storyformer": (StoryTransformerConfig, StoryTransformer),  # a small transformer over sentence vectors
    "qrn": (QRNConfig, QRN),  # Seo et al. 2017: the question, reduced by each sentence in turn
    "ut": (UniversalTransformerConfig, UniversalTransformer),  # Dehghani et al. 2019: one block, recurrent, ACT halting
    "seq2seq": (Seq2SeqConfig, Seq2Seq),
}
# what each model's forward reads, by the kind of data a task family gives (memnet.spec.FAMILY_DATA): a model asked
# to train on another kind is refused before any data loads, naming the models that read it
READS = {
    "memn2n": ("stories",), "gmemn2n": ("stories",), "attentive": ("stories",), "storyformer": ("stories",), "qrn": ("stories",),
    "ut": ("stories",), "lstm": ("stories", "sequences"), "gru": ("stories", "sequences"), "rnn": ("stories", "sequences"),
    "seq2seq": ("pairs",),
}
POPULATION = {"memn2n", "gmemn2n", "storyformer", "qrn", "ut"}  # models whose forward vmaps over members (no shapes read from the data): memnet.population
LINEAR_START = {"memn2n", "gmemn2n"}  # models whose memory softmax linear start can remove (they have `use_softmax`)
def model_config(name: str, options: dict):
    """The config of model `name` with user `options` over its defaults.

    A wrong type, a value out of range or an option the model does not take raises pydantic's
    ValidationError (a ValueError) naming the field.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name][0](**options)


def build_model(name: str, config, sizes: DataSizes) -> nn.Module:
    config_class, module = MODELS[name]
    if type(config) is not config_class:  # a GRUConfig must not build the lstm, nor the other way round
        raise TypeError(f"model {name!r} takes a {config_class.__name__}, got a {type(config).__name__}")
    return module(config, sizes)
