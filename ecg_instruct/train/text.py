"""Chat format and the report tokenizer (trained on the training split, saved with the run).

The prompt the decoder sees is built from the published ``messages`` as::

    <|system|>
    {system content}
    <|user|>
    {user content, containing one <ecg>}
    <|assistant|>
    {report}</s>

``<ecg>`` is a single special token here. In ``prefix`` fusion the collator expands it to the
model's ECG tokens; in ``kv`` fusion it is dropped (the ECG enters every attention layer instead).
Loss is computed only on the report and ``</s>``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from pathlib import Path

from ecg_instruct.errors import UserError

PAD, UNK, EOS = "<pad>", "<unk>", "</s>"
SYSTEM, USER, ASSISTANT, ECG = "<|system|>", "<|user|>", "<|assistant|>", "<ecg>"
SPECIAL_TOKENS = [PAD, UNK, EOS, SYSTEM, USER, ASSISTANT, ECG]
CHAT_TAGS = (SYSTEM, USER, ASSISTANT, EOS, ECG)
#: ECGs one example may hold: one per report, two for ECG-QA's comparison questions (one
#: placeholder each, in order).
MAX_ECGS = 2


def prompt_text(messages: Sequence[dict]) -> str:
    """The prompt string (everything before the report) for one published row."""
    parts: list[str] = []
    n_ecg = 0
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "assistant":
            break
        if role not in ("system", "user"):
            raise UserError(f"unexpected chat role {role!r} in messages")
        n_ecg += content.count(ECG)
        parts.append(f"{SYSTEM if role == 'system' else USER}\n{content.strip()}\n")
    if n_ecg == 0:  # tolerate hand-made data without the placeholder: the ECG goes first
        parts.insert(0, f"{ECG}\n")
    elif n_ecg > MAX_ECGS:
        raise UserError(f"a prompt holds {n_ecg} {ECG} placeholders; the contract is one per "
                        f"ECG, at most {MAX_ECGS}")
    return "".join(parts) + f"{ASSISTANT}\n"


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-pair tokenizer learned from the training split only (no hub download).

    Metaspace + punctuation pre-tokenisation keeps words whole when the vocabulary allows and
    decodes back to the original spacing, so predictions read like the reports they imitate.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()]
    )
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


class ChatEncoder:
    """Turns rows into (prompt ids, report ids) and ids back into clean report text."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        ids = {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise UserError(f"tokenizer lacks special tokens {missing}")
        self.pad_id, self.eos_id, self.ecg_id = ids[PAD], ids[EOS], ids[ECG]
        self.special_ids = set(ids.values())

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode_prompts(self, messages: Sequence[Sequence[dict]]) -> list[list[int]]:
        encs = self.tok.encode_batch([prompt_text(m) for m in messages], add_special_tokens=False)
        return [e.ids for e in encs]

    def encode_reports(self, reports: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Report ids + ``</s>``; a report cut at ``max_tokens`` gets no ``</s>``, so the model
        never learns to stop in the middle of a sentence."""
        encs = self.tok.encode_batch(list(reports), add_special_tokens=False)
        return [(e.ids + [self.eos_id])[:max_tokens] for e in encs]

    def decode(self, ids: Sequence[int]) -> str:
        """Report text up to ``</s>``, with every special token removed."""
        return self.tok.decode(report_ids(ids, self.eos_id, self.special_ids),
                               skip_special_tokens=True).strip()


def report_ids(ids: Sequence[int], eos_id: int, special_ids: Container[int]) -> list[int]:
    """The generated report's token ids: up to the end-of-turn token, special tokens dropped
    (shared by the built-in tokenizer and a Hugging Face LM's, so both decode alike)."""
    out: list[int] = []
    for i in ids:
        if i == eos_id:
            break
        if i not in special_ids:
            out.append(i)
    return out
