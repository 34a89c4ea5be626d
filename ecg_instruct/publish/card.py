"""The dataset card (`README.md`): YAML configs that make `load_dataset(path)` work offline,
and the provenance a reader needs to trust the data (recipe, counts, rejects, licences)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from datasets import DatasetInfo
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from ecg_instruct.instruct.templates import BUNDLED_TEMPLATES
from ecg_instruct.publish.features import published_features

CARD_TEMPLATE = BUNDLED_TEMPLATES / "card.md.j2"


class _NoAliasDumper(yaml.SafeDumper):
    """Repeated feature lists are written out in full: anchors confuse other YAML readers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def card_yaml(
    split_counts: dict[str, dict[str, int]], n_samples: int, signal_dtype: str,
    split_bytes: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """`configs` (one per source plus `all`, the default) and `dataset_info` for each."""
    features = DatasetInfo(features=published_features(n_samples, signal_dtype))._to_yaml_dict()
    configs, infos = [], []
    sources = sorted(split_counts)
    all_splits: dict[str, int] = {}
    all_bytes: dict[str, int] = {}
    for source in sources:
        for split, count in split_counts[source].items():
            all_splits[split] = all_splits.get(split, 0) + count
            all_bytes[split] = all_bytes.get(split, 0) + split_bytes[source][split]
    entries = [("all", sources, all_splits, all_bytes)] + [
        (s, [s], split_counts[s], split_bytes[s]) for s in sources
    ]
    for name, members, counts, sizes in entries:
        splits = [split for split in ("train", "validation", "test") if counts.get(split)]
        config: dict[str, Any] = {
            "config_name": name,
            "data_files": [
                {"split": split, "path": [f"data/{m}/{split}-*.parquet" for m in members
                                          if split_counts[m].get(split)]}
                for split in splits
            ],
        }
        if name == "all":
            config["default"] = True
        configs.append(config)
        infos.append({
            "config_name": name,
            **features,
            "splits": [
                {"name": split, "num_bytes": sizes[split], "num_examples": counts[split]}
                for split in splits
            ],
        })
    return {"configs": configs, "dataset_info": infos}


def file_sha256(path: Path) -> bytes:
    """sha256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            h.update(chunk)
    return h.digest()


def stamp_contents(header: dict[str, Any], folder: Path,
                   known: dict[Path, bytes] | None = None) -> None:
    """Give each config of the card a ``description`` naming the sha256 of its data files.

    Why: `datasets` keys its Arrow cache of a local folder on the folder's name and the card's
    YAML, not on the data files, so a rebuilt `out/meit` (or another `meit` folder) was served
    from an earlier build's cache. The digest makes different content a different cache entry,
    and the same content the same one (tests/publish/test_load_identity.py). ``known``: file
    digests already taken (publish's workers hash each signal file right after writing it, in
    parallel and while it is in the page cache); the others are read here once each.
    """
    digests = dict(known or {})
    for config in header["configs"]:
        h = hashlib.sha256()
        for entry in config["data_files"]:
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            for pattern in patterns:
                for path in sorted(folder.glob(pattern)):
                    if path not in digests:
                        digests[path] = file_sha256(path)
                    h.update(path.relative_to(folder).as_posix().encode() + b"\0")
                    h.update(digests[path])
        config["description"] = f"data files sha256 {h.hexdigest()[:32]}"


def render_card(out: Path, context: dict[str, Any], header: dict[str, Any]) -> str:
    """The full README.md text: YAML front matter + the rendered Markdown body."""
    env = SandboxedEnvironment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=True)
    body = env.from_string(CARD_TEMPLATE.read_text(encoding="utf-8")).render(**context)
    front = yaml.dump({"license": "other", **header}, Dumper=_NoAliasDumper, sort_keys=False,
                      allow_unicode=True)
    return f"---\n{front}---\n\n{body}"
