"""Which mirror a command reads when the user names the default one, `data/raw`.

`make dataset` on a machine without PhysioNet data builds from the synthetic sample mirror it
writes to `data/sample/`. The README's later lines (`ecg-instruct build ...`, `plot --raw-dir
data/raw ...`) name `data/raw`; rather than fail there, they read the sample mirror that
`make dataset` built from, and say so in one line.
"""

from __future__ import annotations

from pathlib import Path

from ecg_instruct.sample.folder import COMPLETE_MARKER

#: Where `make dataset` (and the README) expect a PhysioNet mirror.
DEFAULT_RAW = Path("data/raw")
#: Where `make dataset` writes the synthetic sample mirror when there is none.
DEFAULT_SAMPLE = Path("data/sample")


def holds_a_mirror(folder: Path) -> bool:
    """Whether `folder` holds any source's folder (ptb-xl/, mimic-iv-ecg/, ...)."""
    from ecg_instruct.sources import SOURCE_DIRS, source_root

    return any(source_root(folder, source).is_dir() for source in SOURCE_DIRS)


def sample_instead_of_default(raw: Path) -> Path | None:
    """`data/sample` when `raw` is the default `data/raw`, holds no mirror, and `make dataset`
    left a complete sample mirror; else None (the caller reads `raw` as given)."""
    if Path(raw) != DEFAULT_RAW or holds_a_mirror(raw):
        return None
    if (DEFAULT_SAMPLE / COMPLETE_MARKER).is_file():
        return DEFAULT_SAMPLE
    return None


def sample_notice(raw: Path, sample: Path) -> str:
    return (f"No PhysioNet mirror in {raw}/: reading the synthetic sample mirror {sample}/ "
            f"that `make dataset` built from (pass --raw-dir to choose another).")
