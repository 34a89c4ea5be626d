"""pycocoevalcap's tokenisation (Stanford PTBTokenizer 3.4.1, ``-preserveLines -lowerCase``) in Python.

Every captioning paper scores text tokenised by pycocoevalcap's ``PTBTokenizer``, which runs the
Java class ``edu.stanford.nlp.process.PTBTokenizer`` and then drops its punctuation tokens. A
different tokeniser moves the scores (a simplified one moved BLEU-4 of a small split from 0.476
to 0.518), so to be comparable we reproduce its rules, measured against the jar itself:

- lower case; brackets become ``-lrb-``/``-rrb-``, ``-lsb-``/``-rsb-``, ``-lcb-``/``-rcb-``;
  pycocoevalcap's punctuation list is case-sensitive (``-LRB-``), so after lower-casing the
  bracket tokens are *kept*: ``QRS(T)`` -> ``qrs -lrb- t -rrb-``;
- clitics split off: ``patient's`` -> ``patient 's``, ``don't`` -> ``do n't``, ``cannot`` ->
  ``can not``;
- numbers keep their sign, decimals and thousands: ``-30``, ``+5``, ``0.12``, ``1,000``, ``3:1``;
  a decimal glued to a unit splits (``0.12s`` -> ``0.12 s``), an integer does not (``10ms``);
- hyphen and slash compounds stay one token (``st-t``, ``v1-v3``, ``i/ii``); a word may contain
  ``.letter`` (``i.grades``); ``e.g.``, single letters with a period (``s.``) and PTB's list of
  abbreviations (``etc.``, ``vs.``, ``st.``, ...) keep their period, other words lose it;
- ``"`` opens (````) before a letter or digit and closes (``''``) otherwise; 2+ hyphens, en and
  em dashes become ``--``; 3+ periods ``...``; ``?!`` runs stay together.

``tests/evaluate/test_ptb_tokenizer.py`` checks this module token for token against the jar on
every report of the real PTB-XL excerpt and on text full of brackets, clitics, numbers and
hyphens. Known divergences (none seen in ECG reports): SGML tags, e-mail addresses and URLs,
``rock'n'roll``-style infixes, and number-hyphen-number-dot chains such as ``0.5-1.0``.
"""

from __future__ import annotations

import re

#: pycocoevalcap's PUNCTUATIONS, verbatim (note: upper-case bracket tokens, so lower-cased ones stay)
COCO_PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
     "...", ";"]
)  # fmt: skip

# Abbreviations PTBTokenizer 3.4.1 keeps with their period (probed against the jar; "no.", "ref.",
# "approx.", "hr.", "min." and "max." are NOT on its list).
_ABBREVIATIONS = (
    "mr|mrs|ms|dr|prof|jr|sr|st|inc|co|corp|ltd|vs|etc|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov"
    "|dec|cf|al|gen|col|lt|mt|ft|sen|rep|gov|bros|mon|tue|wed|thu|fri|ave|blvd|rd|dept|univ|est"
)
_LETTER = r"[^\W\d_]"
_ALNUM = r"[^\W_]"
_WORD = rf"(?:{_LETTER}{_ALNUM}*(?:\.{_LETTER}{_ALNUM}*)*|{_ALNUM}+)(?:[-/]{_ALNUM}+)*"
# a comma list joined by a hyphen stays one token in PTBTokenizer: "i,avl,v4-5"
_LEAD_LIST = rf"{_ALNUM}+(?:,{_ALNUM}+)*(?:-{_ALNUM}+)+"
_NUMBER = r"[-+]?(?:\d+|[.,:]\d+)(?:[.,:]\d+)*(?:-\d+)*"
_ACRONYM = rf"(?:{_LETTER}\.){{2,}}|{_LETTER}\.(?!{_ALNUM})|(?:{_ABBREVIATIONS})\.(?!{_ALNUM})"
_CANDIDATES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        _ACRONYM,
        rf"{_LETTER}+\.(?=,)",  # a word whose period is followed by a comma keeps it ("inf.,")
        _WORD,
        _LEAD_LIST,
        rf"[oO]'{_LETTER}+",
        r"[cCfF]#",
        _NUMBER,
        rf"[#@]{_LETTER}{_ALNUM}*",
        r"n't(?![^\W_])",
        r"'(?:s|m|d|re|ve|ll)(?![^\W_])",
        r"'t(?=is(?![^\W_]))",  # 'tis -> 't is
        r"\.{3,}|…",
        r"-{2,}|[–—]",
        r"[?!]+",
        r"``|''",
        r"&amp;",
        r".",
    )
]
_SPLIT_BEFORE_NT = re.compile(r"(?<=[^\W_])(?=n't(?![^\W_]))", re.IGNORECASE)
_COMPOUNDS = re.compile(r"\b(can)(not)\b|\b(gon|got|wan)(na|ta)\b|\b(lem|gim)(me)\b", re.IGNORECASE)
_FRACTIONS = {"½": "1/2", "¼": "1/4", "¾": "3/4", "⅓": "1/3", "⅔": "2/3"}
_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_SINGLE_MAP = {"“": "``", "”": "''", "«": "``", "»": "''", "‘": "`", "’": "'", "&amp;": "&"}


def _split_compounds(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        parts = [g for g in m.groups() if g]
        return " ".join(parts)

    return _COMPOUNDS.sub(repl, text)


def _chunk_tokens(chunk: str) -> list[str]:
    """Tokens of one whitespace-free chunk: the longest candidate at each position wins."""
    chunk = _SPLIT_BEFORE_NT.sub(" ", chunk)
    out: list[str] = []
    for part in chunk.split(" "):
        pos = 0
        while pos < len(part):
            best = ""
            for pattern in _CANDIDATES:
                m = pattern.match(part, pos)
                if m and len(m.group(0)) > len(best):
                    best = m.group(0)
            out.append(_normalise(best, part, pos))
            pos += len(best)
    return out


def _normalise(token: str, chunk: str, pos: int) -> str:
    if token in _BRACKETS:
        return _BRACKETS[token]
    if token in _SINGLE_MAP:
        return _SINGLE_MAP[token]
    if token in _FRACTIONS:
        return _FRACTIONS[token]
    if token == "…" or (len(token) >= 3 and set(token) == {"."}):
        return "..."
    if len(token) >= 2 and set(token) == {"-"} or token in ("–", "—"):
        return "--"
    if token == '"':
        following = chunk[pos + 1 : pos + 2]
        return "``" if following and re.match(r"[^\W_]", following) else "''"
    if token == "'":
        opens = pos == 0 or not re.match(r"[^\W_]", chunk[pos - 1])
        return "`" if opens and "'" in chunk[pos + 1 :] else "'"
    return token


def ptb_tokenize(text: str) -> list[str]:
    """PTBTokenizer 3.4.1 tokens of one line, lower-cased (punctuation still included)."""
    text = _split_compounds(text.replace("\n", " "))
    tokens: list[str] = []
    for chunk in text.split():
        tokens.extend(_chunk_tokens(chunk))
    return [t.lower() for t in tokens]


def coco_tokens(text: str) -> list[str]:
    """What pycocoevalcap scores: PTB tokens without its punctuation tokens."""
    return [t for t in ptb_tokenize(text) if t not in COCO_PUNCTUATIONS]
