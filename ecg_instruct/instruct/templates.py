"""Prompt templates: discovery, front matter and sandboxed rendering.

A template is a Jinja2 file whose first lines are a front-matter block inside a Jinja comment, so
the file stays a valid template:

    {#---
    id: report/plain-01
    task: report
    requires: [report]
    ---#}
    Write the diagnostic report for this ECG: {{ ecg }}

Templates are user input (`--templates DIR`), so they render in Jinja's sandbox with
`StrictUndefined`: a typo in a variable name is an error, never a blank in a training example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from ecg_instruct.errors import UserError

_FRONT_MATTER = re.compile(r"\A\{#---\s*\n(.*?)\n---#\}\s*\n?", re.DOTALL)
BUNDLED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    task: str
    path: Path
    source: str
    requires: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
        trim_blocks=True, lstrip_blocks=True,
    )


def parse_template(path: Path, root: Path) -> PromptTemplate:
    """Read one template file and its front matter."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise UserError(f"cannot read template ({exc})", path=path,
                        fix="templates must be UTF-8 text files") from None
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise UserError("missing front matter", path=path,
                        fix="start the file with a `{#---` ... `---#}` block giving id and task")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        meta = None
    if not isinstance(meta, dict):
        raise UserError("front matter is not a YAML mapping", path=path,
                        fix="write `id: ...` and `task: ...` lines between {#--- and ---#}")
    relative = path.relative_to(root).with_suffix("")
    template_id = str(meta.get("id") or relative.as_posix())
    task = str(meta.get("task") or relative.parts[0])
    requires = meta.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise UserError("`requires` must be a list of field names", path=path,
                        fix="e.g. requires: [report, heart_rate]")
    body = text[match.end():]
    try:
        _environment().parse(body)
    except TemplateError as exc:
        raise UserError(f"invalid Jinja2 ({exc})", path=path, fix="fix the template syntax") from None
    return PromptTemplate(template_id, task, path, body, tuple(requires), meta)


class TemplateLibrary:
    """All templates under one or more folders, by task, in a stable order."""

    def __init__(self, folders: list[Path] | None = None):
        self.folders = [Path(f) for f in (folders or [BUNDLED_TEMPLATES])]
        self.templates: dict[str, PromptTemplate] = {}
        for folder in self.folders:
            if not folder.is_dir():
                raise UserError("template folder not found", path=folder,
                                fix="pass --templates DIR pointing at a folder of *.j2 files")
            for path in sorted(folder.rglob("*.j2")):
                if path.name.startswith("card"):
                    continue
                template = parse_template(path, folder)
                self.templates[template.id] = template  # later folders override bundled ids
        self._env = _environment()
        self._compiled = {tid: self._env.from_string(t.source) for tid, t in self.templates.items()}

    def for_task(self, task: str) -> list[PromptTemplate]:
        return [t for tid, t in sorted(self.templates.items()) if t.task == task]

    def render(self, template_id: str, context: dict[str, Any]) -> str:
        """Render a template; an undefined variable is a UserError naming the template file."""
        template = self.templates[template_id]
        try:
            return self._compiled[template_id].render(**context).strip()
        except TemplateError as exc:
            raise UserError(f"cannot render template {template_id} ({exc})", path=template.path,
                            fix="use only the variables listed in docs/templates.md") from None
