"""Prompts for a pretrained LM, written with the tokenizer's own chat template.

An instruction-tuned model has learned its template (SmolLM2: ``<|im_start|>user ... <|im_end|>``);
our own tags would be new, untrained tokens. So with ``--model`` the system and user turns go
through ``apply_chat_template(..., add_generation_prompt=True)``, the target is the report followed
by the template's end-of-turn token (found by rendering a turn and reading what follows it), and
the loss covers exactly those tokens. ``<ecg>`` (one per ECG) and ``<pad>`` are the only added
tokens; a model without a chat template falls back to the built-in format (``ChatEncoder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ecg_instruct.errors import UserError
from ecg_instruct.train.text import ECG, MAX_ECGS, PAD, SPECIAL_TOKENS, ChatEncoder, report_ids

HF_TOKENIZER_DIR = "hf_tokenizer"  # inside a run folder
_MARK = "\u2063ECGREPORTEND\u2063"  # renders a turn to find the text the template puts after it


def chat_messages(messages: Sequence[dict]) -> list[dict]:
    """System and user turns of a published row, with one ``<ecg>`` per ECG (one, or two for
    an ECG-QA comparison) in the user turns."""
    out = []
    for m in messages:
        if m["role"] == "assistant":
            break
        if m["role"] not in ("system", "user"):
            raise UserError(f"unexpected chat role {m['role']!r} in messages")
        out.append({"role": m["role"], "content": m["content"].strip()})
    n_ecg = sum(m["content"].count(ECG) for m in out)
    if n_ecg > MAX_ECGS:
        raise UserError(f"a prompt holds {n_ecg} {ECG} placeholders; the contract is one per "
                        f"ECG, at most {MAX_ECGS}")
    if n_ecg == 0:  # hand-made data without the placeholder: the ECG opens the first user turn
        first_user = next((m for m in out if m["role"] == "user"), None)
        if first_user is None:
            out.append(first_user := {"role": "user", "content": ""})
        first_user["content"] = f"{ECG}\n{first_user['content']}"
    return out


class TemplateChatEncoder:
    """``ChatEncoder``'s interface over a Hugging Face tokenizer with a chat template."""

    def __init__(self, tok) -> None:
        self.tok = tok
        self.ecg_id = tok.convert_tokens_to_ids(ECG)
        self.pad_id = tok.convert_tokens_to_ids(PAD)
        if self.ecg_id is None or self.pad_id is None or self.ecg_id == tok.unk_token_id:
            raise UserError(f"tokenizer lacks the {ECG} / {PAD} tokens")
        self.eos_id = self._end_of_turn_id()
        self.special_ids = set(tok.all_special_ids) | {self.ecg_id, self.pad_id, self.eos_id}

    def _end_of_turn_id(self) -> int:
        turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _MARK}]
        text = self.tok.apply_chat_template(turn, tokenize=False)
        after = text.split(_MARK, 1)[1] if _MARK in text else ""
        ids = self.tok.encode(after, add_special_tokens=False) if after.strip() else []
        eot = ids[0] if ids else self.tok.eos_token_id
        if eot is None:
            raise UserError("the chat template ends a turn with no token and there is no eos token")
        return int(eot)

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def prompt_string(self, messages: Sequence[dict]) -> str:
        return self.tok.apply_chat_template(
            chat_messages(messages), tokenize=False, add_generation_prompt=True
        )

    def encode_prompts(self, messages: Sequence[Sequence[dict]]) -> list[list[int]]:
        texts = [self.prompt_string(m) for m in messages]
        # the template already holds any BOS it wants, so no special tokens are added here
        return [list(x) for x in self.tok(texts, add_special_tokens=False)["input_ids"]]

    def encode_reports(self, reports: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Report ids + the end-of-turn token; a cut report gets none (as ``ChatEncoder``)."""
        ids = self.tok(list(reports), add_special_tokens=False)["input_ids"]
        return [(list(x) + [self.eos_id])[:max_tokens] for x in ids]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(report_ids(ids, self.eos_id, self.special_ids),
                               skip_special_tokens=True).strip()


def prepare_tokenizer(tok, out: Path) -> None:
    """Save the LM's tokenizer in the run: with ``<ecg>``/``<pad>`` added if it has a chat
    template (``hf_tokenizer/``), else as ``tokenizer.json`` with all our chat tags."""
    if getattr(tok, "chat_template", None):
        tok.add_special_tokens(
            {"additional_special_tokens": [ECG, PAD]}, replace_extra_special_tokens=False
        )
        tok.save_pretrained(out / HF_TOKENIZER_DIR)
    else:
        backend = tok.backend_tokenizer
        backend.add_special_tokens(SPECIAL_TOKENS)
        backend.save(str(out / "tokenizer.json"))


def load_encoder(run_dir: Path):
    """The encoder a run was trained with: template-based or the built-in chat format."""
    run_dir = Path(run_dir)
    if (run_dir / HF_TOKENIZER_DIR).is_dir():
        from ecg_instruct.train.hf_load import transformers_module

        tok = transformers_module().AutoTokenizer.from_pretrained(
            str(run_dir / HF_TOKENIZER_DIR), local_files_only=True
        )
        return TemplateChatEncoder(tok)
    from ecg_instruct.train.text import load_tokenizer

    return ChatEncoder(load_tokenizer(run_dir / "tokenizer.json"))
