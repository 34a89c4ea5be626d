"""Where the bundled templates and recipes are.

They are edited in one place, the checkout's top-level `templates/` and `pipelines/` folders.
A wheel ships them inside the package (`ecg_instruct/templates/`, `ecg_instruct/recipes/`, mapped
by setup.py), so an installed `ecg-instruct` finds them from any directory; a checkout used
through `PYTHONPATH` or an editable install has no copy inside the package and reads the
top-level folders beside it.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled_dir(in_package: str, in_checkout: str) -> Path:
    """The installed package-data folder `in_package`, else the checkout's `in_checkout`."""
    installed = _PACKAGE / in_package
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / in_checkout


#: The prompt templates: `<task>/*.j2` and the dataset card `card.md.j2`.
TEMPLATES_DIR = bundled_dir("templates", "templates")
#: The recipes `--recipe NAME` resolves (`meit` = `RECIPES_DIR / "meit.yaml"`).
RECIPES_DIR = bundled_dir("recipes", "pipelines")
