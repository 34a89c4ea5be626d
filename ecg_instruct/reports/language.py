"""Language identification for short clinical ECG phrases (de / en / sv / other).

General-purpose detectors fail on PTB-XL's telegraphic reports (`sinusrhythmus lagetyp normal`,
`ekg normal`): they have too few function words. This is a domain keyword model instead: it
counts words that belong to exactly one of the German, Swedish and English ECG vocabularies. The
German and Swedish vocabularies are the glossary's own keys (so a word the translator knows is a
word the identifier knows), the English one is the glossary's `en_words` list. Words shared by
several languages (`normal`, `inferior`, `block`, lead names) are ignored as uninformative; the
spelling ECG/EKG is a weak hint. Offline and deterministic; 87 hand-labelled real reports are
all identified correctly (tests/reports/test_language.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ecg_instruct.reports.glossary import Glossary, default_glossary, tokenize
from ecg_instruct.reports.translate import split_reviewer_edit

LANGUAGE_CODES = ("de", "en", "sv", "other")
_PREFERENCE = ("de", "en", "sv")  # tie-break: PTB-XL's most frequent language first
# Letters only one candidate language uses: evidence even when the word itself is unknown.
_LETTER_HINTS = {"ß": "de", "å": "sv"}
# Language-neutral for translation, but spelled differently: English writes ECG, German and
# Swedish write EKG (half a point each: it tells English apart, not German from Swedish).
_WORD_HINTS = {"ecg": {"en": 1.0}, "ekg": {"de": 0.5, "sv": 0.5}}


@dataclass(frozen=True)
class _Lexicons:
    words: dict[str, frozenset[str]]


def _build(glossary: Glossary) -> _Lexicons:
    de = glossary.languages["de"].vocabulary
    sv = glossary.languages["sv"].vocabulary
    en = glossary.en_words
    neutral = frozenset(glossary.neutral)
    return _Lexicons(
        words={
            "de": frozenset(de - sv - en - neutral),
            "sv": frozenset(sv - de - en - neutral),
            "en": frozenset(en - de - sv - neutral),
        }
    )


_CACHE: dict[int, tuple[Glossary, _Lexicons]] = {}


def _lexicons(glossary: Glossary) -> _Lexicons:
    """Lexicons per glossary object (the glossary is kept alive so its id stays unique)."""
    entry = _CACHE.get(id(glossary))
    if entry is None or entry[0] is not glossary:
        entry = _CACHE[id(glossary)] = (glossary, _build(glossary))
    return entry[1]


def language_scores(text: str, glossary: Glossary | None = None) -> dict[str, float]:
    """Number of language-specific words per candidate language (for inspection and tests)."""
    glossary = glossary or default_glossary()
    lex = _lexicons(glossary)
    report, _ = split_reviewer_edit(text)
    scores = dict.fromkeys(_PREFERENCE, 0.0)
    for tok in tokenize(report, glossary.fold_map):
        if tok.kind != "word":
            continue
        for lang, weight in _WORD_HINTS.get(tok.norm, {}).items():
            scores[lang] += weight
        for lang, words in lex.words.items():
            if tok.norm in words:
                scores[lang] += 1
    lowered = report.lower()
    for letter, lang in _LETTER_HINTS.items():
        if letter in lowered:
            scores[lang] += 1
    return scores


def detect_language(text: str) -> str:
    """``"de"``, ``"en"``, ``"sv"`` or ``"other"`` (also for empty or unrecognisable text).

    The language with most language-specific words wins; ties go to German, then English
    (PTB-XL's frequencies). A reviewer's ``Edit: ...`` note is ignored.
    """
    if not isinstance(text, str) or not text.strip():
        return "other"
    scores = language_scores(text)
    best = max(_PREFERENCE, key=lambda lang: (scores[lang], -_PREFERENCE.index(lang)))
    return best if scores[best] > 0 else "other"
