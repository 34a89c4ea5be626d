"""kill -9 of the build's main process in each stage of a > 4,096-record build (issue 14).

Every stage that runs workers (reports, instruct, signals, publish) must lose them within 5 s
of the main process dying (else they hold the build lock: "another build is writing"), and the
build resumed after kills in every stage must give the bytes of an uninterrupted build. The
instruct stage takes another path above 4,096 records (several chunks, a process pool), so the
corpus is larger than that: the sample mirror with 4,600 MIMIC records (4,370 reach the
instruct stage; hard links, ~1 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from buildkit import REPO_ROOT, bulk_mirror, quick_recipe, run_build, tree_digest

pytestmark = pytest.mark.slow

STAGES = ("index", "reports", "instruct", "signals", "publish")

#: Runs the CLI with each stage's unit of work announced (a file `<stage>-<pid>` in $MARK_DIR,
#: written by whichever process does it) and slowed down, so the test can kill inside it.
#: Top-level functions: the executor pickles them by name into its (forked) workers.
SLOWED_CLI = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import ecg_instruct.instruct.stage as instruct
    import ecg_instruct.index.stage as index_stage
    import ecg_instruct.publish.stage as publish
    import ecg_instruct.reports.stage as reports_stage
    import ecg_instruct.signals.stage as signals_stage

    MARK = Path(os.environ["MARK_DIR"])
    real = {"index": index_stage.build_index, "reports": reports_stage.reports_shard,
            "instruct": instruct._run_chunk, "signals": signals_stage.signals_shard,
            "publish": publish.write_split_file}

    def mark(stage, delay):
        (MARK / f"{stage}-{os.getpid()}").touch()
        time.sleep(delay)

    def index(*args, **kwargs):
        mark("index", 1.0)
        return real["index"](*args, **kwargs)

    def reports(*args, **kwargs):
        mark("reports", 0.3)
        return real["reports"](*args, **kwargs)

    def chunk(*args, **kwargs):
        mark("instruct", 1.0)
        return real["instruct"](*args, **kwargs)

    def signals(*args, **kwargs):
        mark("signals", 0.3)
        return real["signals"](*args, **kwargs)

    def files(*args, **kwargs):
        mark("publish", 0.5)
        return real["publish"](*args, **kwargs)

    index_stage.build_index = index
    reports_stage.reports_shard, signals_stage.signals_shard = reports, signals
    instruct._run_chunk, publish.write_split_file = chunk, files
    from ecg_instruct.cli import main
    sys.argv = ["ecg-instruct", *sys.argv[1:]]
    main()
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _wait_for_stage(process: subprocess.Popen, marks: Path, stage: str) -> None:
    """Until a process other than the main one works on `stage` (the main one for index)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pids = {int(p.name.rsplit("-", 1)[1]) for p in marks.glob(f"{stage}-*")}
        if pids - {process.pid} or (stage == "index" and pids):
            return
        assert process.poll() is None, (stage, sorted(p.name for p in marks.iterdir()))
        time.sleep(0.05)
    raise AssertionError(f"the build did not reach {stage} within 120 s")


def _group_gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return False


def test_kill_9_in_every_stage_leaves_no_worker_and_resumes_byte_identical(
    tmp_path_factory, tmp_path,
):
    mirror = bulk_mirror(tmp_path_factory)
    recipe = quick_recipe(tmp_path / "recipe", shard_size=256, rows_per_file=1000)
    reference = tmp_path / "reference" / "meit"
    run_build(mirror, reference, recipe, workers=2, seed=1)
    out, marks = tmp_path / "out" / "meit", tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "slowed.py"
    script.write_text(SLOWED_CLI, encoding="utf-8")
    args = ["build", "--raw-dir", str(mirror), "--out", str(out), "--recipe", str(recipe),
            "--workers", "2", "--seed", "1", "--no-progress"]
    for stage in STAGES:  # each run resumes the previous one's work, then is killed further on
        for mark in marks.iterdir():
            mark.unlink()
        process = subprocess.Popen([sys.executable, str(script), *args], env=_env(
            MARK_DIR=str(marks)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        _wait_for_stage(process, marks, stage)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        assert _group_gone_within(process.pid, 5.0), f"workers outlived a kill in {stage}"
        assert not out.exists()
    resumed = subprocess.run([sys.executable, "-m", "ecg_instruct.cli", *args], env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert tree_digest(out) == tree_digest(reference)
    assert len(list(Path(f"{out}.work").glob("*/signals/*.arrow"))) > 16  # > 4,096 records
