"""Execute the tutorials into tutorials/_executed/ (git-ignored), so you and the documentation can see their outputs.

The notebooks are stored without outputs: they run on the her2st sections, whose licence forbids committing anything
derived from them. Run ``python tutorials/execute.py`` (about 4 minutes per tutorial on a 2-core CPU; the data are
read from ``$GENAR_DATA_DIR/her2st`` or downloaded), then ``sphinx-build docs docs/_build/html`` renders the executed
copies. ``--only 01_quickstart`` runs one tutorial; ``--timeout`` bounds each cell.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path, out_dir: Path, *, timeout: int) -> Path:
    """Execute one notebook in its own folder and write the executed copy to ``out_dir``."""
    notebook = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # a non-interactive backend set for tests would suppress the inline figures
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}})
    client.execute(env=env)  # keyword arguments reach the kernel manager's start_kernel
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    nbformat.write(notebook, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="notebook names without .ipynb (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default: 1800)")
    args = parser.parse_args(argv)
    notebooks = sorted(HERE.glob("*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if p.stem in set(args.only)]
        if not notebooks:
            sys.stderr.write(f"no tutorial named {args.only}; available: {[p.stem for p in HERE.glob('*.ipynb')]}\n")
            return 2
    for path in notebooks:
        start = time.perf_counter()
        target = execute(path, HERE / "_executed", timeout=args.timeout)
        sys.stdout.write(f"{path.name}: executed in {time.perf_counter() - start:.0f} s -> {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
