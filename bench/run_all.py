"""Runs every bench/bench_*.py module's main() in turn; each prints its own numbers (never asserts timings)."""

import importlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    only = set(sys.argv[1:])
    for path in sorted(HERE.glob("bench_*.py")):
        if only and path.stem not in only:
            continue
        print(f"== {path.stem}", flush=True)
        importlib.import_module(path.stem).main()


if __name__ == "__main__":
    main()
