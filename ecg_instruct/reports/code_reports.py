"""English reports composed from coded labels (Challenge 2021 SNOMED-CT codes, CODE-15% flags).

These sources ship no report text, only labels. As with PTB-XL's `--report-style labels`
(`label_reports.py`), the report states each known label in one sentence, in a fixed section
order (rhythm first, as in MIMIC's machine statements), and nothing else. Codes that the
packaged table does not know are left out of the text (they stay in the record's `labels`) and
returned, so the caller can count them: inventing a name for an unknown SNOMED code would put
words in a cardiologist's mouth.

Tables: `data/cinc2021_dx_en.yaml` (cited there) and `data/code15_labels_en.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from ecg_instruct.reports.label_reports import _capitalise

TABLE_FILES = {"cinc2021": "cinc2021_dx_en.yaml", "code15": "code15_labels_en.yaml"}
#: The prefix of a Challenge 2021 `report_raw`: its `#Dx:` comment as released.
DX_PREFIX = "Dx:"


@dataclass(frozen=True)
class CodeEntry:
    abbreviation: str
    name: str
    section: str
    text: str


@dataclass(frozen=True)
class CodeTable:
    version: str
    order: tuple[str, ...]
    codes: dict[str, CodeEntry]


@cache
def code_table(source: str) -> CodeTable:
    """The packaged label table of `source` (`cinc2021` or `code15`)."""
    ref = resources.files("ecg_instruct") / "data" / TABLE_FILES[source]
    data = yaml.safe_load(ref.read_text(encoding="utf-8"))
    codes = {str(code): CodeEntry(str(e["abbreviation"]), str(e["name"]), str(e["section"]),
                                  str(e["text"]))
             for code, e in data["codes"].items()}
    return CodeTable(str(data["version"]), tuple(str(s) for s in data["order"]), codes)


def parse_codes(raw: str) -> list[str]:
    """The codes of a `report_raw` of a coded source: ``"Dx: 164934002,426783006"`` or a
    plain comma-separated list (CODE-15%); blanks and duplicates dropped, order kept."""
    text = raw.strip()
    if text.startswith(DX_PREFIX):
        text = text[len(DX_PREFIX):]
    seen: dict[str, None] = {}
    for part in text.split(","):
        code = part.strip()
        if code:
            seen.setdefault(code, None)
    return list(seen)


def report_from_codes(source: str, codes: list[str]) -> tuple[str, list[str]]:
    """(English report, codes the table does not know). The report is "" when no code is
    known; sentences in the table's section order, then by code, each stated once."""
    table = code_table(source)
    entries, unknown = set(), []
    for code in codes:
        entry = table.codes.get(code)
        if entry is None:
            unknown.append(code)
            continue
        rank = table.order.index(entry.section) if entry.section in table.order else len(table.order)
        entries.add((rank, code, entry.text))
    texts: list[str] = []
    for _, _, text in sorted(entries):
        if text not in texts:  # equivalent codes (e.g. RBBB and CRBBB texts) are said once
            texts.append(text)
    return " ".join(f"{_capitalise(t)}." for t in texts), unknown


def unknown_code_counts(sources: list[str], labels: list[list[str]], limit: int = 20
                        ) -> list[dict[str, object]]:
    """[{source, code, records}] of the label codes the packaged tables do not know, among
    published records (for the dataset card: codes kept in `labels` but absent from reports),
    most frequent first, at most `limit` rows."""
    counts: dict[tuple[str, str], int] = {}
    for source, codes in zip(sources, labels, strict=True):
        if source not in TABLE_FILES:
            continue
        known = code_table(source).codes
        for code in set(codes):
            if code not in known:
                counts[(source, code)] = counts.get((source, code), 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"source": s, "code": c, "records": n} for (s, c), n in ranked]
