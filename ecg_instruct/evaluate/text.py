"""Text as the metrics see it: no chat tags, then pycocoevalcap's PTB tokens without punctuation.

Tokenisation follows pycocoevalcap exactly (``ptb_tokenizer``: Stanford PTBTokenizer 3.4.1 with
``-lowerCase``, then its punctuation list removed), so brackets survive as ``-lrb-``/``-rrb-``
and clitics split, as in every captioning paper's numbers. Scoring text with the chat tags left
in (as the MEIT reference code did) inflates every n-gram metric.
"""

from __future__ import annotations

import re

from ecg_instruct.evaluate.ptb_tokenizer import COCO_PUNCTUATIONS, coco_tokens

CHAT_TAG = re.compile(r"<\|[a-z_]+\|>|</?s>|<ecg>|<pad>|<unk>")
PUNCTUATION = COCO_PUNCTUATIONS  # kept for importers of the old name
TOKENIZER = (
    "pycocoevalcap PTBTokenizer rules (Stanford PTBTokenizer 3.4.1 -preserveLines -lowerCase, "
    "pycocoevalcap PUNCTUATIONS removed), Python reimplementation "
    "ecg_instruct.evaluate.ptb_tokenizer; chat tags removed first"
)


def clean_report(text: str) -> str:
    """Generated or reference text without chat tags and with single spaces."""
    return " ".join(CHAT_TAG.sub(" ", text).split())


def metric_tokens(text: str) -> list[str]:
    """Tokens the metrics compare: pycocoevalcap's PTB tokens, punctuation removed."""
    return coco_tokens(clean_report(text))
