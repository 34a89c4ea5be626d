"""The build's one executor: bars that move as tasks finish, results in task order."""

from __future__ import annotations

import time

from ecg_instruct.build import executor


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class _Bar:
    """Records when the bar moved (stands in for tqdm)."""

    updates: list[tuple[float, int]] = []

    def __init__(self, total: int, **kwargs) -> None:
        self.total = total

    def update(self, n: int) -> None:
        _Bar.updates.append((time.monotonic(), n))

    def close(self) -> None:
        pass


def test_the_bar_moves_as_each_task_finishes_with_two_workers(monkeypatch):
    """With 2 workers the bar used to sit at 0 until the last task ended."""
    monkeypatch.setattr(executor, "tqdm", _Bar)
    _Bar.updates = []
    tasks = [((0.0,), 1), ((2.0,), 10), ((0.0,), 100)]
    started = time.monotonic()
    results = list(executor.map_ordered(_sleep, tasks, workers=2, desc="test"))
    ended = time.monotonic()
    assert results == [0.0, 2.0, 0.0]  # in task order, whatever order they finished in
    assert sorted(n for _, n in _Bar.updates) == [1, 10, 100]
    first_two = sorted(t for t, n in _Bar.updates if n in (1, 100))
    assert first_two[-1] - started < ended - started - 1.0  # long before the slow task ended


def test_lazy_tasks_are_taken_only_as_workers_free_up(monkeypatch):
    monkeypatch.setattr(executor, "tqdm", _Bar)
    taken = []

    def tasks():
        for number in range(20):
            taken.append(number)
            yield (0.0,), 1

    results = executor.map_ordered(_sleep, tasks(), workers=2, desc="test", total=20, ahead=2)
    next(results)
    assert len(taken) <= 2 * 2 + 1  # bounded look-ahead: memory does not grow with the tasks
    assert len(list(results)) == 19
