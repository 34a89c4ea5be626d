"""The sample mirror's ECG-QA folder: questions about its synthetic records, in the release's shape.

Written from the mirror's own metadata (`ptb-xl/ptbxl_database.csv` + `scp_statements.csv`,
`mimic-iv-ecg/machine_measurements.csv`), so every answer follows from the record's labels
(PTB-XL statements; MIMIC-IV-ECG machine statements), for the default and the learnable mirror
alike. Layout and fields are those of ECG-QA 1.0.2 (`ecg-qa/ecgqa/<edition>/<variant>/<split>/
<first sample_id>.json`, see `sources/ecgqa.py`); the questions are generated here, nothing is copied from
the release. Its splits are a hash of the ECG, deliberately not PTB-XL's `strat_fold`, like the
real release's, and a few samples are broken on purpose so every reject reason is exercised: an
ECG absent from the mirror (`missing_ecg`), questions on the records the sample damages (curation
rejects), pairs across our splits (`cross_split`) and one sample without ECGs
(`malformed_question`).
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Callable
from pathlib import Path

from ecg_instruct.rng import rng_for, stable_hash
from ecg_instruct.sources.ecgqa import ECGQA_DIR, RELEASE_FOLDER, RELEASE_SPLITS

#: Samples per chunk file (the release's is 10,000; small here so the sample has several files).
CHUNK = 100
#: An ECG id the mirror does not hold (a `missing_ecg` reject: not in the mirror).
ABSENT_PTBXL_ECG = 99_999

#: kind -> (question_type, template_id, template wording, paraphrased wording).
KINDS: dict[str, tuple[str, int, str, str]] = {
    "verify": ("single-verify", 1, "Does this ECG show symptoms of {a}?",
               "Is there evidence of {a} in this ECG?"),
    "choose": ("single-choose", 2, "Which symptom does this ECG show, {a} or {b}?",
               "Between {a} and {b}, which one appears in this ECG?"),
    "query": ("single-query", 3, "What symptoms does this ECG show?",
              "Which findings can be seen in this ECG?"),
    "consecutive-verify": ("comparison_consecutive-verify", 4,
                           "Does the second ECG newly show {a} compared to the first ECG?",
                           "Compared with the first ECG, is {a} new in the second ECG?"),
    "consecutive-query": ("comparison_consecutive-query", 5,
                          "Which symptoms of the second ECG are not in the first ECG?",
                          "What does the second ECG show that the first ECG does not?"),
    "irrelevant-verify": ("comparison_irrelevant-verify", 6, "Do both ECGs show {a}?",
                          "Is {a} present in both ECGs?"),
    "irrelevant-query": ("comparison_irrelevant-query", 7,
                         "Which symptoms do both ECGs share?",
                         "What findings are common to the two ECGs?"),
}


def release_split(edition: str, ecg: int) -> str:
    """The sample release's split of an ECG: a hash (80 / 10 / 10 %), not our split rule."""
    draw = stable_hash("sample-ecgqa-split", edition, ecg) % 10
    return RELEASE_SPLITS[0] if draw < 8 else RELEASE_SPLITS[1] if draw == 8 else RELEASE_SPLITS[2]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ptbxl_labels(root: Path) -> tuple[dict[int, set[str]], dict[int, str]]:
    """ecg_id -> statement descriptions (lower case) and ecg_id -> patient, from the mirror."""
    names = {row[""]: row["description"].lower() for row in _read_csv(root / "scp_statements.csv")}
    labels, patients = {}, {}
    for row in _read_csv(root / "ptbxl_database.csv"):
        ecg = int(row["ecg_id"])
        codes = ast.literal_eval(row["scp_codes"])
        labels[ecg] = {names[code] for code in codes if code in names}
        patients[ecg] = row["patient_id"]
    return labels, patients


def mimic_labels(root: Path) -> tuple[dict[int, set[str]], dict[int, str]]:
    """study_id -> machine statements (lower case, artefacts left out) and study -> subject."""
    labels, patients = {}, {}
    for row in _read_csv(root / "machine_measurements.csv"):
        statements = {row[f"report_{i}"].strip().lower() for i in range(18)
                      if row.get(f"report_{i}", "").strip()}
        labels[int(row["study_id"])] = {s for s in statements
                                        if not s.startswith("-") and s != "unconfirmed"}
        patients[int(row["study_id"])] = row["subject_id"]
    return labels, patients


class _Writer:
    """Samples of one edition, per (variant, split), with running sample and question ids."""

    def __init__(self, edition: str):
        self.edition = edition
        self.samples: dict[str, list[dict]] = {split: [] for split in RELEASE_SPLITS}
        self.question_ids: dict[tuple[int, str], int] = {}

    def add(self, split: str, kind: str, ecgs: list[int], answer: list[str],
            attribute: list[str] | None, a: str = "", b: str = "") -> None:
        question_type, template_id, template, paraphrased = KINDS[kind]
        key = (template_id, json.dumps(attribute))
        question_id = self.question_ids.setdefault(key, len(self.question_ids))
        self.samples[split].append({
            "template_id": template_id, "question_id": question_id,
            "question_type": question_type, "attribute_type": "scp_code",
            "question": (template.format(a=a, b=b), paraphrased.format(a=a, b=b)),
            "answer": answer, "ecg_id": ecgs, "attribute": attribute,
        })

    def write(self, root: Path) -> None:
        for variant_number, variant in enumerate(("template", "paraphrased")):
            for split, samples in self.samples.items():
                folder = root / self.edition / variant / split
                folder.mkdir(parents=True, exist_ok=True)
                rows = []
                for sample_id, sample in enumerate(samples):
                    row = {key: sample[key] for key in ("template_id", "question_id")}
                    row["sample_id"] = sample_id
                    row.update({key: sample[key] for key in ("question_type", "attribute_type")})
                    row["question"] = sample["question"][variant_number]
                    row.update({key: sample[key] for key in ("answer", "ecg_id", "attribute")})
                    rows.append(row)
                for start in range(0, max(1, len(rows)), CHUNK):
                    (folder / f"{start}.json").write_text(
                        json.dumps(rows[start:start + CHUNK], indent=4), encoding="utf-8")


def _questions(writer: _Writer, labels: dict[int, set[str]], patients: dict[int, str],
               seed: int, pool: list[str], draw_pairs: Callable[[list[int]], list]) -> None:
    """Single-ECG questions for every ECG, then comparison questions for the pairs drawn."""
    edition = writer.edition
    for ecg in sorted(labels):
        rng = rng_for(seed, "sample-ecgqa", edition, ecg)
        have = sorted(labels[ecg])
        absent = [s for s in pool if s not in labels[ecg]]
        split = release_split(edition, ecg)
        if have:
            a = have[int(rng.integers(len(have)))]
            writer.add(split, "verify", [ecg], ["yes"], [a], a)
        if absent:
            a = absent[int(rng.integers(len(absent)))]
            writer.add(split, "verify", [ecg], ["no"], [a], a)
        if have and absent and edition == "ptbxl":
            a, b = have[int(rng.integers(len(have)))], absent[int(rng.integers(len(absent)))]
            if rng.random() < 0.5:
                a, b = b, a
            writer.add(split, "choose", [ecg], [a if a in labels[ecg] else b], [a, b], a, b)
        if have and edition == "ptbxl":
            writer.add(split, "query", [ecg], have, None)
    for kind, first, second in draw_pairs(sorted(labels)):
        one, two = labels[first], labels[second]
        split = release_split(edition, second)
        rng = rng_for(seed, "sample-ecgqa-pair", edition, first, second)
        if kind.endswith("verify"):
            options = sorted(one | two)
            if not options:
                continue
            a = options[int(rng.integers(len(options)))]
            truth = (a in two and a not in one) if kind.startswith("consecutive") else (
                a in one and a in two)
            writer.add(split, kind, [first, second], ["yes" if truth else "no"], [a], a)
        else:
            answer = sorted(two - one) if kind.startswith("consecutive") else sorted(one & two)
            writer.add(split, kind, [first, second], answer or ["none"], None)


def _pairs(patients: dict[int, str], seed: int, edition: str) -> Callable[[list[int]], list]:
    """Consecutive pairs: successive ECGs of one patient; irrelevant pairs: ECGs drawn at random
    (some of them in different splits of ours, as in the real release)."""
    def draw(ecgs: list[int]) -> list[tuple[str, int, int]]:
        by_patient: dict[str, list[int]] = {}
        for ecg in ecgs:
            by_patient.setdefault(patients[ecg], []).append(ecg)
        pairs = []
        for members in by_patient.values():
            for first, second in zip(members, members[1:], strict=False):
                pairs += [("consecutive-verify", first, second),
                          ("consecutive-query", first, second)]
        rng = rng_for(seed, "sample-ecgqa-irrelevant", edition)
        for _ in range(len(ecgs) // 2):
            first, second = (int(e) for e in rng.choice(ecgs, size=2, replace=False))
            pairs += [("irrelevant-verify", first, second), ("irrelevant-query", first, second)]
        return pairs
    return draw


def write_ecgqa_sample(mirror: Path, seed: int = 0) -> Path:
    """`<mirror>/ecg-qa/ecgqa/`: both editions, both variants, chunked; returns the folder."""
    root = Path(mirror) / ECGQA_DIR / RELEASE_FOLDER
    editions = (("ptbxl", Path(mirror) / "ptb-xl", ptbxl_labels),
                ("mimic-iv-ecg", Path(mirror) / "mimic-iv-ecg", mimic_labels))
    for edition, source_root, read in editions:
        if not source_root.is_dir():
            continue
        labels, patients = read(source_root)
        pool = sorted(set().union(*labels.values()))
        writer = _Writer(edition)
        _questions(writer, labels, patients, seed, pool, _pairs(patients, seed, edition))
        if edition == "ptbxl":
            first = min(labels)
            writer.add("test", "verify", [ABSENT_PTBXL_ECG], ["no"], [pool[0]], pool[0])
            writer.add("train", "verify", [first], ["yes"], None, "anything")
            writer.samples["train"][-1]["ecg_id"] = []  # malformed: a question without its ECG
        writer.write(root)
    return root
