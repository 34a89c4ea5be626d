"""What the side-by-side sweeps share (fusion_sweep.py, ecgqa_sweep.py): the CLI runner, run
folder names, the table cells, the variant loop and writing a table between two markers of a doc.

Each sweep keeps only what is its own: how a variant is trained and scored, and its table.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> float:
    """Run `ecg-instruct ARGS` from the checkout; returns its wall time in seconds."""
    print("$ ecg-instruct " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ecg_instruct.cli", *args], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def slug(name: str) -> str:
    """A variant's run folder name."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def value_cell(value: float, ci: list[float]) -> str:
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def difference_cell(d: dict, significant: str) -> str:
    """A paired difference with its interval; `significant` names the key that says whether
    the interval excludes 0 (n.s. otherwise)."""
    mark = "" if d[significant] else " n.s."
    return f"{d['difference']:+.3f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]{mark}"


def sweep_parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """The options every sweep takes; a sweep adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=FLAGS (FLAGS added to the defaults; empty for the defaults)")
    parser.add_argument("--common", default="", help="flags for every variant (e.g. --threads 2)")
    parser.add_argument("--write-docs", action="store_true")
    return parser


def run_variants(args, run_variant: Callable[..., dict],
                 render: Callable[[list[dict], argparse.Namespace], str]) -> list[dict]:
    """Each `--variant NAME=FLAGS` in order, the table printed after each one."""
    args.common = shlex.split(args.common)
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        results.append(run_variant(args, name, shlex.split(flags)))
        print(render(results, args), flush=True)
    return results


def replace_between(doc: Path, start: str, end: str, text: str) -> None:
    """Put `text` between the `start` and `end` markers of `doc` (the markers stay)."""
    content = doc.read_text()
    head, rest = content.split(start, 1)
    doc.write_text(head + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])
