"""Load the versioned report glossary (a data file) into fast lookup tables.

The glossary (`ecg_instruct/data/glossary_de_en.yaml`) is the single source of the German and
Swedish ECG vocabulary: the translator matches its phrases, the language identifier counts its
words. Keeping the vocabulary in data rather than code means a clinician can review and extend it
without reading Python, and the dataset card can cite its `version`.

Normalisation is shared by both sides of every lookup (`fold`, `tokenize`), so a key written with
umlauts matches source text written with `ae/oe/ue` and upper-case umlauts (`ischÄmie`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import yaml

from ecg_instruct.data_files import read_data_file
from ecg_instruct.errors import UserError

GLOSSARY_FILE = "glossary_de_en.yaml"
ROLES = ("sentence", "word", "prefix_prev", "suffix_prev", "prefix_next")
LANGUAGES = ("de", "sv")

# A number or dotted code (`4.46`, `2,5`), a word optionally followed by digits and letters (lead
# names `v1`, `v4r`, `qtc`), or any other single non-space character (punctuation).
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:\d+[^\W\d_]*)?|[^\w\s]|_", re.UNICODE)
_SLOT_RE = re.compile(r"\{(\w+)\}")


class Token(NamedTuple):
    """One source token: `norm` is what is matched, `surface` what the source wrote.

    A NamedTuple rather than a dataclass: tokenising is the translator's hot loop.
    """

    norm: str
    surface: str
    start: int
    end: int
    kind: str  # "word" | "num" | "punct"


@dataclass(frozen=True)
class Rule:
    """What a matched key becomes in English, and how it joins the sentence (see the YAML)."""

    english: str
    role: str


@dataclass
class LanguageRules:
    """Compiled rules of one source language."""

    rules: dict[tuple[str, ...], Rule] = field(default_factory=dict)
    max_len: int = 1
    # (first k-1 tokens of a key) -> [(k-th token, key)], for completing truncated reports.
    prefixes: dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()


@dataclass
class Glossary:
    """The compiled glossary: per-language rules, neutral tokens, English words, version."""

    version: str
    fold_map: dict[str, str]
    neutral: dict[str, str]
    languages: dict[str, LanguageRules]
    en_words: frozenset[str]
    en_spelling: dict[str, str]
    path: str
    en_casing: dict[str, str] = field(default_factory=dict)
    foreign_words: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # German/Swedish glossary words that are not English, neutral or abbreviations (<= 2
        # letters): found in an "English" report, they reveal text passed through untranslated.
        glossary_words = frozenset().union(*(r.vocabulary for r in self.languages.values()))
        english = set(self.en_words) | set(self.neutral)
        for compiled in self.languages.values():  # words the glossary itself writes in English
            for rule in compiled.rules.values():
                english.update(t.norm for t in tokenize(rule.english) if t.kind == "word")
        self.foreign_words = frozenset(
            w for w in glossary_words - english if len(w) > 2 and not w[0].isdigit()
        )
        # Clinical casing for English text: the neutral tokens whose form only changes case
        # (`avf` -> aVF, `qrs` -> QRS), plus EKG -> ECG. Not `s`: "contraction(s)".
        casing = {k: v for k, v in self.neutral.items() if v.lower() == k and k != "s"}
        casing.update({"ekg": "ECG", "ecg": "ECG"})
        self.en_casing = casing


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_DEFAULT_FOLD = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "å": "aa"}


def fold(text: str, fold_map: dict[str, str] | None = None) -> str:
    """Lower-case and fold umlauts to their ASCII spelling; strip other accents.

    `mÖglich`, `möglich` and `moeglich` all become `moeglich`, so one key covers all three.
    """
    return _fold(text, tuple((fold_map or _DEFAULT_FOLD).items()))


@lru_cache(maxsize=131072)
def _fold(text: str, fold_items: tuple[tuple[str, str], ...]) -> str:
    # Cached: report vocabularies are small, so the same words are folded over and over.
    text = text.lower()
    for src, dst in fold_items:
        text = text.replace(src, dst)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text


# Some PTB-XL reports lost `ü` to `#` (`r-s #bergang`, `f#r`): a `#` touching a letter is `ü`.
_BROKEN_UMLAUT_RE = re.compile(r"(?<=[^\W\d_])#|#(?=[^\W\d_])")


def tokenize(text: str, fold_map: dict[str, str] | None = None) -> list[Token]:
    """Split text into word, number and punctuation tokens, keeping source offsets."""
    if "#" in text:
        text = _BROKEN_UMLAUT_RE.sub("ü", text)  # same length: offsets stay valid
    items = tuple((fold_map or _DEFAULT_FOLD).items())
    tokens = []
    for m in _TOKEN_RE.finditer(text):
        surface = m.group()
        first = surface[0]
        kind = "num" if first.isdigit() else ("word" if first.isalpha() else "punct")
        tokens.append(Token(_fold(surface, items), surface, m.start(), m.end(), kind))
    return tokens


def key_tokens(phrase: str, fold_map: dict[str, str] | None = None) -> tuple[str, ...]:
    """The match key of a glossary phrase: its word and number tokens, punctuation dropped."""
    return tuple(t.norm for t in tokenize(phrase, fold_map) if t.kind != "punct")


def _expand(template: str, slots: dict[str, dict]) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield (concrete phrase, {slot: english}) for every slot value and inflection ending."""
    names = _SLOT_RE.findall(template)
    if not names:
        yield template, {}
        return
    if len(names) > 1:
        raise ValueError(f"pattern {template!r}: one slot per pattern")
    name = names[0]
    if name not in slots:
        raise ValueError(f"pattern {template!r}: unknown slot {name!r}")
    slot = slots[name]
    for source, english in slot["values"].items():
        for ending in slot["endings"]:
            yield template.replace("{" + name + "}", f"{source}{ending}"), {"loc": english}


def _compile_language(section: dict, slots: dict, fold_map: dict[str, str], where: str):
    rules: dict[tuple[str, ...], Rule] = {}
    explicit: set[tuple[str, ...]] = set()
    for role in ROLES:
        for phrase, english in (section.get(role) or {}).items():
            if not isinstance(phrase, str) or not isinstance(english, str):
                raise UserError(
                    f"{role}: {phrase!r} -> {english!r} must be strings",
                    where,
                    "quote YAML words such as on, no, yes",
                )
            key = key_tokens(phrase, fold_map)
            if not key:
                raise UserError(f"{role}: empty key {phrase!r}", where)
            if not english and role != "word":
                raise UserError(f"{role}: {phrase!r} has no English (only words may)", where)
            if key in rules:
                raise UserError(f"key {' '.join(key)!r} appears twice ({rules[key].role} and {role})", where)
            rules[key] = Rule(english, role)
            explicit.add(key)
    # Patterns never override an explicit entry: explicit entries are the curated exceptions.
    for role in ROLES:
        for template, english_t in ((section.get("patterns") or {}).get(role) or {}).items():
            for phrase, values in _expand(template, slots):
                key = key_tokens(phrase, fold_map)
                if key in explicit or key in rules:
                    continue
                rules[key] = Rule(english_t.format(**values), role)
    compiled = LanguageRules(rules=rules, max_len=max((len(k) for k in rules), default=1))
    for key in rules:
        for k in range(1, len(key) + 1):
            compiled.prefixes.setdefault(key[: k - 1], []).append((key[k - 1], key))
    compiled.vocabulary = frozenset(t for key in rules for t in key if not t[0].isdigit())
    return compiled


def load_glossary(path: str | Path | None = None) -> Glossary:
    """Read and compile a glossary file (the packaged one by default).

    A malformed file raises `UserError` naming the file, because a user-edited glossary is input.
    """
    where, text = read_data_file(GLOSSARY_FILE, path, "glossary")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {exc}".replace("\n", " "), where) from exc
    if not isinstance(data, dict) or not data.get("version"):
        raise UserError("missing `version:` field", where, 'add e.g. version: "1.0"')
    fold_map = {str(k): str(v) for k, v in (data.get("fold") or _DEFAULT_FOLD).items()}
    slots = data.get("slots") or {}
    slots_by_name = {name: slot for name, slot in slots.items()}
    languages = {
        lang: _compile_language(data.get(lang) or {}, slots_by_name, fold_map, where) for lang in LANGUAGES
    }
    neutral = {fold(str(k), fold_map): str(v) for k, v in (data.get("neutral") or {}).items()}
    en_words = frozenset(fold(w, fold_map) for w in str(data.get("en_words", "")).split())
    en_spelling = {str(k): str(v) for k, v in (data.get("en_spelling") or {}).items()}
    return Glossary(
        version=str(data["version"]),
        fold_map=fold_map,
        neutral=neutral,
        languages=languages,
        en_words=en_words,
        en_spelling=en_spelling,
        path=where,
    )


@lru_cache(maxsize=1)
def default_glossary() -> Glossary:
    """The packaged glossary, compiled once per process."""
    return load_glossary()
