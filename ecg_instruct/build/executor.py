"""The one way the build runs work in parallel: every stage's process pool comes from here.

Why one executor: each pool must (1) die with its parent, even after `kill -9` of the build, so
no orphan keeps the build lock or the CPU; (2) stop at the first error without marking
unfinished shards done; (3) move its progress bar as each task finishes. A stage that made its
own pool got none of that (the instruct stage's pool outlived a killed build, issue 14).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from tqdm.auto import tqdm

from ecg_instruct.signals.heap import retain_freed_memory, retained_heap

#: How often a worker checks that its parent is still alive (seconds).
WATCHDOG_PERIOD_S = 0.5


def worker_init(parent: int, retain_heap: bool = False) -> None:
    """Worker setup: Ctrl-C is the parent's to handle, and a worker outlives no parent.

    Without the watchdog, `kill -9` of the build leaves its workers running to the end of their
    queue, holding the build lock. ``retain_heap``: keep freed memory for reuse (see
    ``signals/heap.py``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # `stop_pool` terminates the workers still running when a task fails: as an exception, not
    # a silent death, so a worker half-way through a file removes its `*.tmp-<pid>` itself
    # (`workio.temporary`) instead of leaving it to the next run's cleanup.
    signal.signal(signal.SIGTERM, _exit_on_terminate)
    # The objects inherited from the build (the index, ...) are never garbage here: moved out
    # of the collector's reach, its passes do not write to (and so copy) their shared pages.
    gc.freeze()
    if retain_heap:
        retain_freed_memory()

    def watchdog() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            threading.Event().wait(WATCHDOG_PERIOD_S)

    threading.Thread(target=watchdog, daemon=True).start()


def _exit_on_terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def new_pool(workers: int, retain_heap: bool = False) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process (see `worker_init`)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=worker_init,
                               initargs=(os.getpid(), retain_heap))


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued tasks and stop running ones now: unfinished shards are never marked done."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)
            if process.is_alive():  # stuck in a long native call: no clean-up to wait for
                process.kill()
                process.join(5)
    # Let the executor's manager thread notice and close its pipes now: left running, it races
    # the interpreter's exit hook, which then prints a "Bad file descriptor" traceback.
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(10)
        with contextlib.suppress(Exception):  # CPython internals; harmless if they change
            import concurrent.futures.process as futures_process

            futures_process._threads_wakeups.pop(manager, None)


def run_tasks(
    function: Callable[..., Any], tasks: Iterable[tuple[tuple, int]], workers: int, desc: str,
    progress: bool = True, retain_heap: bool = False, total: int | None = None,
) -> None:
    """Run `function(*args)` for every (args, n_records) task, in `workers` processes if > 1.

    Each task writes its own outputs atomically; on any error (or Ctrl-C) queued tasks are
    cancelled and running ones stopped, so what is on disk is only ever whole shards. The bar
    advances by a task's records as soon as that task finishes. `tasks` may be a lazy iterable
    (its arguments built only as tasks are queued) when `total` gives the records for the bar;
    see `map_ordered`.
    """
    for _ in map_ordered(function, tasks, workers, desc, progress, retain_heap, total=total):
        pass


def map_ordered(
    function: Callable[..., Any], tasks: Iterable[tuple[tuple, int]], workers: int, desc: str,
    progress: bool = True, retain_heap: bool = False, ahead: int = 2, total: int | None = None,
) -> Iterator[Any]:
    """`function(*args)` for every (args, n_records) task, results yielded in task order.

    At most `ahead` tasks per worker are queued or held (results waiting for an earlier task),
    and `tasks` is consumed only as they are queued (pass the records' `total` for the bar to
    leave it a lazy iterable), so memory stays bounded whatever the number of tasks. The bar
    moves as tasks finish, in any order; results are yielded in order, so output written from
    them does not depend on `workers`.
    """
    if total is None:
        tasks = list(tasks)
        total = sum(n for _, n in tasks)
        workers = min(workers, len(tasks))
    bar = tqdm(total=total, desc=desc, unit="rec", disable=not progress)
    try:
        if workers <= 1:
            with retained_heap() if retain_heap else contextlib.nullcontext():
                for args, n in tasks:
                    result = function(*args)
                    bar.update(n)
                    yield result
            return
        yield from _pooled(function, iter(tasks), workers, bar, retain_heap, ahead)
    finally:
        bar.close()


def _pooled(
    function: Callable[..., Any], tasks: Iterator[tuple[tuple, int]], workers: int, bar: tqdm,
    retain_heap: bool, ahead: int,
) -> Iterator[Any]:
    first = next(tasks, None)
    if first is None:
        return
    second = next(tasks, None)
    if second is None:  # one task: no pool to start (and nothing to run beside it)
        result = function(*first[0])
        bar.update(first[1])
        yield result
        return
    pending = _chain(first, second, tasks)
    pool = new_pool(workers, retain_heap)
    try:
        queue: deque[tuple[Future, int]] = deque()
        running: set[Future] = set()
        exhausted = False
        limit = max(1, ahead) * workers
        while not exhausted or queue:
            while not exhausted and len(queue) < limit:
                task = next(pending, None)
                if task is None:
                    exhausted = True
                    break
                future = pool.submit(function, *task[0])
                queue.append((future, task[1]))
                running.add(future)
            if running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # re-raises a worker's exception here, stopping the pool
                    bar.update(_records_of(queue, future))
            while queue and queue[0][0].done():
                yield queue.popleft()[0].result()
    except BaseException:
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _chain(first, second, rest: Iterator) -> Iterator:
    yield first
    yield second
    yield from rest


def _records_of(queue: deque[tuple[Future, int]], future: Future) -> int:
    for queued, n in queue:
        if queued is future:
            return n
    return 0
