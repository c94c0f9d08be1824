"""Named settings of the paper's table columns (Sukhbaatar et al. 2015, Table 1 and sec. 4.2).

Each preset holds model options and training options; flags given on the command line win.
"""

PRESETS = {
    # per task, 3 hops, d = 20, 100 epochs, lr halved every 25
    "bow": {"model": {"encoding": "bow"}, "train": {}},
    "pe": {"model": {"encoding": "position"}, "train": {}},
    "pe-ls": {"model": {"encoding": "position"}, "train": {"linear_start": 20}},
    "pe-ls-rn": {"model": {"encoding": "position"}, "train": {"linear_start": 20, "random_noise": True}},
    # the same with the official release's position weights (memn2n.release_position_encoding)
    "rpe-ls-rn": {"model": {"encoding": "position-release"}, "train": {"linear_start": 20, "random_noise": True}},
    # joint training on all 20 tasks: d = 50, 60 epochs, lr halved every 15, 30 epochs of linear start
    "pe-ls-rn-joint": {
        "model": {"encoding": "position", "dim": 50},
        "train": {"linear_start": 30, "random_noise": True, "epochs": 60, "lr_halve_every": 15},
    },
    "rpe-ls-rn-joint": {
        "model": {"encoding": "position-release", "dim": 50},
        "train": {"linear_start": 30, "random_noise": True, "epochs": 60, "lr_halve_every": 15},
    },
    "pe-ls-lw-joint": {
        "model": {"encoding": "position", "dim": 50, "tying": "layerwise"},
        "train": {"linear_start": 30, "epochs": 60, "lr_halve_every": 15},
    },
    # recurrent baselines (lstm, gru, rnn): Adam, as SGD at the paper's lr barely moves them
    "baseline": {"model": {}, "train": {"optimizer": "adam", "lr": 0.001, "epochs": 20, "lr_halve_every": 0}},
    # the attentive reader (GRU sentence encoder + one attention read)
    "attentive": {"model": {}, "train": {"optimizer": "adam", "lr": 0.003, "epochs": 20, "lr_halve_every": 0}},
}
