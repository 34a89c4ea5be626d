"""Kill a real build process at many points, resume it, and get the bytes of an uninterrupted run.

Two kinds of kill:

* precise: the build runs in a subprocess whose `os.replace` (every "this file is done" step of
  every stage, and the publish) and directory exchange are wrapped to SIGKILL the process right
  before the N-th call, i.e. with a fully written temporary file that is not yet in place. A
  first run with no kill counts the steps; kills are spread over all of them.
* external: `kill -9` of the CLI's main process (workers 2) while shards are being written, and
  Ctrl-C (SIGINT to the process group), as a user or a scheduler would do it.

After each kill, the previously published dataset must be untouched, and the resumed build must
produce exactly the files (sha256) of a build that was never interrupted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from buildkit import REPO_ROOT, quick_recipe, run_build, sample_mirror, tree_digest

pytestmark = pytest.mark.slow

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import ecg_instruct.paths as paths

    kill_at = int(os.environ["KILL_AT"])
    count = 0
    real_replace, real_exchange = os.replace, paths.exchange_dirs

    def step():
        global count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def replace(*args, **kwargs):
        step()
        return real_replace(*args, **kwargs)

    def exchange(*args, **kwargs):
        step()
        return real_exchange(*args, **kwargs)

    os.replace, paths.exchange_dirs = replace, exchange
    from ecg_instruct.cli import app
    try:
        app(sys.argv[1:], standalone_mode=False)
    finally:
        print(f"STEPS {count}", flush=True)
    """
)

SLOW = textwrap.dedent(
    """
    import sys, time
    import ecg_instruct.signals.curate as stage
    real = stage.curate_record

    def slow(*args, **kwargs):
        time.sleep(0.08)
        return real(*args, **kwargs)

    stage.curate_record = slow
    from ecg_instruct.cli import main
    sys.argv = ["ecg-instruct", *sys.argv[1:]]
    main()
    """
)


def _cli_args(raw: Path, out: Path, recipe: Path, workers: int, seed: int) -> list[str]:
    return ["build", "--raw-dir", str(raw), "--out", str(out), "--recipe", str(recipe),
            "--workers", str(workers), "--seed", str(seed), "--no-progress"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_killed(script: Path, args: list[str], kill_at: int) -> subprocess.CompletedProcess:
    env = _env()
    env["KILL_AT"] = str(kill_at)
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    mirror = sample_mirror(tmp_path_factory)
    base = tmp_path_factory.mktemp("resume")
    recipe = quick_recipe(base)
    reference = base / "reference" / "meit"
    run_build(mirror, reference, recipe, workers=1, seed=1)
    killer = base / "killer.py"
    killer.write_text(KILLER, encoding="utf-8")
    return mirror, base, recipe, tree_digest(reference), killer


def _count_steps(monkeypatch, build) -> int:
    """Run `build()` in this process, counting the steps the killer script would count."""
    import ecg_instruct.paths as paths

    count = {"n": 0}
    real_replace, real_exchange = os.replace, paths.exchange_dirs

    def replace(*args, **kwargs):
        count["n"] += 1
        return real_replace(*args, **kwargs)

    def exchange(*args, **kwargs):
        count["n"] += 1
        return real_exchange(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        patch.setattr(paths, "exchange_dirs", exchange)
        build()
    return count["n"]


def test_kill_9_at_every_kind_of_step_then_resume_is_byte_identical(setup, tmp_path, monkeypatch):
    mirror, _, recipe, reference, killer = setup
    out = tmp_path / "meit"
    # A previous dataset (seed 0) is published: every killed build must leave it intact.
    run_build(mirror, out, recipe, workers=1, seed=0)
    previous = tree_digest(out)
    saved = tmp_path / "previous"
    shutil.copytree(out, saved)
    args = _cli_args(mirror, out, recipe, workers=1, seed=1)
    work = out.with_name("meit.work")

    def resume() -> int:
        return _count_steps(monkeypatch, lambda: run_build(mirror, out, recipe, workers=1, seed=1))

    steps = _count_steps(monkeypatch, lambda: run_build(mirror, tmp_path / "count" / "meit",
                                                        recipe, workers=1, seed=1))
    assert steps > 20  # index, reports, instruct, two files per shard, every published file
    # Spread over the whole build (steps: index 2, reports 2 per shard + 2, instruct, signals 2
    # per shard, publish 1 per file, the swap): the reports shards, the middle of the signal
    # shards (also between a shard's two files), the middle of publishing, right before the
    # final swap. Each point starts from an empty work folder: the numbering of a fresh build.
    points = sorted({steps // 3, steps // 2 + 1, steps - 3, steps})
    for kill_at in points:
        shutil.rmtree(work, ignore_errors=True)
        killed = _run_killed(killer, args, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr[-2000:])
        assert tree_digest(out) == previous, f"previous dataset damaged (kill at {kill_at})"
        if kill_at == steps // 3:  # a resumed build killed again: resume of a resume
            again = _run_killed(killer, args, 5)
            assert again.returncode == -signal.SIGKILL, again.stderr[-2000:]
            assert tree_digest(out) == previous
        done = resume()
        assert done < steps, "the resumed build redid finished work"
        assert tree_digest(out) == reference, f"resumed build differs (kill at {kill_at})"
        assert not out.with_name("meit.tmp").exists()
        assert not out.with_name("meit.old").exists()
        assert list(work.rglob("*.tmp-*")) == []
        shutil.rmtree(out)  # put the previous dataset back for the next kill point
        shutil.copytree(saved, out)


def test_external_kill_9_and_ctrl_c_then_resume(setup, tmp_path):
    mirror, _, recipe, reference, _ = setup
    out = tmp_path / "meit"
    slow = tmp_path / "slow.py"
    slow.write_text(SLOW, encoding="utf-8")
    args = _cli_args(mirror, out, recipe, workers=2, seed=1)
    shards = out.with_name("meit.work")

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(slow), *args], env=_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def wait_for_shards(process: subprocess.Popen, n: int) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = len(list(shards.glob("*/signals/*.arrow")))
            if done >= n:
                return done
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        raise AssertionError("no shards written within 60 s")

    # 1. Ctrl-C: SIGINT to the whole process group, as a terminal does.
    process = start()
    wait_for_shards(process, 1)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "resume" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()

    # 2. kill -9 of the main process only: its workers must not outlive it for long.
    process = start()
    before = wait_for_shards(process, 3)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("worker processes outlived the killed build by 10 s")
    assert not out.exists()
    total = len(list(shards.glob("*/signals/*.arrow")))
    assert before <= total  # the shards done before the kill are kept

    # 3. Resume with the plain CLI: same bytes as the uninterrupted reference.
    resumed = subprocess.run([sys.executable, "-m", "ecg_instruct.cli", *args], env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert tree_digest(out) == reference


def test_a_full_disk_names_the_file_and_leaves_the_previous_dataset_intact(
    setup, tmp_path, monkeypatch,
):
    """pyarrow's disk-full error names no file; the build's says which one it was writing."""
    import ecg_instruct.publish.stage as publish_stage

    mirror, _, recipe, _, _ = setup
    out = tmp_path / "meit"
    run_build(mirror, out, recipe, workers=1, seed=0)
    previous = tree_digest(out)
    calls = {"n": 0}

    class FullDisk(publish_stage.pq.ParquetWriter):
        def write_table(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("IOError: No space left on device")  # as pyarrow words it
            return super().write_table(*args, **kwargs)

    monkeypatch.setattr(publish_stage.pq, "ParquetWriter", FullDisk)
    with pytest.raises(OSError, match="No space left on device") as raised:
        run_build(mirror, out, recipe, workers=1, seed=1)
    assert re.search(r"meit\.tmp/data/\w+/\w+-\d{5}-of-\d{5}\.parquet$", raised.value.filename)
    assert tree_digest(out) == previous
    # nothing of the failed run is left taking the space: no partial file, no meit.tmp/
    assert not out.with_name("meit.tmp").exists()
    assert list(tmp_path.rglob("*.tmp-*")) == []


def test_a_full_disk_in_a_worker_names_the_shard(setup, tmp_path, monkeypatch):
    import ecg_instruct.signals.stage as signals_stage

    mirror, _, recipe, _, _ = setup

    def full(records, roots, cfg, output):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(signals_stage, "process_shard", full)
    with pytest.raises(OSError, match="No space left on device") as raised:
        run_build(mirror, tmp_path / "meit", recipe, workers=2, seed=1)
    assert re.search(r"signals/mimic-\w+-\d{5}\.\w{16}\.arrow$", raised.value.filename)


def test_a_full_disk_in_a_worker_leaves_no_partial_shard(setup, tmp_path, monkeypatch):
    """The disk fills while a worker writes its signal shard: the worker removes its partial
    `*.tmp-<pid>` file itself (before: left until the next run's cleanup)."""
    import types

    import pyarrow as pa

    import ecg_instruct.signals.curate as curate

    mirror, _, recipe, _, _ = setup

    def new_file(sink, schema):
        sink.write(b"half a shard")
        raise OSError(28, "No space left on device")

    full = types.SimpleNamespace(**{name: getattr(pa, name) for name in dir(pa)
                                    if not name.startswith("__")})
    full.ipc = types.SimpleNamespace(new_file=new_file)
    monkeypatch.setattr(curate, "pa", full)
    with pytest.raises(OSError, match="No space left on device"):
        run_build(mirror, tmp_path / "meit", recipe, workers=2, seed=1)
    assert list(tmp_path.rglob("*.tmp-*")) == []
    assert not (tmp_path / "meit.tmp").exists()


def test_two_builds_into_one_folder_cannot_run_at_once(setup, tmp_path):
    import fcntl

    from ecg_instruct.errors import UserError

    mirror, _, recipe, _, _ = setup
    out = tmp_path / "meit"
    work = out.with_name("meit.work")
    work.mkdir(parents=True)
    with open(work / "lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UserError, match="another build is writing"):
            run_build(mirror, out, recipe)
    assert not out.exists()


def test_a_torn_signal_shard_is_done_again(setup, tmp_path):
    """Signal shards are not fsynced (signals.stage.shard_done): after a power cut a renamed
    shard or its rejects can be cut short or empty. The next build finds them unreadable and
    does those shards again, to the bytes of an uninterrupted build."""
    mirror, _, recipe, reference, _ = setup
    out = tmp_path / "meit"
    run_build(mirror, out, recipe, workers=1, seed=1)
    shards = sorted(out.with_name("meit.work").glob("*/signals/*.arrow"))
    assert len(shards) >= 2
    shards[0].write_bytes(shards[0].read_bytes()[:100])
    Path(f"{shards[1]}.rejects").write_bytes(b"")
    run_build(mirror, out, recipe, workers=1, seed=1)
    assert tree_digest(out) == reference


def test_work_of_other_builds_is_kept_for_the_newest_two_and_fresh_discards_it(
    setup, tmp_path,
):
    mirror, _, recipe, _, _ = setup
    out = tmp_path / "meit"
    work = out.with_name("meit.work")

    def folders() -> set[str]:
        return {p.name for p in work.iterdir() if p.is_dir()}

    run_build(mirror, out, recipe, seed=0)
    first = folders()
    run_build(mirror, out, recipe, seed=0)  # same build: resumes, keeps its folder
    assert folders() == first
    for seed in (1, 2):
        run_build(mirror, out, recipe, seed=seed)
    assert len(folders()) == 3 and first <= folders()  # current + the 2 newest others
    run_build(mirror, out, recipe, seed=3)
    assert len(folders()) == 3 and not first & folders()  # the oldest (seed 0) went
    before = folders()
    run_build(mirror, out, recipe, seed=3, fresh=True)
    assert len(folders()) == 1 and folders() <= before  # only this build's (redone) work


def test_a_record_silently_dropped_by_a_stage_fails_the_build(setup, tmp_path, monkeypatch):
    """End to end: a (buggy) signals stage that loses a record is caught before publishing."""
    import ecg_instruct.signals.stage as signals_stage
    from ecg_instruct.build.pipeline import AccountingError

    mirror, _, recipe, _, _ = setup
    out = tmp_path / "meit"
    run_build(mirror, out, recipe, seed=0)
    previous = tree_digest(out)
    real = signals_stage.process_shard

    def lossy(records, *args, **kwargs):
        return real(records[1:], *args, **kwargs)  # drops the first record of every shard

    monkeypatch.setattr(signals_stage, "process_shard", lossy)
    with pytest.raises(AccountingError, match="signals: .* neither passed nor rejected"):
        run_build(mirror, out, recipe, seed=1)
    assert tree_digest(out) == previous
