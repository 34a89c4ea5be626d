"""`evaluate` writes report.html, checked in a real headless Chromium (the Debian package).

Without Chromium the test skips on a developer machine and fails in CI (CI=true), where
`make test` installs it: the page is only checked if a browser really renders it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from ecg_instruct.evaluate.runner import EvalOptions, evaluate_run  # noqa: E402


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "chromium is not installed (apt-get install chromium; `make test` does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


class _Elements(HTMLParser):
    """Every start tag of the rendered DOM with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def report(tiny_run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval-html")
    evaluate_run(EvalOptions(run=tiny_run, split="test", controls=True, noise="meit:0.8",
                             meteor="none", progress=False, limit=6, out_dir=out))
    return out / "report.html"


def test_report_renders_in_chromium_with_every_element(report: Path, tmp_path: Path):
    dom = _browser("--dump-dom", report.as_uri()).stdout
    parser = _Elements()
    parser.feed(dom)
    tags = parser.tags
    ids = {attrs.get("id") for _, attrs in tags}
    assert {"metrics", "controls", "controls-table", "robustness", "robustness-plot"} <= ids
    records = [a for t, a in tags if t == "div" and a.get("class") == "record"]
    assert len(records) == 6
    thumbs = [a["src"] for t, a in tags if t == "img" and a.get("class") == "ecg"]
    assert len(thumbs) == 6
    for src in thumbs:  # each thumbnail is a real PNG beside the page
        with Image.open(report.parent / src) as image:
            assert image.format == "PNG" and image.size[0] > 300
    for cls in ("reference", "generated", "statements"):
        assert sum(1 for t, a in tags if t == "p" and a.get("class") == cls) == 6
    assert "ecg=zeros" in dom and "ecg=shuffle" in dom  # the controls table's rows
    assert dom.count('class="stmt') > 0  # clinical statements found in the reports

    shot = tmp_path / "page.png"
    _browser(f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri())
    with Image.open(shot) as image:
        assert image.size == (1200, 1600)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and images, not a blank page
