"""Helpers shared by the robustness tests: one small sample mirror per session, quick recipes,
in-process builds and a byte-level fingerprint of a published dataset."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import yaml

from ecg_instruct.build.recipe import recipe_path

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_100HZ = recipe_path("meit-100hz")  # pipelines/ (a wheel: ecg_instruct/recipes/)
N_PTBXL = 20
N_MIMIC = 20


def sample_mirror(tmp_path_factory) -> Path:
    """A 20 + 20 record sample mirror, written once per test session (read-only for tests)."""
    from ecg_instruct.sample import write_sample_mirror

    folder = tmp_path_factory.getbasetemp() / "robust-mirror"
    if not (folder / ".done").exists():
        if folder.exists():
            shutil.rmtree(folder)
        write_sample_mirror(folder, n_ptbxl=N_PTBXL, n_mimic=N_MIMIC)
        (folder / ".done").write_text("")
    return folder


def copy_mirror(mirror: Path, dest: Path) -> Path:
    """A private, writable copy of the mirror for tests that damage it."""
    shutil.copytree(mirror, dest, ignore=shutil.ignore_patterns(".done"))
    return dest


def quick_recipe(folder: Path, shard_size: int = 4, rows_per_file: int = 6, **changes) -> Path:
    """The 100 Hz recipe with small shards (several shards to kill between) and small files."""
    data = yaml.safe_load(RECIPE_100HZ.read_text(encoding="utf-8"))
    data["shard_size"] = shard_size
    data["publish"]["rows_per_file"] = rows_per_file
    data["publish"]["row_group_rows"] = 4
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def options(raw: Path, out: Path, recipe: Path, workers: int = 1, seed: int = 0, **kwargs):
    from ecg_instruct.build.pipeline import BuildOptions
    from ecg_instruct.build.recipe import load_recipe

    return BuildOptions(raw_dir=raw, out=out, recipe=load_recipe(recipe),
                        sources=["ptbxl", "mimic"], workers=workers, seed=seed, progress=False,
                        **kwargs)


def run_build(raw: Path, out: Path, recipe: Path, workers: int = 1, seed: int = 0, **kwargs):
    from ecg_instruct.build.pipeline import build

    return build(options(raw, out, recipe, workers, seed, **kwargs))


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def bulk_mirror(tmp_path_factory, n_mimic: int = 4600) -> Path:
    """The sample mirror with `n_mimic` MIMIC records, written once per session in ~1 s.

    Large enough for every code path that depends on the number of records (the instruct stage
    works in chunks of 4,096), cheap because each new record is a renamed header beside a hard
    link to one of the sample's `.dat` files. Read-only: writing into a `.dat` would change
    every record linked to it (damage a `copy_mirror` of `sample_mirror` instead).
    """
    import csv

    base = sample_mirror(tmp_path_factory)
    folder = tmp_path_factory.getbasetemp() / f"bulk-mirror-{n_mimic}"
    if (folder / ".done").exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(base / "ptb-xl", folder / "ptb-xl")
    source, dest = base / "mimic-iv-ecg", folder / "mimic-iv-ecg"
    dest.mkdir(parents=True)
    with (source / "record_list.csv").open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    with (source / "machine_measurements.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        measurement_columns = list(reader.fieldnames or [])
        measurements = {row["study_id"]: row for row in reader}
    new_records, new_measurements = [], []
    for number in range(n_mimic):
        template = records[number % len(records)]
        study, subject = str(50000000 + number), template["subject_id"]
        relative = f"files/p{subject[:4]}/p{subject}/s{study}/{study}"
        header = source / f"{template['path']}.hea"
        if header.exists():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            text = header.read_text(encoding="utf-8").replace(template["study_id"], study)
            Path(f"{dest / relative}.hea").write_text(text, encoding="utf-8")
            os.link(source / f"{template['path']}.dat", f"{dest / relative}.dat")
        new_records.append({**template, "study_id": study, "file_name": study, "path": relative})
        if template["study_id"] in measurements:
            new_measurements.append({**measurements[template["study_id"]], "study_id": study})
    for name, columns, rows in (("record_list.csv", list(records[0]), new_records),
                                ("machine_measurements.csv", measurement_columns,
                                 new_measurements)):
        with (dest / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    (folder / ".done").write_text("")
    return folder
