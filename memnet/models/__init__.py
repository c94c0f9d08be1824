"""Models by name. Each is a (config dataclass, module) pair; every module maps a batch dict to `Output`."""

import dataclasses

from torch import nn

from memnet.models.attentive import Attentive, AttentiveConfig
from memnet.models.memn2n import MemN2N, MemN2NConfig
from memnet.models.recurrent import GRUConfig, LSTMConfig, Recurrent, RNNConfig
from memnet.models.seq2seq import Seq2Seq, Seq2SeqConfig

MODELS = {
    "memn2n": (MemN2NConfig, MemN2N),
    "lstm": (LSTMConfig, Recurrent),
    "gru": (GRUConfig, Recurrent),
    "rnn": (RNNConfig, Recurrent),
    "attentive": (AttentiveConfig, Attentive),
    "seq2seq": (Seq2SeqConfig, Seq2Seq),
}


def model_config(name: str, sizes: dict, options: dict):
    """The config of model `name` for a task with `sizes`, with user `options` on top.

    Sizes the model does not take are ignored; an option wins over a size of the same name
    (`-o memory_slots=0` turns off empty memories); an option the model does not take is an error
    that lists the ones it has.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    config_class = MODELS[name][0]
    fields = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"model {name!r} has no option {', '.join(unknown)}; its options are {', '.join(sorted(fields))}")
    return config_class(**{**{key: value for key, value in sizes.items() if key in fields}, **options})


def build_model(name: str, config) -> nn.Module:
    return MODELS[name][1](config)
