"""Time per figure of the 12-lead paper layout (`ecg-instruct plot`, card gallery, report.html).

Draws records of the synthetic sample mirror (500 Hz x 10 s, read from their WFDB files) in
each output format and prints milliseconds per figure (best of 3 rounds: the machine is shared)
and the file sizes. One process, one thread, as `ecg-instruct plot --split ... --n N` runs.

    .venv/bin/python benchmarks/bench_plot.py [--n 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ecg_instruct.errors import RecordReject
from ecg_instruct.plot.paper import DEFAULT_DPI, render
from ecg_instruct.plot.view import EcgView
from ecg_instruct.sample import write_sample_mirror
from ecg_instruct.signals.leads import to_canonical
from ecg_instruct.signals.wfdb_io import read_record

CASES = (("png", DEFAULT_DPI, "PNG, `plot` default"), ("png", 100, "PNG, card gallery"),
         ("png", 40, "PNG, report.html thumbnail"), ("svg", DEFAULT_DPI, "SVG"),
         ("pdf", DEFAULT_DPI, "PDF"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="figures per case and round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mirror = write_sample_mirror(Path(tmp) / "mirror", n_ptbxl=args.n, n_mimic=1)
        views = []
        for hea in sorted((mirror / "ptb-xl" / "records500").rglob("*.hea"))[: args.n]:
            try:
                record = read_record(hea.with_suffix(""))
            except RecordReject:  # the mirror's deliberately broken records
                continue
            views.append(EcgView(hea.stem, to_canonical(record.signal, record.sig_names),
                                 record.fs, report="sinus rhythm. normal ecg.", labels=["NORM"]))
        render(views[0], Path(tmp) / "warm.png")  # imports and font cache out of the timing
        print(f"| case | dpi | ms per figure | kB per figure |  ({len(views)} records, best of 3)")
        print("|---|---:|---:|---:|")
        for fmt, dpi, label in CASES:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                paths = [render(v, Path(tmp) / f"{v.id}.{fmt}", dpi) for v in views]
                best = min(best, time.perf_counter() - start)
            size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
            print(f"| {label} | {dpi} | {1000 * best / len(views):.0f} | {size:.0f} |")


if __name__ == "__main__":
    main()
