"""Prompt templates: discovery, front matter, turns and sandboxed rendering.

A template is a Jinja2 file whose first lines are a front-matter block inside a Jinja comment, so
the file stays a valid template:

    {#---
    id: diagnosis/yesno-01
    task: diagnosis
    requires: [query]
    ---#}
    {{ ecg }}
    Is there evidence of {{ query.description }}?
    {#-- assistant --#}
    {{ query.answer | capitalize }}.

The body is a conversation: the text before the first marker is the first user turn, and
`{#-- assistant --#}` / `{#-- user --#}` lines start the next turns (multi-turn templates simply
have more of them). A template without an assistant turn gets its task's default answer (for
`report`: the record's report), so a report prompt is one line of text.

Templates are user input (`--templates DIR`), so they render in Jinja's sandbox with
`StrictUndefined`, and the rendering context holds only fields the record really has: a template
that uses a field it did not declare in `requires:` fails loudly (naming its file) instead of
putting a blank or "None" into a training example. The sandbox stops access to Python
internals but not a loop that runs for minutes or a `"x" * 50000000`: each rendering is bounded in
time (:data:`MAX_RENDER_SECONDS`, where a timer signal is available) and size
(:data:`MAX_RENDER_CHARS`), and a template over either is a one-line error naming its file.
"""

from __future__ import annotations

import re
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from ecg_instruct.bundled import TEMPLATES_DIR
from ecg_instruct.errors import UserError
from ecg_instruct.instruct.fields import KNOWN_FIELDS, join_and

_FRONT_MATTER = re.compile(r"\A\{#---\s*\n(.*?)\n---#\}\s*\n?", re.DOTALL)
_TURN_MARKER = re.compile(r"^[ \t]*\{#--\s*(user|assistant)\s*--#\}[ \t]*\n?", re.MULTILINE)
#: The checkout's `templates/`, shipped inside the package by a wheel (ecg_instruct.bundled).
BUNDLED_TEMPLATES = TEMPLATES_DIR

#: Answer used when a template of this task has no `{#-- assistant --#}` turn.
DEFAULT_ANSWERS = {"report": "{{ report }}"}
#: Tasks whose templates are not conversations (a single block of text).
SINGLE_TEXT_TASKS = {"system"}


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    task: str
    path: Path
    source: str
    requires: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    turns: tuple[tuple[str, str], ...] = ()
    """(role, Jinja source) in conversation order: user, assistant, user, assistant, ..."""
    description: str = ""


#: Longest rendering of one template on one record, in characters (all turns). A real prompt is a
#: few hundred; the record's report is at most 10,000 (`reports.stage.MAX_REPORT_CHARS`).
MAX_RENDER_CHARS = 100_000
#: Longest time one rendering may take. A real template renders in tens of microseconds.
MAX_RENDER_SECONDS = 1.0


class _RenderTimeout(Exception):
    """Raised inside a rendering by the timer signal once it runs past MAX_RENDER_SECONDS."""


class _BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, plus no `*`/`**` that builds a huge string, list or number in one step
    (its memory would be gone before the size check sees the text)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                        and len(seq) * times > MAX_RENDER_CHARS:
                    raise SecurityError(f"repeating a sequence {times} times exceeds "
                                        f"{MAX_RENDER_CHARS:,} items")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError(f"exponent {right} is too large")
        return super().call_binop(context, operator, left, right)


def _environment() -> SandboxedEnvironment:
    env = _BoundedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["join_and"] = join_and
    return env


def split_turns(body: str, task: str, path: Path) -> tuple[tuple[str, str], ...]:
    """Cut a template body at its turn markers; add the task's default answer if none."""
    if task in SINGLE_TEXT_TASKS:
        return (("system", body),)
    turns: list[tuple[str, str]] = []
    role, start = "user", 0
    for match in _TURN_MARKER.finditer(body):
        turns.append((role, body[start:match.start()]))
        role, start = match.group(1), match.end()
    turns.append((role, body[start:]))
    if turns[-1][0] == "user" and task in DEFAULT_ANSWERS:
        turns.append(("assistant", DEFAULT_ANSWERS[task]))
    expected = ["user", "assistant"] * (len(turns) // 2 + 1)
    if [r for r, _ in turns] != expected[: len(turns)] or turns[-1][0] != "assistant":
        raise UserError(
            "turns must alternate user/assistant, starting with the user and ending with the "
            "assistant", path=path,
            fix="separate turns with `{#-- assistant --#}` and `{#-- user --#}` lines")
    if any(not text.strip() for _, text in turns):
        raise UserError("a turn is empty", path=path, fix="write text in every turn")
    return tuple(turns)


def parse_template(path: Path, root: Path) -> PromptTemplate:
    """Read one template file, its front matter and its turns; validate what can be checked
    without a record (syntax, field names, turn structure)."""
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
        meta_data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        meta_data = None
    if not isinstance(meta_data, dict):
        raise UserError("front matter is not a YAML mapping", path=path,
                        fix="write `id: ...` and `task: ...` lines between {#--- and ---#}")
    relative = path.relative_to(root).with_suffix("")
    template_id = str(meta_data.get("id") or relative.as_posix())
    task = str(meta_data.get("task") or relative.parts[0])
    requires = meta_data.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise UserError("`requires` must be a list of field names", path=path,
                        fix="e.g. requires: [report, heart_rate]")
    unknown = [name for name in requires if name not in KNOWN_FIELDS]
    if unknown:
        raise UserError(f"requires unknown field {unknown[0]!r}", path=path,
                        fix="use the fields listed in docs/templates.md")
    body = text[match.end():]
    env = _environment()
    try:
        used = meta.find_undeclared_variables(env.parse(body))
    except TemplateError as exc:
        raise UserError(f"invalid Jinja2 ({exc})", path=path, fix="fix the template syntax") from None
    unknown_used = sorted(used - set(KNOWN_FIELDS))
    if unknown_used:
        raise UserError(f"uses unknown variable {unknown_used[0]!r}", path=path,
                        fix="use the fields listed in docs/templates.md")
    turns = split_turns(body, task, path)
    return PromptTemplate(template_id, task, path, body, tuple(requires), meta_data, turns,
                          str(meta_data.get("description", "")))


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
        self._by_task: dict[str, list[PromptTemplate]] = {}
        self._env = _environment()
        self._compiled = {
            tid: [(role, self._env.from_string(source)) for role, source in t.turns]
            for tid, t in self.templates.items()
        }

    def tasks(self) -> list[str]:
        return sorted({t.task for t in self.templates.values()})

    def for_task(self, task: str) -> list[PromptTemplate]:
        """Templates of one task in id order (cached: called for every record and task)."""
        if task not in self._by_task:
            self._by_task[task] = [t for _, t in sorted(self.templates.items()) if t.task == task]
        return list(self._by_task[task])

    def render_turns(self, template_id: str, context: dict[str, Any]) -> list[dict[str, str]]:
        """Render every turn, bounded in time and size; any failure is a UserError naming the
        template file, with the fix for that kind of failure."""
        template = self.templates[template_id]
        try:
            with _time_limit(MAX_RENDER_SECONDS):
                return _render_bounded(self._compiled[template_id])(context)
        except _RenderTimeout:
            raise UserError(f"template {template_id} took over {MAX_RENDER_SECONDS:g} s to render "
                            "one record", path=template.path,
                            fix="remove the runaway loop (a real template renders in "
                                "microseconds)") from None
        except _TooLong as exc:
            raise UserError(f"template {template_id} rendered over {MAX_RENDER_CHARS:,} "
                            f"characters for one record ({exc})", path=template.path,
                            fix="shorten the template's output (a prompt is a few sentences)"
                            ) from None
        except SecurityError as exc:
            raise UserError(f"template {template_id} does something the sandbox forbids ({exc})",
                            path=template.path,
                            fix="use only the record's fields and filters listed in "
                                "docs/templates.md, no Python attributes or methods") from None
        except UndefinedError as exc:
            raise UserError(f"cannot render template {template_id} ({exc})", path=template.path,
                            fix="declare the fields it uses in `requires:` (docs/templates.md)"
                            ) from None
        except TemplateError as exc:
            raise UserError(f"cannot render template {template_id} ({exc})", path=template.path,
                            fix="fix the template (docs/templates.md)") from None
        except Exception as exc:  # e.g. `{{ age + 1 }}` on a missing age: a TypeError
            raise UserError(
                f"template {template_id} fails on a record ({type(exc).__name__}: {exc})",
                path=template.path,
                fix="guard optional fields, e.g. {% if age is not none %}...{% endif %}, "
                "or list them in `requires:`",
            ) from None

    def render(self, template_id: str, context: dict[str, Any]) -> str:
        """The text of a single-turn template (system prompts), or of its first turn."""
        return self.render_turns(template_id, context)[0]["content"]


class _TooLong(Exception):
    """A rendering that passed MAX_RENDER_CHARS (stopped as soon as it did)."""


def _render_bounded(turns: list[tuple[str, Any]]):
    """A function rendering `turns` on a context chunk by chunk, stopping past the size bound."""
    def render(context: dict[str, Any]) -> list[dict[str, str]]:
        out, total = [], 0
        for role, compiled in turns:
            chunks = []
            for chunk in compiled.generate(**context):
                total += len(chunk)
                if total > MAX_RENDER_CHARS:
                    raise _TooLong(f"{total:,} characters and counting")
                chunks.append(chunk)
            out.append({"role": role, "content": "".join(chunks).strip()})
        return out
    return render


class _time_limit:  # noqa: N801 (used as a context manager)
    """Raise _RenderTimeout in the block after `seconds` (SIGALRM; main thread on POSIX only,
    elsewhere the size bound alone applies). An already armed timer is left alone.

    The handler is installed once and passes alarms outside a rendering on to the handler it
    replaced: installing it around every rendering cost ~18 us per example, this ~3 us.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False

    def __enter__(self) -> None:
        if not _CAN_TIME or threading.current_thread() is not threading.main_thread():
            return
        if _ALARM["previous"] is None:
            _ALARM["previous"] = signal.signal(signal.SIGALRM, _on_alarm)
        if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            return
        _ALARM["rendering"] = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.armed = True

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _ALARM["rendering"] = False


_CAN_TIME = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
_ALARM: dict[str, Any] = {"previous": None, "rendering": False}


def _on_alarm(signum: int, frame: Any) -> None:
    if _ALARM["rendering"]:
        _ALARM["rendering"] = False
        raise _RenderTimeout()
    previous = _ALARM["previous"]
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:  # what SIGALRM would have done: end the process
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGALRM)
