"""The bAbI benchmark as a script: same flags as `memnet bench` (see `memnet bench --help`).

    python scripts/bench_babi.py --name babi-1k-memn2n --models memn2n:pe-ls-rn --repeats 10 --data-dir DIR
"""

import sys

from memnet.cli import main

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
