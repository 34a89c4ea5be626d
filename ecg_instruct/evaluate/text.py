"""Text as the metrics see it: no chat tags, lower case, PTB-style tokens, no punctuation.

This mirrors what pycocoevalcap does before scoring (Stanford PTBTokenizer with ``-lowerCase``,
then dropping its punctuation tokens) in pure Python, so no Java is needed. Scoring text with
the chat tags left in (as the MEIT reference code did) inflates every n-gram metric.
"""

from __future__ import annotations

import re

CHAT_TAG = re.compile(r"<\|[a-z_]+\|>|</?s>|<ecg>|<pad>|<unk>")
# A word, possibly with inner hyphens, dots, slashes or apostrophes (st-t, 0.12, i/ii, patient's),
# or any single non-space character.
TOKEN = re.compile(r"\w+(?:[-'./]\w+)*|[^\w\s]")
# pycocoevalcap's PUNCTUATIONS after PTB escaping (-LRB- is "(", `` and '' are quotes).
PUNCTUATION = {
    "''", "'", "``", "`", '"', "(", ")", "{", "}", "[", "]",
    ".", "?", "!", ",", ":", "-", "--", "...", ";",
}  # fmt: skip


def clean_report(text: str) -> str:
    """Generated or reference text without chat tags and with single spaces."""
    return " ".join(CHAT_TAG.sub(" ", text).split())


def metric_tokens(text: str) -> list[str]:
    """Tokens the metrics compare (lower-cased, punctuation removed)."""
    return [t for t in TOKEN.findall(clean_report(text).lower()) if t not in PUNCTUATION]
