"""Remake summary.md, results.csv and results.json of a benchmark folder from its run records.

    python scripts/make_tables.py results/babi-1k-memn2n
"""

import sys

from memnet.report import write_report

if __name__ == "__main__":
    for folder in sys.argv[1:]:
        print(write_report(folder))
