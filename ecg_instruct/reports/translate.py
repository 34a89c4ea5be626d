"""Translate ECG reports to English in the clinical style of MIMIC statements.

Two backends share one interface (`Translator`):

- ``glossary`` (default): offline and deterministic. Applies the versioned phrase glossary
  (`ecg_instruct/data/glossary_de_en.yaml`) with longest-match rules over normalised tokens and
  assembles English sentences ("Sinus rhythm. Left axis deviation. Possible left ventricular
  hypertrophy."). Whatever it cannot translate stays in the text verbatim *and* is listed in
  `Translation.untranslated`, lowering `coverage`; the recipe's `min_coverage` decides whether
  such a record is published or rejected as ``untranslated``. Nothing is dropped silently.
- ``marian``: a MarianMT model from a local folder through `transformers` (imported lazily). It is
  a fallback, not a replacement: each report first goes through the glossary, and only reports the
  glossary cannot fully cover are translated whole by the model (greedy decoding, deterministic on
  one machine). Whole-text rather than span translation because a span cut out of a German
  statement sequence has no sentence context for the model to use.

Coverage (`Translation.coverage`) is the share of the source's word tokens (numbers and
punctuation excluded) that were consumed by a glossary rule or are language-neutral: lead names
(V1, aVF), wave and interval names (QRS, ST, PR), units, international abbreviations (ECG, LVH)
and, inside a German or Swedish report, English words. Typos that are one edit away from a
glossary word (two for long words), German compounds of glossary words and a final word cut off
by truncation count as covered only when the correction is unambiguous. English input has
coverage 1.0 unless it contains German or Swedish glossary words (a misidentified or mixed
report), which count as untranslated. A reviewer's note appended as ``Edit: ...`` is metadata, not report
text: it is excluded from the translation (see `split_reviewer_edit`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from ecg_instruct.errors import UserError
from ecg_instruct.reports.glossary import (
    Glossary,
    LanguageRules,
    Rule,
    Token,
    default_glossary,
    tokenize,
)

TRANSLATORS = ("glossary", "marian")

_EDIT_RE = re.compile(r"\s*\bedit\s*:", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?;])\s+")
_WORD_RE = re.compile(r"[^\W\d_]+(?:\d+[^\W\d_]*)?", re.UNICODE)
_SPACE_RE = re.compile(r"\s+")
_GLUE = {"-": "-", ",": ", ", "/": "/", "+": "+", ":": ":"}
_MIN_TRUNCATED = 2  # shortest cut-off final word we try to complete
_SPLIT_LETTERS = frozenset("ipqrstuv")  # one-letter leads/waves allowed in a run-together token
_MAX_REPAIR = 40  # longest unknown word we try to split or spell-correct


@dataclass(frozen=True)
class Translation:
    """English text plus how much of the source the translator could vouch for."""

    text: str  # English, clinical MIMIC-statement style ("Sinus rhythm. Normal ECG.")
    coverage: float  # share of source word tokens covered (1.0 for English input)
    untranslated: tuple[str, ...]  # the source tokens left untranslated, in order


class Translator(Protocol):
    """A report translator; `name` and `version` go into the dataset card."""

    name: str
    version: str

    def translate(self, text: str, language: str) -> Translation: ...


def split_reviewer_edit(text: str) -> tuple[str, str | None]:
    """Split a PTB-XL report into its text and the reviewer's appended ``Edit: ...`` note.

    The note lists SCP codes a reviewer changed (``Edit: NORM 100, (NDT)``); it is not report text,
    so it is neither translated nor counted in coverage. `fidelity` uses it to flag records whose
    labels were edited after the report was written.
    """
    m = _EDIT_RE.search(text)
    if m is None:
        return text, None
    return text[: m.start()], text[m.end() :].strip()


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:] if sentence[:1].islower() else sentence


def _render(sentences: Sequence[str]) -> str:
    out = []
    for s in sentences:
        s = _SPACE_RE.sub(" ", s).replace(" ,", ",").strip(" ,;")
        if not s:
            continue
        s = _capitalise(s)
        out.append(s if s[-1] in ".!?" else s + ".")
    return " ".join(out)


def normalise_english(text: str, glossary: Glossary | None = None) -> str:
    """Bring an English report into MIMIC statement style without changing its words.

    Sentence case, ``". "`` separators, one space, clinical casing (ECG not EKG, QRS, aVF) and
    American spelling (ischemia).
    """
    glossary = glossary or default_glossary()
    text = _SPACE_RE.sub(" ", text).strip()

    def fix(m: re.Match[str]) -> str:
        word = m.group()
        low = word.lower()
        if low in glossary.en_spelling:
            return glossary.en_spelling[low]
        return glossary.en_casing.get(low, word)

    text = _WORD_RE.sub(fix, text)
    return _render(_SENTENCE_END_RE.split(text))


class _Sentences:
    """Assembles rule outputs into sentences according to each rule's role."""

    def __init__(self) -> None:
        self.sentences: list[str] = []
        self.pending: str | None = None  # a prefix_next qualifier waiting for its sentence
        self.after_neutral = False  # the last output was a lead/number/unit

    def _take_pending(self, english: str) -> str:
        if self.pending:
            english, self.pending = f"{self.pending} {english}", None
        return english

    def add(self, rule: Rule) -> None:
        self.after_neutral = False
        role, english = rule.role, rule.english
        if role == "sentence":
            self.sentences.append(self._take_pending(english))
        elif role == "prefix_next":
            self.pending = f"{self.pending} {english}" if self.pending else english
        elif role == "prefix_prev" and self.sentences and not self.pending:
            self.sentences[-1] = f"{english} {self.sentences[-1]}"
        elif role == "suffix_prev" and self.sentences and not self.pending:
            self.sentences[-1] += english
        else:  # word, or a qualifier with nothing to qualify
            self.word(english.lstrip(", "))

    def word(self, english: str) -> None:
        """A free word joins the current sentence, or a pending qualifier's phrase: German puts
        adjectives before their statement (`fragl. chron. inferiorer infarkt` -> "Questionable
        chronic inferior infarct.")."""
        if not english:
            return
        if self.pending:
            self.pending += " " + english
        elif self.sentences:
            self.sentences[-1] += " " + english
        else:
            self.sentences.append(english)

    def neutral(self, english: str, gap: str) -> None:
        """A lead, number or unit; glued to a preceding one as the source did (`V1-3`)."""
        if self.pending:  # "wahrscheinlich ... in V5": the qualifier's phrase is a sentence
            self.sentences.append(self.pending)
            self.pending = None
        glue = _GLUE.get(gap.strip())
        if glue == ", " and english[:1].isdigit():
            glue = ","  # "V4,5,6", not "V4, 5,6"
        if self.after_neutral and glue and self.sentences and not self.pending:
            self.sentences[-1] += glue + english
        else:
            self.word(english)
        self.after_neutral = True

    def text(self) -> str:
        if self.pending:  # a qualifier at the very end stands alone
            self.sentences.append(self.pending)
            self.pending = None
        return _render(self.sentences)


@dataclass(frozen=True)
class _Unit:
    """A matchable token: a source word (possibly one part of a split compound) or number."""

    norm: str
    token: int  # index into the source token list


class GlossaryTranslator:
    """Offline, deterministic German/Swedish -> English translation from the glossary."""

    name = "glossary"

    def __init__(self, glossary: Glossary | None = None):
        self.glossary = glossary or default_glossary()
        self.version = self.glossary.version
        self._correct = lru_cache(maxsize=65536)(self._correct_uncached)
        self._deletes: dict[str, dict[str, list[str]]] = {}
        self._vocab_lists: dict[int, list[str]] = {}

    # -- public -------------------------------------------------------------------------------
    def translate(self, text: str, language: str) -> Translation:
        """Translate `text` written in `language` (``de``/``en``/``sv``/``other``); never raises
        on any string."""
        source, _ = split_reviewer_edit(text if isinstance(text, str) else str(text))
        if language == "en":
            return self._english(source)
        if language in self.glossary.languages:
            return self._translate(source, language)
        # Unknown language: the better of the two glossaries (German first on ties).
        best = None
        for lang in self.glossary.languages:
            result = self._translate(source, lang)
            if best is None or result.coverage > best.coverage:
                best = result
        return best if best is not None else Translation(source.strip(), 0.0, ())

    def _english(self, source: str) -> Translation:
        """English needs no translation, but German/Swedish words in it were not translated
        either (a mixed report, or a misidentified one): they lower the coverage."""
        words = [t for t in tokenize(source, self.glossary.fold_map) if t.kind == "word"]
        foreign = tuple(t.surface for t in words if t.norm in self.glossary.foreign_words)
        coverage = 1.0 - len(foreign) / len(words) if foreign else 1.0
        return Translation(normalise_english(source, self.glossary), coverage, foreign)

    # -- matching -----------------------------------------------------------------------------
    def _known(self, norm: str, rules: LanguageRules) -> bool:
        return norm in rules.vocabulary or norm in self.glossary.neutral or norm in self.glossary.en_words

    def _units(self, tokens: list[Token], language: str) -> list[_Unit]:
        rules = self.glossary.languages[language]
        units: list[_Unit] = []
        last_word = max((i for i, t in enumerate(tokens) if t.kind != "punct"), default=-1)
        for index, tok in enumerate(tokens):
            if tok.kind == "punct":
                continue
            if index == last_word and self._is_cut_off(tok.norm, rules):
                units.append(_Unit(tok.norm, index))  # left for `_complete`
                continue
            if tok.kind == "word" and not self._known(tok.norm, rules):
                parts = self._correct(tok.norm, language)
                if parts:
                    units.extend(_Unit(p, index) for p in parts)
                    continue
            units.append(_Unit(tok.norm, index))
        return units

    def _is_cut_off(self, norm: str, rules: LanguageRules) -> bool:
        """Whether an unknown final word is the start of a glossary word (a truncated report)."""
        if norm in rules.vocabulary or norm[:1].isdigit():
            return False
        vocab = self._sorted_vocab(rules)
        k = bisect.bisect_left(vocab, norm)
        return k < len(vocab) and vocab[k].startswith(norm)

    def _sorted_vocab(self, rules: LanguageRules) -> list[str]:
        key = id(rules)
        if key not in self._vocab_lists:
            self._vocab_lists[key] = sorted(rules.vocabulary)
        return self._vocab_lists[key]

    def _match(self, norms: list[str], i: int, rules: LanguageRules) -> tuple[Rule, int] | None:
        n = len(norms)
        exact = None
        for length in range(min(rules.max_len, n - i), 0, -1):
            rule = rules.rules.get(tuple(norms[i : i + length]))
            if rule is not None:
                exact = (rule, length)
                break
        if exact is not None and i + exact[1] == n:
            return exact
        completed = self._complete(norms[i:], rules) if n - i <= rules.max_len else None
        return completed or exact

    def _complete(self, window: list[str], rules: LanguageRules) -> tuple[Rule, int] | None:
        """Complete a report cut off mid-phrase (`4.46 unbestätigter ber`), if unambiguous."""
        last = window[-1]
        if last[0].isdigit() or (len(window) == 1 and len(last) < _MIN_TRUNCATED):
            return None
        # Keys that continue the window: the last source word is a prefix of the key's word at
        # that position (a cut-off word), or equal to it with more key words following.
        keys = [
            key
            for token, key in rules.prefixes.get(tuple(window[:-1]), ())
            if token.startswith(last) and (token != last or len(key) > len(window))
        ]
        # Prefer completing only the cut word (`t abn` -> `t abnorm`/`t abnormal`, one meaning)
        # over inventing further words; invent them only when no same-length key fits.
        same_length = [k for k in keys if len(k) == len(window)]
        for group in (same_length, keys):
            candidates = {rules.rules[k] for k in group}
            if len({(r.role, r.english) for r in candidates}) == 1:
                return min(candidates, key=lambda r: (r.role, r.english)), len(window)
            if candidates:
                break
        if len(window) == 1 and last not in rules.vocabulary:
            # No unique phrase: complete the cut-off word alone if all its completions that are
            # words mean the same (`inferola` -> inferolateral/-e/-er/-en: "inferolateral").
            words = {
                rules.rules[key]
                for token, key in rules.prefixes.get((), ())
                if len(key) == 1 and token.startswith(last) and rules.rules[key].role == "word"
            }
            if len({r.english for r in words}) == 1:
                return min(words, key=lambda r: r.english), 1
        return None

    # -- typo / compound correction -----------------------------------------------------------
    def _correct_uncached(self, norm: str, language: str) -> tuple[str, ...] | None:
        """Map an unknown word to glossary words: a one-edit typo, a compound, a two-edit typo."""
        rules = self.glossary.languages[language]
        if len(norm) > _MAX_REPAIR:
            return None  # no ECG word is this long; and repair cost grows with length
        if len(norm) >= 5:
            hit = self._fuzzy(norm, language, 1)
            if hit:
                return (hit,)
        split = self._split_compound(norm, rules)
        if split:
            return split
        if len(norm) >= 9:
            hit = self._fuzzy(norm, language, 2)
            if hit:
                return (hit,)
        return None

    def _split_compound(self, norm: str, rules: LanguageRules) -> tuple[str, ...] | None:
        """`vorderwandinfarkt` -> (`vorderwand`, `infarkt`); parts of >= 3 letters, a linking
        `s` allowed (`vorhofs` + `ueberlastung`)."""
        vocab = rules.vocabulary

        def parts(rest: str, depth: int) -> tuple[str, ...] | None:
            if rest in vocab and len(rest) >= 3:
                return (rest,)
            if depth == 0:
                return None
            for cut in range(len(rest) - 3, 2, -1):  # longest head first
                head = rest[:cut]
                if head not in vocab:
                    continue
                tail = rest[cut:]
                for t in (tail, tail[1:] if tail.startswith("s") else None):
                    if t:
                        found = parts(t, depth - 1)
                        if found:
                            return (head, *found)
            return None

        found = parts(norm, 2)
        if found or len(norm) > 8:
            return found
        # Short run-together tokens of a lead or wave name and a word: `ini` (in I), `qin`
        # (Q in), `iavr` (I aVR), `inv` (in V).
        neutral = self.glossary.neutral

        def lead_or_wave(part: str) -> bool:
            return part in neutral and (len(part) > 1 or part in _SPLIT_LETTERS)

        for cut in range(1, len(norm)):
            head, tail = norm[:cut], norm[cut:]
            if lead_or_wave(head) and lead_or_wave(tail) and len(norm) > 2:
                return (head, tail)  # `iiiavf`: III aVF; not `qq`
            if len(norm) > 5:
                continue
            if all(lead_or_wave(p) or (p in vocab and len(p) >= 2) for p in (head, tail)):
                if lead_or_wave(head) or lead_or_wave(tail):
                    return (head, tail)
        return None

    def _delete_index(self, language: str) -> dict[str, list[str]]:
        """SymSpell-style index: every vocabulary word under each of its 1- and 2-deletions."""
        if language not in self._deletes:
            index: dict[str, list[str]] = {}
            for word in sorted(self.glossary.languages[language].vocabulary):
                if len(word) < 4:
                    continue
                for variant in _deletions(word, 2 if len(word) >= 8 else 1):
                    index.setdefault(variant, []).append(word)
            self._deletes[language] = index
        return self._deletes[language]

    def _fuzzy(self, norm: str, language: str, max_distance: int) -> str | None:
        index = self._delete_index(language)
        candidates: set[str] = set()
        for variant in _deletions(norm, max_distance):
            candidates.update(index.get(variant, ()))
        best: dict[int, set[str]] = {}
        for cand in candidates:
            d = _edit_distance(norm, cand, max_distance)
            if d <= max_distance:
                best.setdefault(d, set()).add(cand)
        if not best:
            return None
        closest = sorted(best[min(best)])
        if len(closest) == 1:
            return closest[0]
        # Several equally close words: accept them only if they are one word in different
        # inflections (same single-word meaning, or a shared stem of >= 8 letters).
        rules = self.glossary.languages[language].rules
        meanings = {getattr(rules.get((c,)), "english", None) for c in closest}
        if len(meanings) == 1 and None not in meanings:
            return closest[0]
        if len(_common_prefix(closest)) >= 8:
            return closest[0]
        return None

    # -- assembly -----------------------------------------------------------------------------
    def _translate(self, source: str, language: str) -> Translation:
        rules = self.glossary.languages[language]
        tokens = tokenize(source, self.glossary.fold_map)
        units = self._units(tokens, language)
        norms = [u.norm for u in units]
        out = _Sentences()
        parts_total: dict[int, int] = {}
        parts_done: dict[int, int] = {}
        for u in units:
            parts_total[u.token] = parts_total.get(u.token, 0) + 1
        prev_end, end = [], 0  # end offset of the previous non-punctuation token
        for t in tokens:
            prev_end.append(end)
            if t.kind != "punct":
                end = t.end
        i = 0
        while i < len(units):
            unit = units[i]
            tok = tokens[unit.token]
            match = self._match(norms, i, rules)
            if match is not None:
                rule, length = match
                out.add(rule)
                for u in units[i : i + length]:
                    parts_done[u.token] = parts_done.get(u.token, 0) + 1
                i += length
                continue
            gap = source[prev_end[unit.token] : tok.start]
            if tok.kind == "num":
                out.neutral(tok.surface, gap)
            elif unit.norm in self.glossary.neutral:
                out.neutral(self.glossary.neutral[unit.norm], gap)
                parts_done[unit.token] = parts_done.get(unit.token, 0) + 1
            elif unit.norm in self.glossary.en_words:
                out.word(tok.surface.lower())
                parts_done[unit.token] = parts_done.get(unit.token, 0) + 1
            else:
                out.word(tok.surface)
            i += 1
        words = [idx for idx, t in enumerate(tokens) if t.kind == "word"]
        untranslated = tuple(
            tokens[idx].surface for idx in words if parts_done.get(idx, 0) < parts_total[idx]
        )
        coverage = 1.0 if not words else (len(words) - len(untranslated)) / len(words)
        return Translation(out.text(), coverage, untranslated)


def _common_prefix(words: Sequence[str]) -> str:
    first, last = min(words), max(words)
    k = 0
    while k < min(len(first), len(last)) and first[k] == last[k]:
        k += 1
    return first[:k]


def _deletions(word: str, distance: int) -> set[str]:
    """All strings obtained by deleting up to `distance` characters from `word`."""
    found = {word}
    frontier = {word}
    for _ in range(distance):
        frontier = {w[:k] + w[k + 1 :] for w in frontier for k in range(len(w))}
        found |= frontier
    return found


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (transpositions count 1), early exit above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


class MarianTranslator:
    """Glossary first; reports it cannot fully cover go whole through a local MarianMT model."""

    name = "marian"

    def __init__(self, model_path: str | Path, glossary: Glossary | None = None):
        path = Path(model_path).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise UserError(
                "no MarianMT model folder (with config.json) here",
                path,
                "pass --translator-model a local folder, e.g. a saved Helsinki-NLP/opus-mt-de-en",
            )
        try:
            import transformers
        except ImportError as exc:
            raise UserError(
                "--translator marian needs the transformers package",
                fix="pip install transformers sentencepiece",
            ) from exc
        try:
            self._tokenizer = transformers.MarianTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = transformers.MarianMTModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, ImportError) as exc:
            raise UserError(
                f"cannot load a MarianMT model ({exc})".replace("\n", " "),
                path,
                "pass a folder saved with MarianMTModel.save_pretrained (plus sentencepiece)",
            ) from exc
        self._model.eval()
        self._glossary = GlossaryTranslator(glossary)
        self.version = f"{path.resolve()} (glossary {self._glossary.version})"

    def translate(self, text: str, language: str) -> Translation:
        first = self._glossary.translate(text, language)
        if language == "en" or not first.untranslated:
            return first
        source, _ = split_reviewer_edit(text)
        batch = self._tokenizer([source.strip()], return_tensors="pt", truncation=True)
        output = self._model.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=256)
        english = self._tokenizer.decode(output[0], skip_special_tokens=True)
        return Translation(normalise_english(english, self._glossary.glossary), 1.0, ())


def get_translator(name: str = "glossary", model_path: str | None = None) -> Translator:
    """The translator the recipe / CLI names (``--translator``, ``--translator-model``)."""
    if name == "glossary":
        if model_path is not None:
            raise UserError(
                "--translator-model is only used by --translator marian",
                fix="drop --translator-model or add --translator marian",
            )
        return GlossaryTranslator()
    if name == "marian":
        if not model_path:
            raise UserError(
                "--translator marian needs a local model folder",
                fix="add --translator-model PATH (e.g. a saved Helsinki-NLP/opus-mt-de-en)",
            )
        return MarianTranslator(model_path)
    raise UserError(
        f"unknown translator {name!r}",
        fix=f"use --translator {' or --translator '.join(TRANSLATORS)}",
    )
