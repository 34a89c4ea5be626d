"""English reports composed from coded labels (Challenge 2021 SNOMED-CT codes, CODE-15% flags).

These sources ship no report text, only labels. As with PTB-XL's `--report-style labels`
(`label_reports.py`), the report states each known label's finding in one sentence, in a fixed
section order (rhythm first, as in MIMIC's machine statements) and, within a section, in the
table's (clinical) order, and nothing else. Where a record carries a code and a finer form of
it (complete RBBB and RBBB, LV high voltage and LVH), only the finer code's sentence is written
(or the pair's `joint_text`): the report does not state one finding twice. Codes that the
packaged table does not know are left out of the text (they stay in the record's `labels`) and
returned, so the caller can count them: inventing a name for an unknown SNOMED code would put
words in a cardiologist's mouth.

Tables: `data/cinc2021_dx_en.yaml` (both Challenge mapping files, cited there) and
`data/code15_labels_en.yaml`. The same Challenge table gives the clinical-accuracy score and
the label agreement their Challenge statements (`challenge_statements`), so a generated report
that names a finding of the table is credited for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

TABLE_FILES = {"cinc2021": "cinc2021_dx_en.yaml", "code15": "code15_labels_en.yaml"}
#: The Challenge's own code tables, packaged verbatim (evaluation-2021 at commit 09de852).
CHALLENGE_MAPPING_FILES = ("cinc2021_dx_mapping_scored.csv", "cinc2021_dx_mapping_unscored.csv")
#: The prefix of a Challenge 2021 `report_raw`: its `#Dx:` comment as released.
DX_PREFIX = "Dx:"
#: Statement name prefix of a Challenge finding that no PTB-XL SCP statement names.
CHALLENGE_STATEMENT_PREFIX = "cinc:"
#: Statement kind (as the clinical score's rhythm/form/diagnostic) of a Challenge section.
SECTION_KINDS = {"rhythm": "rhythm", "ectopy": "form"}  # every other section: diagnostic
#: Sections whose `cinc:` statements the clinical score leaves out: the frontal axis is not a
#: statement of its vocabulary (PTB-XL keeps it in a `heart_axis` column, not among the SCP
#: statements), so PTB-XL and MIMIC reports saying "left axis deviation" are not scored on it
#: either. The label agreement still checks that a report states these codes.
UNSCORED_SECTIONS = ("axis",)


@dataclass(frozen=True)
class CodeEntry:
    abbreviation: str
    name: str
    section: str
    text: str
    refines: tuple[str, ...] = ()
    joint_text: str | None = None
    scp: tuple[str, ...] = ()
    not_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeTable:
    version: str
    order: tuple[str, ...]
    codes: dict[str, CodeEntry]
    #: code -> every code it refines, transitively (complete RBBB -> RBBB -> BBB)
    broader: dict[str, frozenset[str]] = field(default_factory=dict)
    _ranks: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._ranks.update({code: i for i, code in enumerate(self.codes)})

    def position(self, code: str) -> tuple[int, int]:
        """(section rank, rank in the table): the order of the report's sentences."""
        section = self.codes[code].section
        rank = self.order.index(section) if section in self.order else len(self.order)
        return rank, self._ranks[code]

    def finer(self, code: str) -> frozenset[str]:
        """The codes that refine `code`, transitively: their sentences state its finding."""
        return frozenset(c for c, up in self.broader.items() if code in up)


@cache
def code_table(source: str) -> CodeTable:
    """The packaged label table of `source` (`cinc2021` or `code15`)."""
    ref = resources.files("ecg_instruct") / "data" / TABLE_FILES[source]
    data = yaml.safe_load(ref.read_text(encoding="utf-8"))
    codes = {str(code): CodeEntry(str(e["abbreviation"]), str(e["name"]), str(e["section"]),
                                  str(e["text"]), tuple(str(c) for c in e.get("refines") or ()),
                                  str(e["joint_text"]) if e.get("joint_text") else None,
                                  tuple(str(s) for s in e.get("scp") or ()),
                                  tuple(str(w) for w in e.get("not_after") or ()))
             for code, e in data["codes"].items()}
    return CodeTable(str(data["version"]), tuple(str(s) for s in data["order"]), codes,
                     _closure(codes, ref.name))


def _closure(codes: dict[str, CodeEntry], where: str) -> dict[str, frozenset[str]]:
    """code -> all codes it refines, following `refines` transitively (a developer guard
    rejects unknown targets and cycles: the table is package data, not user input)."""
    out: dict[str, frozenset[str]] = {}
    for code in codes:
        seen: set[str] = set()
        stack = list(codes[code].refines)
        while stack:
            other = stack.pop()
            if other not in codes:
                raise ValueError(f"{where}: {code} refines unknown code {other}")
            if other == code:
                raise ValueError(f"{where}: {code} refines itself (a cycle)")
            if other not in seen:
                seen.add(other)
                stack.extend(codes[other].refines)
        out[code] = frozenset(seen)
    return out


@dataclass(frozen=True)
class MappingRow:
    """One row of the Challenge's `dx_mapping_*.csv`: code, Dx, abbreviation, record counts."""

    code: str
    dx: str
    abbreviation: str
    scored: bool
    counts: dict[str, int]  # per-database column (CPSC, ..., Ningbo) -> records; no Total


#: Records per database of the Challenge 2021 training set (Reyna et al. 2021; 88,253 in all),
#: keyed by the mapping files' count columns: the denominators of the code rates.
CHALLENGE_DATABASE_RECORDS = {"CPSC": 6877, "CPSC_Extra": 3453, "StPetersburg": 74, "PTB": 516,
                              "PTB_XL": 21837, "Georgia": 10344, "Chapman_Shaoxing": 10247,
                              "Ningbo": 34905}


@cache
def challenge_mapping() -> tuple[MappingRow, ...]:
    """The rows of both packaged Challenge mapping files (scored first), as released."""
    import csv
    import io

    rows = []
    for name in CHALLENGE_MAPPING_FILES:
        text = (resources.files("ecg_instruct") / "data" / name).read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            counts = {db: int(row[db]) for db in CHALLENGE_DATABASE_RECORDS}
            rows.append(MappingRow(row["SNOMEDCTCode"], row["Dx"], row["Abbreviation"],
                                   name.endswith("_scored.csv"), counts))
    return tuple(rows)


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


def report_sentences(source: str, codes: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """([(code, sentence text)] in report order, codes the table does not know).

    A code refined by another code of the record is not stated on its own: the finer code's
    sentence states it (its `joint_text` where the table gives one). Identical texts are said
    once."""
    table = code_table(source)
    known = [c for c in codes if c in table.codes]
    unknown = [c for c in codes if c not in table.codes]
    present = set(known)
    covered = set().union(*(table.broader[c] for c in present)) if present else set()
    chosen = []
    for code in present - covered:
        entry = table.codes[code]
        joint = entry.joint_text is not None and bool(table.broader[code] & present)
        chosen.append((table.position(code), code, entry.joint_text if joint else entry.text))
    out: list[tuple[str, str]] = []
    for _, code, text in sorted(chosen):
        if text not in (t for _, t in out):
            out.append((code, text))
    return out, unknown


def report_from_codes(source: str, codes: list[str]) -> tuple[str, list[str]]:
    """(English report, codes the table does not know). The report is "" when no code is
    known; one sentence per finding, in the table's section order (`report_sentences`)."""
    sentences, unknown = report_sentences(source, codes)
    return " ".join(f"{t[:1].upper()}{t[1:]}." for _, t in sentences), unknown


@dataclass(frozen=True)
class ChallengeStatements:
    """The Challenge table as statements of the clinical score and the label agreement."""

    version: str
    #: statement -> kind, for the Challenge findings no SCP statement names (`cinc:<abbr>`)
    kinds: dict[str, str]
    #: statement -> expressions that state it (the finding's sentences, as written in reports)
    patterns: dict[str, tuple[re.Pattern[str], ...]]
    #: code -> the statements that state its finding (its `scp` list, else its `cinc:` one)
    findings: dict[str, tuple[str, ...]]
    #: `cinc:` statements the clinical score leaves out (`UNSCORED_SECTIONS`)
    unscored: frozenset[str] = frozenset()


@cache
def challenge_statements() -> ChallengeStatements:
    """Statements for the Challenge codes: a code with `scp` equivalents is credited through
    those PTB-XL statements; every other code gets `cinc:<abbreviation>`, matched by its
    sentence (and joint sentence) as a whole phrase, but not inside a longer sentence of the
    table that holds it ("bundle branch block" is not matched inside "right bundle branch
    block": that finer finding has its own statement)."""
    table = code_table("cinc2021")
    texts = {t.lower() for e in table.codes.values() for t in (e.text, e.joint_text) if t}
    kinds: dict[str, str] = {}
    patterns: dict[str, tuple[re.Pattern[str], ...]] = {}
    findings: dict[str, tuple[str, ...]] = {}
    unscored: set[str] = set()
    for code, entry in table.codes.items():
        if entry.scp:
            findings[code] = entry.scp
            continue
        name = f"{CHALLENGE_STATEMENT_PREFIX}{entry.abbreviation}"
        kinds[name] = SECTION_KINDS.get(entry.section, "diagnostic")
        phrases = [t.lower() for t in (entry.text, entry.joint_text) if t]
        patterns[name] = tuple(_phrase_pattern(p, texts, entry.not_after) for p in phrases)
        findings[code] = (name,)
        if entry.section in UNSCORED_SECTIONS:
            unscored.add(name)
    return ChallengeStatements(table.version, kinds, patterns, findings, frozenset(unscored))


_EDGE_BEFORE, _EDGE_AFTER = r"(?<![\w-])", r"(?![\w-])"


def _phrase_pattern(phrase: str, texts: set[str], not_after: tuple[str, ...] = ()
                    ) -> re.Pattern[str]:
    """`phrase` as a whole-word pattern that skips its occurrences inside the longer `texts`
    and after the words `not_after`."""
    before, after = {w.lower() for w in not_after}, set()
    for text in texts:
        for match in re.finditer(_EDGE_BEFORE + re.escape(phrase) + _EDGE_AFTER, text):
            head, tail = text[: match.start()].split(), text[match.end():].split()
            if head:
                before.add(head[-1])
            if tail:
                after.add(tail[0])
    guard = "".join(f"(?<!{re.escape(w)} )" for w in sorted(before))
    guard_after = "".join(f"(?! {re.escape(w)}(?![\\w-]))" for w in sorted(after))
    return re.compile(guard + _EDGE_BEFORE + re.escape(phrase) + _EDGE_AFTER + guard_after)


def unknown_code_counts(sources: list[str], labels: list[list[str]], published: list[bool],
                        limit: int = 20) -> list[dict[str, object]]:
    """[{source, code, records, published}] of the label codes the packaged tables do not
    know, over every indexed record of a coded source (a record whose codes are all unknown is
    rejected, so counting only published records would hide its codes), most frequent first,
    at most `limit` rows."""
    counts: dict[tuple[str, str], list[int]] = {}
    for source, codes, kept in zip(sources, labels, published, strict=True):
        if source not in TABLE_FILES:
            continue
        known = code_table(source).codes
        for code in set(codes):
            if code not in known:
                row = counts.setdefault((source, code), [0, 0])
                row[0] += 1
                row[1] += int(kept)
    ranked = sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
    return [{"source": s, "code": c, "records": n, "published": p} for (s, c), (n, p) in ranked]
