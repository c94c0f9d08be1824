"""Published bAbI test errors (%), printed beside ours and always labelled as published.

Sukhbaatar, Szlam, Weston, Fergus, "End-To-End Memory Networks", NIPS 2015: Table 1 (1k) and the
10k table of the appendix; the LSTM column is the paper's baseline. Dehghani et al., "Universal Transformers",
ICLR 2019, App. E: the Universal Transformer with halting, per task on 1k and 10k and jointly on 1k (the "ut" keys;
"mean" as the paper prints it). Keys: "<size>/<setting>", values per task 1-20 plus "mean" and "failed" (tasks with
error > 5%); SOURCES names each key's paper. Generated from the team's notes of those tables, not typed by hand.
"""

PUBLISHED = {
    "1k/lstm": {1: 50.0, 2: 80.0, 3: 80.0, 4: 39.0, 5: 30.0, 6: 52.0, 7: 51.0, 8: 55.0, 9: 36.0, 10: 56.0, 11: 38.0, 12: 26.0, 13: 6.0, 14: 73.0, 15: 79.0, 16: 77.0, 17: 49.0, 18: 48.0, 19: 92.0, 20: 9.0, 'mean': 51.3, 'failed': 20},
    "1k/bow": {1: 0.6, 2: 17.6, 3: 71.0, 4: 32.0, 5: 18.3, 6: 8.7, 7: 23.5, 8: 11.4, 9: 21.1, 10: 22.8, 11: 4.1, 12: 0.3, 13: 10.5, 14: 1.3, 15: 24.3, 16: 52.0, 17: 45.4, 18: 48.1, 19: 89.7, 20: 0.1, 'mean': 25.1, 'failed': 15},
    "1k/pe": {1: 0.1, 2: 21.6, 3: 64.2, 4: 3.8, 5: 14.1, 6: 7.9, 7: 21.6, 8: 12.6, 9: 23.3, 10: 17.4, 11: 4.3, 12: 0.3, 13: 9.9, 14: 1.8, 15: 0.0, 16: 52.1, 17: 50.1, 18: 13.6, 19: 87.4, 20: 0.0, 'mean': 20.3, 'failed': 13},
    "1k/pe-ls": {1: 0.2, 2: 12.8, 3: 58.8, 4: 11.6, 5: 15.7, 6: 8.7, 7: 20.3, 8: 12.7, 9: 17.0, 10: 18.6, 11: 0.0, 12: 0.1, 13: 0.3, 14: 2.0, 15: 0.0, 16: 1.6, 17: 49.0, 18: 10.1, 19: 85.6, 20: 0.0, 'mean': 16.3, 'failed': 12},
    "1k/pe-ls-rn": {1: 0.0, 2: 8.3, 3: 40.3, 4: 2.8, 5: 13.1, 6: 7.6, 7: 17.3, 8: 10.0, 9: 13.2, 10: 15.1, 11: 0.9, 12: 0.2, 13: 0.4, 14: 1.7, 15: 0.0, 16: 1.3, 17: 51.0, 18: 11.1, 19: 82.8, 20: 0.0, 'mean': 13.9, 'failed': 11},
    "1k/pe-ls-rn-joint": {1: 0.0, 2: 11.4, 3: 21.9, 4: 13.4, 5: 14.4, 6: 2.8, 7: 18.3, 8: 9.3, 9: 1.9, 10: 6.5, 11: 0.3, 12: 0.1, 13: 0.2, 14: 6.9, 15: 0.0, 16: 2.7, 17: 40.4, 18: 9.4, 19: 88.0, 20: 0.0, 'mean': 12.4, 'failed': 11},
    "1k/pe-ls-lw-joint": {1: 0.1, 2: 18.8, 3: 31.7, 4: 17.5, 5: 12.9, 6: 2.0, 7: 10.1, 8: 6.1, 9: 1.5, 10: 2.6, 11: 3.3, 12: 0.0, 13: 0.5, 14: 2.0, 15: 1.8, 16: 51.0, 17: 42.6, 18: 9.2, 19: 90.6, 20: 0.2, 'mean': 15.2, 'failed': 10},
    "10k/pe": {1: 0.0, 2: 0.4, 3: 12.6, 4: 0.0, 5: 0.8, 6: 0.2, 7: 5.7, 8: 2.4, 9: 1.3, 10: 1.7, 11: 0.0, 12: 0.0, 13: 0.1, 14: 0.2, 15: 0.0, 16: 48.6, 17: 40.3, 18: 7.4, 19: 66.6, 20: 0.0, 'mean': 9.4, 'failed': 6},
    "10k/pe-ls": {1: 0.0, 2: 0.5, 3: 15.0, 4: 0.0, 5: 0.6, 6: 0.1, 7: 3.2, 8: 2.2, 9: 2.0, 10: 3.3, 11: 0.0, 12: 0.0, 13: 0.0, 14: 0.0, 15: 0.0, 16: 0.1, 17: 41.1, 18: 8.6, 19: 66.7, 20: 0.0, 'mean': 7.2, 'failed': 4},
    "10k/pe-ls-rn": {1: 0.0, 2: 0.3, 3: 9.3, 4: 0.0, 5: 0.8, 6: 0.0, 7: 3.7, 8: 0.8, 9: 0.8, 10: 2.4, 11: 0.0, 12: 0.0, 13: 0.0, 14: 0.0, 15: 0.0, 16: 0.4, 17: 40.7, 18: 6.7, 19: 66.5, 20: 0.0, 'mean': 6.6, 'failed': 4},
    "10k/pe-ls-rn-joint": {1: 0.0, 2: 1.0, 3: 6.8, 4: 0.0, 5: 6.1, 6: 0.1, 7: 6.6, 8: 2.7, 9: 0.0, 10: 0.5, 11: 0.0, 12: 0.1, 13: 0.0, 14: 0.0, 15: 0.2, 16: 0.2, 17: 41.8, 18: 8.0, 19: 75.7, 20: 0.0, 'mean': 7.5, 'failed': 6},
    # the Universal Transformer with halting (Dehghani et al. 2019, App. E: best of 10 by validation)
    "1k/ut": {1: 0.0, 2: 0.0, 3: 3.7, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0, 9: 0.0, 10: 0.0, 11: 0.0, 12: 0.0, 13: 0.0, 14: 0.0, 15: 0.0, 16: 5.8, 17: 32.0, 18: 0.0, 19: 47.1, 20: 2.4, 'mean': 4.55, 'failed': 3},
    "1k/ut-joint": {1: 0.0, 2: 0.5, 3: 5.4, 4: 0.0, 5: 0.5, 6: 0.5, 7: 3.2, 8: 1.6, 9: 0.2, 10: 0.4, 11: 0.1, 12: 0.0, 13: 0.6, 14: 3.8, 15: 5.9, 16: 15.4, 17: 42.9, 18: 4.1, 19: 68.2, 20: 2.4, 'mean': 7.78, 'failed': 5},
    "10k/ut": {1: 0.0, 2: 0.0, 3: 0.4, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0, 9: 0.0, 10: 0.0, 11: 0.0, 12: 0.0, 13: 0.0, 14: 0.0, 15: 0.0, 16: 0.4, 17: 0.6, 18: 0.0, 19: 2.8, 20: 0.0, 'mean': 0.21, 'failed': 0},
}

SOURCES = {key: "Dehghani et al. 2019" if key.split("/")[1].startswith("ut") else "Sukhbaatar et al. 2015" for key in PUBLISHED}

# The leaderboard's published rows (memnet.tables.leaderboard), from the papers as ../shared/ANCHORS.md gathers them:
# mean test error % / failed tasks (> 5%), "" where the paper gives none; how each chose its runs, and where it says so.
LEADERBOARD = [
    {"model": "MemN2N PE LS RN", "1k": "13.9 / 11", "joint": "12.4 / 11", "10k": "6.6 / 4",
     "selection": "best of 10 by training error", "source": "Sukhbaatar et al. 2015, Table 1 and appendix"},
    {"model": "Gated MemN2N", "1k": "12.7 / 10", "joint": "", "10k": "3.7 / 3",
     "selection": "not stated", "source": "Liu & Perez 2017, as cited by Seo et al. 2017"},
    {"model": "QRN (1k: 2r, 2 layers, d = 50; 10k: 6r200, 6 layers, d = 200)", "1k": "9.9 / 7", "joint": "", "10k": "0.3 / 0",
     "selection": "1k: 10 runs, 10k: 50 runs; the lowest validation loss", "source": "Seo et al. 2017"},
    {"model": "EntNet (20 slots, d = 100)", "1k": "", "joint": "", "10k": "0.5 / 0",
     "selection": "10 runs, best on validation", "source": "Henaff et al. 2017, Table 2"},
    {"model": "Universal Transformer, with halting", "1k": "4.55 / 3 (seed mean 6.34 ± 3.32)",
     "joint": "7.78 / 5 (seed mean 11.21 ± 6.65)", "10k": "0.21 / 0 (seed mean 0.73 ± 0.89)",
     "selection": "best of 10 by validation", "source": "Dehghani et al. 2019, Table 1 and App. E"},
    {"model": "Transformer (plain, in the UT paper)", "1k": "21.8", "joint": "26.8", "10k": "15.2",
     "selection": "best of 10 by validation", "source": "Dehghani et al. 2019"},
    {"model": "LSTM (the bAbI baseline)", "1k": "51.3 / 20", "joint": "", "10k": "36.4",
     "selection": "–", "source": "Weston et al. 2015; 10k as cited by Sukhbaatar et al. 2015"},
]
