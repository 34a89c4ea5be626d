"""`report.html`: what the model got right and wrong, record by record, as one static page.

Metrics say how far generated reports are from the references on average; a reader deciding
whether to trust a model wants to look at records: the ECG (a thumbnail in the paper layout),
the reference and the generated report with the differing words marked, and the clinical
statements each one makes. The page is one HTML file plus PNGs in ``report_files/`` beside it
(no server, no script, no network), with the main metrics, the controls table and the
noise-robustness plot when ``evaluate`` computed them.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPORT_NAME = "report.html"
FILES_DIR = "report_files"
THUMBNAIL_DPI = 40
DEFAULT_MAX_RECORDS = 50

_TOKEN = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")


def statements_of(report: str) -> list[str]:
    """The SCP statements (codes) a report states, sorted: the clinical-accuracy scorer's
    extraction (``evaluate.clinical``, negations excluded), so the page shows exactly what the
    clinical F1 counted."""
    from ecg_instruct.evaluate.clinical import statements_of as clinical_statements

    return sorted(clinical_statements(report))


def word_diff(reference: str, generated: str) -> tuple[str, str]:
    """Both texts as HTML, words missing from the other marked (``<del>`` in the reference,
    ``<ins>`` in the generated report); comparison ignores case, the texts keep their spacing."""
    ref, gen = list(_TOKEN.finditer(reference)), list(_TOKEN.finditer(generated))
    matcher = difflib.SequenceMatcher(a=[t.group().lower() for t in ref],
                                      b=[t.group().lower() for t in gen], autojunk=False)
    ref_changed, gen_changed = [True] * len(ref), [True] * len(gen)
    for block in matcher.get_matching_blocks():
        ref_changed[block.a:block.a + block.size] = [False] * block.size
        gen_changed[block.b:block.b + block.size] = [False] * block.size
    return _marked(reference, ref, ref_changed, "del"), _marked(generated, gen, gen_changed, "ins")


def _marked(text: str, tokens: list[re.Match], changed: list[bool], tag: str) -> str:
    """``text`` escaped, each run of changed tokens (with the spaces inside it) in ``<tag>``."""
    out, pos, k = [], 0, 0
    while k < len(tokens):
        start = tokens[k].start()
        out.append(html.escape(text[pos:start]))
        end = k
        while end + 1 < len(tokens) and changed[end + 1] == changed[k]:
            end += 1
        chunk = html.escape(text[start:tokens[end].end()])
        out.append(f"<{tag}>{chunk}</{tag}>" if changed[k] else chunk)
        pos, k = tokens[end].end(), end + 1
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _thumbnail(record_id: str, signal: np.ndarray, fs: float, folder: Path) -> str:
    from ecg_instruct.plot.paper import render
    from ecg_instruct.plot.view import EcgView

    name = record_id.replace("/", "_") + ".png"
    render(EcgView(record_id, signal, fs), folder / name, THUMBNAIL_DPI)
    return f"{FILES_DIR}/{name}"


def _metrics_table(rows: Sequence[dict], table_id: str) -> str:
    from ecg_instruct.evaluate.bootstrap import metric_cell
    from ecg_instruct.evaluate.scoring import METRICS

    names = [m for m in METRICS if any(row.get(m) is not None for row in rows)]
    head = "".join(f"<th>{m}</th>" for m in names)
    reference = rows[0] if rows else None
    body = []
    for row in rows:  # value [95 % interval]; (n.s.): the paired interval from row 1 includes 0
        cells = "".join(f"<td>{html.escape(metric_cell(row, m, reference))}</td>" for m in names)
        body.append(f"<tr><th>{html.escape(str(row['condition']))}</th>"
                    f"<td>{row['n_records']}</td>{cells}</tr>")
    return (f'<table id="{table_id}"><thead><tr><th>condition</th><th>n</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            '<p class="label">Values with bootstrap 95 % intervals over records; (n.s.): the '
            "paired 95 % interval of the difference from the first row includes 0.</p>")


def _statements_html(codes: list[str], other: list[str]) -> str:
    if not codes:
        return '<span class="none">none found</span>'
    return " ".join(
        f'<span class="stmt{"" if c in other else " only"}">{html.escape(c)}</span>' for c in codes
    )


_STYLE = """
body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #bbb;padding:3px 7px}
td{text-align:right;font-variant-numeric:tabular-nums}thead th{background:#eee}
.record{border-top:1px solid #ccc;padding:.8em 0;display:grid;grid-template-columns:330px 1fr;gap:1em}
.record img.ecg{width:320px;border:1px solid #ddd}.record h3{margin:0 0 .3em;font-size:1em}
del{background:#fcc;text-decoration:line-through}ins{background:#cfc;text-decoration:none}
.stmt{display:inline-block;border:1px solid #888;border-radius:3px;padding:0 4px;margin:1px;font-size:.85em}
.stmt.only{border-color:#c00;color:#c00;font-weight:bold}.none{color:#888;font-size:.85em}
.label{color:#666;font-size:.85em}
"""


def signals_of_dataset(ds) -> Callable[[int], tuple[np.ndarray, float]]:
    """``signal_of`` for a loaded published split (float32 mV, or int16 counts + ``adc_gain``)."""

    def signal_of(i: int) -> tuple[np.ndarray, float]:
        row = ds[i]
        signal = np.asarray(row["signal"], dtype=np.float64)
        if row.get("adc_gain"):
            signal = signal / float(row["adc_gain"])
        return signal, float(row.get("fs") or 0) or 500.0

    return signal_of


def _run_html(main: dict) -> str:
    """Which model this is (base, fusion, steps), the BERTScore model, and the warnings of
    ``input_use`` (a model that ignores its ECG) in plain words at the top."""
    model = main.get("model") or {}
    use = main.get("input_use") or {}
    bert = (main.get("implementation") or {}).get("bertscore")
    if isinstance(bert, dict):
        flag = "comparable to the papers" if bert.get("comparable_to_papers") else "NOT comparable"
        bert_text = f"{bert.get('model', bert.get('folder', '?'))} ({flag})"
    else:
        bert_text = "not computed"
    epochs = f", {model['epochs']} epochs" if model.get("epochs") is not None else ""
    items = [
        f"decoder: {model.get('decoder', '?')}"
        + (f" (base model {model['base_model']})" if model.get("base_model") else ""),
        f"fusion: {model.get('fusion', main.get('fusion'))}, {model.get('ecg_tokens', '?')} ECG tokens",
        f"training: {model.get('steps', '?')} steps of batch {model.get('batch_size', '?')}{epochs}",
        f"BERTScore model: {bert_text}",
    ]
    if use:
        items.append(f"distinct generated reports: {use['distinct_predictions']} "
                     f"(references: {use['distinct_references']})")
        for condition in ("zeros", "shuffle"):
            if f"changed_by_{condition}" in use:
                items.append(f"reports changed by the ecg={condition} control: "
                             f"{use[f'changed_by_{condition}']} of {main['n_records']}")
    out = '<section id="run"><h2>Model</h2><ul>' + "".join(
        f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
    for warning in use.get("warnings", []):
        out += f'<p class="warning"><strong>Warning:</strong> {html.escape(warning)}</p>'
    return out + "</section>"


def write_html_report(
    out_dir: Path, ids: Sequence[str], references: Sequence[str], predictions: Sequence[str],
    signal_of: Callable[[int], tuple[np.ndarray, float]], rows: Sequence[dict],
    max_records: int = DEFAULT_MAX_RECORDS,
) -> Path:
    """Write ``out_dir/report.html`` (+ ``report_files/``) and return its path.

    ``rows`` are the evaluation's result rows (the first is the clean condition; rows of kind
    ``clean`` with ``ecg`` other than ``signal`` are the controls); ``signal_of(i)`` gives record
    ``i``'s ``(12, n)`` mV signal and rate. Only the first ``max_records`` records get a
    thumbnail and a section (the page says how many there are in all).
    """
    out_dir = Path(out_dir)
    files = out_dir / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)
    main = rows[0]
    controls = [r for r in rows if r.get("kind") in ("clean", "baseline")]
    title = f"Evaluation of {html.escape(str(main.get('run', '')))}: " \
            f"{html.escape(str(main.get('config')))} / {html.escape(str(main.get('split')))}"
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
             f'<p class="label">{main["n_records"]} records, decoding '
             f"{html.escape(str(main.get('decoding')))}; ECG thumbnails in the paper layout "
             f"(25 mm/s, 10 mm/mV; open one to enlarge).</p>",
             _run_html(main), "<h2>Metrics</h2>", _metrics_table([main], "metrics")]
    if len(controls) > 1:
        parts += ['<section id="controls"><h2>Controls: the same model without the ECG</h2>',
                  _metrics_table(controls, "controls-table"), "</section>"]
    if (out_dir / "robustness.png").is_file():
        parts += ['<section id="robustness"><h2>Noise robustness</h2>',
                  '<img id="robustness-plot" src="robustness.png" alt="metrics vs noise level" '
                  'width="880"></section>']
    shown = min(max_records, len(ids))
    parts.append(f'<h2>Records</h2><p class="label">{shown} of {len(ids)} shown. Words only in '
                 f"the reference are <del>struck</del>, words only in the generated report "
                 f"<ins>green</ins>; statements stated by one text only are in red.</p>")
    for i in range(shown):
        signal, fs = signal_of(i)
        thumb = _thumbnail(ids[i], signal, fs, files)
        ref_html, gen_html = word_diff(references[i], predictions[i])
        ref_codes, gen_codes = statements_of(references[i]), statements_of(predictions[i])
        anchor = html.escape(ids[i].replace("/", "_"))
        parts.append(
            f'<div class="record" id="rec-{anchor}">'
            f'<a href="{thumb}"><img class="ecg" src="{thumb}" alt="ECG {html.escape(ids[i])}"></a>'
            f"<div><h3>{html.escape(ids[i])}</h3>"
            f'<div class="label">reference</div><p class="reference">{ref_html}</p>'
            f'<div class="label">generated</div><p class="generated">{gen_html}</p>'
            f'<div class="label">statements</div>'
            f'<p class="statements">reference: {_statements_html(ref_codes, gen_codes)}<br>'
            f"generated: {_statements_html(gen_codes, ref_codes)}</p></div></div>"
        )
    parts.append("</body></html>\n")
    path = out_dir / REPORT_NAME
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
