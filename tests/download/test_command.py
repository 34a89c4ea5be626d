"""The `download` command as users meet it: exit codes, one-line errors, interruption."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ecg_instruct.download.command import download
from ecg_instruct.download.fetch import part_path
from ecg_instruct.download.run import LOCK_NAME, download_release
from ecg_instruct.errors import UserError

from .conftest import FAST, tree_files
from .physionet_server import PhysioNetServer

P = "ptb-xl/1.0.3/"
HR1 = "records500/00000/00001_hr.dat"
# The command hosted the way cli.py hosts it: a subcommand of a typer app.
APP_CODE = (
    "import typer\n"
    "from ecg_instruct.download.command import download\n"
    "app = typer.Typer()\n"
    "app.callback()(lambda: None)\n"
    "app.command('download')(download)\n"
    "app()\n"
)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("download")(download)
    return app


def _invoke(*args: str):
    return CliRunner().invoke(_app(), ["download", *args])


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/files/ptb-xl/1.0.3/"


def test_unreachable_server_one_line_exit_2(out: Path) -> None:
    url = _closed_port_url()
    result = _invoke("ptbxl", "--out", str(out), "--base-url", url, "--retries", "0")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {url}SHA256SUMS.txt: cannot reach")
    assert "--base-url" in lines[0] and "Traceback" not in result.output


def test_success_prints_summary(ptbxl_url: str, out: Path) -> None:
    result = _invoke("ptbxl", "--out", str(out), "--base-url", ptbxl_url, "--rate", "500",
                     "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "ptbxl: 8 fetched" in result.output and "0 failed" in result.output
    assert "2 records selected" in result.output


def test_failures_listed_by_path_exit_1(server: PhysioNetServer, ptbxl_url: str,
                                        out: Path) -> None:
    server.add_fault(P + HR1, "corrupt", "corrupt")
    result = _invoke("ptbxl", "--out", str(out), "--base-url", ptbxl_url, "--rate", "500")
    assert result.exit_code == 1
    assert f"failed: {HR1}: checksum mismatch" in result.output
    assert "1 failed" in result.output


@pytest.mark.parametrize("args, message", [
    (["mimic", "--rate", "500"], "--rate applies to ptbxl only"),
    (["ptbxl", "--records", "/nonexistent/records.txt"], "/nonexistent/records.txt: cannot read"),
    (["ptbxl", "--base-url", "ftp://x/"], "is not an http(s) URL"),
    (["mimic", "--split", "test", "--recipe", "/nonexistent/r.yaml"], "/nonexistent/r.yaml"),
])
def test_bad_input_is_one_line_exit_2(out: Path, args: list[str], message: str) -> None:
    result = _invoke(*args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_recipe_split_settings_reach_the_selection(mimic_url: str, out: Path,
                                                   tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nsplit:\n  mimic_fractions: [0.0, 0.0, 1.0]\n")
    result = _invoke("mimic", "--out", str(out), "--base-url", mimic_url, "--split", "test",
                     "--recipe", str(recipe))
    assert result.exit_code == 0, result.output
    assert "10 records selected" in result.output


def test_usage_errors_from_typer(out: Path) -> None:
    assert _invoke("ptb", "--out", str(out)).exit_code == 2
    assert _invoke("ptbxl", "--rate", "250").exit_code == 2
    assert _invoke("ptbxl", "--limit", "0").exit_code == 2


def test_progress_bars_on_request(ptbxl_url: str, out: Path) -> None:
    result = _invoke("ptbxl", "--out", str(out), "--base-url", ptbxl_url, "--metadata-only",
                     "--progress")
    assert result.exit_code == 0
    assert "ptb-xl files" in result.output and "ptb-xl bytes" in result.output


def test_second_download_into_same_folder_is_refused(ptbxl_url: str, out: Path) -> None:
    root = out / "ptb-xl"
    root.mkdir(parents=True)
    with (root / LOCK_NAME).open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another download into this folder is running"):
            download_release("ptbxl", out, base_url=ptbxl_url, progress=False, config=FAST)


def test_network_lost_mid_run_is_a_clean_error_and_resumes(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path
) -> None:
    server.add_fault(P + HR1, "slow")
    threading.Timer(0.3, server.go_down).start()
    with pytest.raises(UserError, match="cannot reach the server"):
        download_release("ptbxl", out, base_url=ptbxl_url, rate=500, progress=False,
                         config=FAST, connections=1)
    dest = out / "ptb-xl" / HR1
    kept = part_path(dest).stat().st_size
    assert not dest.exists() and kept > 0

    with PhysioNetServer(mirror) as again:
        summary = download_release("ptbxl", out, base_url=again.base_url + P, rate=500,
                                   progress=False, config=FAST)
    assert summary.ok and dest.read_bytes() == (mirror / P / HR1).read_bytes()
    assert again.requests_for(P + HR1) == [(f"bytes={kept}-", 206)]


def _start_cli(url: str, out: Path) -> subprocess.Popen:
    args = ["download", "ptbxl", "--out", str(out), "--base-url", url, "--rate", "500",
            "--limit", "1", "--connections", "1", "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", APP_CODE, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_part(proc: subprocess.Popen, part: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if part.exists() and part.stat().st_size > 0:
            return part.stat().st_size
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no partial file appeared: {proc.communicate()}")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_killed_download_leaves_no_half_file_and_resumes(
    server: PhysioNetServer, mirror: Path, ptbxl_url: str, out: Path, how: str
) -> None:
    server.slow_delay = 0.05  # ~1.5 s for the 120 kB file: plenty of time to interrupt it
    server.add_fault(P + HR1, "slow")
    dest = out / "ptb-xl" / HR1
    proc = _start_cli(ptbxl_url, out)
    _wait_for_part(proc, part_path(dest))
    proc.send_signal(getattr(signal, how))
    _, stderr = proc.communicate(timeout=30)
    if how == "SIGINT":
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "re-run the same command" in stderr
        assert "Traceback" not in stderr
    assert not dest.exists()  # never a half file under the final name
    kept = part_path(dest).stat().st_size
    assert 0 < kept < (mirror / P / HR1).stat().st_size

    summary = download_release("ptbxl", out, base_url=ptbxl_url, rate=500, limit=1,
                               progress=False, config=FAST)
    assert summary.ok
    assert server.requests_for(P + HR1)[-1] == (f"bytes={kept}-", 206)
    assert tree_files(out / "ptb-xl")[HR1] == (mirror / P / HR1).read_bytes()
