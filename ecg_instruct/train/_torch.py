"""Lazy torch import with a one-line fix for users who installed without the extra."""

from __future__ import annotations

from types import ModuleType

from ecg_instruct.errors import UserError


def require_torch() -> ModuleType:
    """Import torch, or tell the user which extra to install."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError(
            "PyTorch is not installed", fix="pip install 'ecg-instruct[train]'"
        ) from exc
    return torch
