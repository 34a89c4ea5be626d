"""Template files: front matter, turns, sandbox, and the bundled library's coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecg_instruct.errors import UserError
from ecg_instruct.instruct.fields import KNOWN_FIELDS
from ecg_instruct.instruct.stage import check_messages
from ecg_instruct.instruct.templates import TemplateLibrary, parse_template

TASKS = ("report", "diagnosis", "rhythm", "measurement", "multi-turn")


def _write(folder: Path, relative: str, text: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_library_covers_every_task_with_varied_report_prompts() -> None:
    library = TemplateLibrary()
    for task in TASKS:
        assert library.for_task(task), task
    report = library.for_task("report")
    assert len(report) >= 40
    kinds = {t.id.split("/")[1].rsplit("-", 1)[0] for t in report}
    assert {"plain", "role", "terse", "context"} <= kinds
    # paraphrases, not copies: every report prompt text is distinct
    assert len({t.source for t in report}) == len(report)
    for template in library.templates.values():
        assert set(template.requires) <= set(KNOWN_FIELDS), template.path
    multi = library.for_task("multi-turn")
    assert all(len(t.turns) == 4 for t in multi)


def test_report_template_without_answer_gets_the_report(tmp_path: Path) -> None:
    path = _write(tmp_path, "report/mine.j2", "{#---\nid: report/mine\ntask: report\n---#}\n"
                  "{{ ecg }} Report please.\n")
    template = parse_template(path, tmp_path)
    assert [role for role, _ in template.turns] == ["user", "assistant"]
    library = TemplateLibrary([tmp_path])
    turns = library.render_turns("report/mine", {"ecg": "<ecg>", "report": "sinus rhythm."})
    assert turns == [{"role": "user", "content": "<ecg> Report please."},
                     {"role": "assistant", "content": "sinus rhythm."}]


@pytest.mark.parametrize(("body", "message"), [
    ("no front matter {{ ecg }}\n", "missing front matter"),
    ("{#---\nid: [unclosed\n---#}\n{{ ecg }}\n", "not a YAML mapping"),
    ("{#---\ntask: rhythm\nrequires: heart_rate\n---#}\n{{ ecg }}\n", "must be a list"),
    ("{#---\ntask: rhythm\nrequires: [heartrate]\n---#}\n{{ ecg }}\n", "unknown field 'heartrate'"),
    ("{#---\ntask: rhythm\n---#}\n{{ ecg }} {{ hr }}\n{#-- assistant --#}\nx\n",
     "unknown variable 'hr'"),
    ("{#---\ntask: rhythm\n---#}\n{{ ecg }} {% if %}\n", "invalid Jinja2"),
    ("{#---\ntask: rhythm\n---#}\n{{ ecg }} What rate?\n", "ending with the assistant"),
    ("{#---\ntask: rhythm\n---#}\n{{ ecg }}\n{#-- assistant --#}\n\n", "a turn is empty"),
])
def test_bad_template_files_are_one_line_user_errors_naming_the_file(
    tmp_path: Path, body: str, message: str
) -> None:
    path = _write(tmp_path, "rhythm/bad.j2", body)
    with pytest.raises(UserError) as info:
        TemplateLibrary([tmp_path])
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:")
    assert "\n" not in str(info.value)


def test_undeclared_missing_field_fails_naming_the_template(tmp_path: Path) -> None:
    path = _write(tmp_path, "rhythm/rate.j2", "{#---\ntask: rhythm\n---#}\n{{ ecg }} Rate?\n"
                  "{#-- assistant --#}\n{{ heart_rate }} bpm\n")
    library = TemplateLibrary([tmp_path])
    assert library.render_turns("rhythm/rate", {"ecg": "<e>", "heart_rate": 72})[1]["content"] \
        == "72 bpm"
    with pytest.raises(UserError, match="heart_rate") as info:
        library.render_turns("rhythm/rate", {"ecg": "<e>"})
    assert str(path) in str(info.value)


def test_templates_render_in_a_sandbox(tmp_path: Path) -> None:
    _write(tmp_path, "report/evil.j2", "{#---\ntask: report\n---#}\n"
           "{{ ecg }} {{ report.__class__.__mro__[1].__subclasses__() }}\n")
    library = TemplateLibrary([tmp_path])
    with pytest.raises(UserError, match="template report/evil does something the sandbox forbids"):
        library.render_turns("report/evil", {"ecg": "<e>", "report": "x"})


def test_placeholder_rules_are_enforced(tmp_path: Path) -> None:
    path = _write(tmp_path, "report/twice.j2", "{#---\ntask: report\n---#}\n{{ ecg }} and {{ ecg }}\n")
    library = TemplateLibrary([tmp_path])
    template = library.templates["report/twice"]
    turns = library.render_turns("report/twice", {"ecg": "<ecg>", "report": "r"})
    with pytest.raises(UserError, match="exactly once") as info:
        check_messages(turns, "<ecg>", template)
    assert str(path) in str(info.value)
    with pytest.raises(UserError, match="exactly once"):
        check_messages([{"role": "user", "content": "no token"},
                        {"role": "assistant", "content": "r"}], "<ecg>", template)
    with pytest.raises(UserError, match="assistant turn"):
        check_messages([{"role": "user", "content": "<ecg>"},
                        {"role": "assistant", "content": "<ecg>"}], "<ecg>", template)
    with pytest.raises(UserError, match="missing value"):
        check_messages([{"role": "user", "content": "<ecg> age None"},
                        {"role": "assistant", "content": "r"}], "<ecg>", template)
    # a report may say "None" (a source's own words); only template-made values are suspect
    check_messages([{"role": "user", "content": "<ecg>"},
                    {"role": "assistant", "content": "Pacing: None."}], "<ecg>", template,
                   "Pacing: None.")


def test_user_folder_overrides_a_bundled_id(tmp_path: Path) -> None:
    from ecg_instruct.instruct.templates import BUNDLED_TEMPLATES

    _write(tmp_path, "report/plain-01.j2", "{#---\nid: report/plain-01\ntask: report\n---#}\n"
           "Mine: {{ ecg }}\n")
    library = TemplateLibrary([BUNDLED_TEMPLATES, tmp_path])
    assert library.templates["report/plain-01"].path.parent.parent == tmp_path
    assert len(library.for_task("report")) == len(TemplateLibrary().for_task("report"))


def test_every_template_variable_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "templates.md").read_text()
    table = {line.split("`")[1] for line in docs.splitlines() if line.startswith("| `")}
    assert table >= set(KNOWN_FIELDS), set(KNOWN_FIELDS) - table


HEAD = "{#---\nid: report/x\ntask: report\n---#}\n"


@pytest.mark.parametrize(("body", "message", "fix"), [
    ("{{ ecg }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     r"template report/x took over 0.2 s to render one record", "remove the runaway loop"),
    ("{{ ecg }}{% for i in range(100000) %}{{ report }}{% endfor %}",
     r"template report/x rendered over 100,000 characters", "shorten the template's output"),
    ("{{ ecg }}{{ 'x' * 50000000 }}",
     r"does something the sandbox forbids \(repeating a sequence", "use only the record's fields"),
    ("{{ ecg }}{{ ''.__class__.__mro__ }}",
     r"does something the sandbox forbids \(access to attribute '__class__'",
     "no Python attributes or methods"),
    ("{{ ecg }}{{ 2 ** 100000000 }}", r"exponent 100000000 is too large", "use only"),
])
def test_renders_are_bounded_and_each_failure_has_its_own_fix(
        tmp_path: Path, monkeypatch, body: str, message: str, fix: str) -> None:
    import time

    import ecg_instruct.instruct.templates as templates

    monkeypatch.setattr(templates, "MAX_RENDER_SECONDS", 0.2)
    _write(tmp_path, "report/x.j2", HEAD + body)
    library = TemplateLibrary([tmp_path])
    start = time.monotonic()
    with pytest.raises(UserError, match=message) as caught:
        library.render_turns("report/x", {"ecg": "<ecg>", "report": "Sinus rhythm. Normal ECG."})
    assert time.monotonic() - start < 5
    assert str(caught.value).startswith(str(tmp_path / "report" / "x.j2"))
    assert fix in str(caught.value) and "requires:" not in str(caught.value)


def test_an_undefined_field_still_suggests_requires(tmp_path: Path) -> None:
    _write(tmp_path, "report/x.j2", HEAD + "{{ ecg }} {{ heart_rate }}")
    with pytest.raises(UserError, match=r"declare the fields it uses in `requires:`"):
        TemplateLibrary([tmp_path]).render_turns("report/x", {"ecg": "<ecg>", "report": "r"})
