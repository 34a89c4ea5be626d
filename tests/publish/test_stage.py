"""The publish stage: which rows go in which file, and a build that publishes nothing."""

from __future__ import annotations

import pytest

from ecg_instruct.publish.stage import _file_plan


def test_files_take_rows_across_shards_in_order():
    kept = [["a", "b", "c"], [], ["d", "e"], ["f"]]
    assert _file_plan(kept, 2) == [[(0, 0, 2)], [(0, 2, 3), (2, 0, 1)], [(2, 1, 2), (3, 0, 1)]]
    assert _file_plan(kept, 10) == [[(0, 0, 3), (2, 0, 2), (3, 0, 1)]]
    assert _file_plan([[], []], 10) == []


@pytest.mark.slow
def test_a_build_that_publishes_nothing_prints_the_rejects_summary(
    tmp_path_factory, tmp_path, capsys,
):
    """"see the rejects summary above" used to point at nothing (issue 14): the one-line error
    now carries the reasons itself (the CLI prints no summary table on an error)."""
    from buildkit import quick_recipe, run_build, sample_mirror

    from ecg_instruct.errors import UserError

    recipe = quick_recipe(tmp_path, signals__duration_s=20)  # every 10 s record: wrong length
    with pytest.raises(UserError, match=r"no record survived the build \(rejected: wrong_length \d+"):
        run_build(sample_mirror(tmp_path_factory), tmp_path / "meit", recipe)


@pytest.mark.parametrize("statistics", [True, False])
def test_rows_with_ids_reads_the_rows_of_those_ids(tmp_path, statistics):
    """A publish task reads its records' reports and messages from the id-sorted work files:
    exactly the rows of its ids, in file order, whether or not the file has row-group
    statistics to skip the others with (work files of older versions have none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecg_instruct.publish.stage import rows_with_ids

    ids = [f"mimic/{40000000 + i}" for i in range(5000)]
    path = tmp_path / "reports.parquet"
    pq.write_table(pa.table({"id": ids, "report": [f"r{i}" for i in range(5000)]}), path,
                   row_group_size=256, write_statistics=statistics)
    wanted = [ids[i] for i in (4999, 17, 18, 2600, 255, 256)]
    got = rows_with_ids(path, pa.array(wanted, pa.string()))
    assert got.column("id").to_pylist() == sorted(wanted)
    assert got.column("report").to_pylist() == [f"r{ids.index(i)}" for i in sorted(wanted)]
    assert rows_with_ids(path, pa.array(["ptbxl/1"], pa.string())).num_rows == 0
    assert rows_with_ids(path, pa.array([], pa.string())).column_names == ["id", "report"]


def test_instruction_examples_are_ordered_a_row_group_at_a_time(tmp_path):
    """`data/instructions/` is written from one row group of examples at a time: the batches,
    one after the other, are the published records' examples in (id, task order, example
    number) order, also when a record's examples straddle row groups."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ecg_instruct.publish.instructions import _order, _ordered_batches

    tasks = ["report", "diagnosis", "rhythm"]
    rows = []
    for record in range(40):
        for k, task in enumerate(reversed(tasks)):  # written in another order than the recipe's
            for n in (1, 0):
                rows.append({"example_id": f"ptbxl/{record:05d}/{task}/{n}",
                             "id": f"ptbxl/{record:05d}", "task": task, "k": k})
    table = pa.Table.from_pylist(rows)
    path = tmp_path / "instruct_examples.parquet"
    pq.write_table(table, path, row_group_size=7)  # 7 rows: groups end inside records
    published = pa.array([f"ptbxl/{r:05d}" for r in range(40) if r % 3], pa.string())
    batches = list(_ordered_batches(path, published, tasks))
    assert len(batches) > 5
    got = pa.concat_tables(batches)
    expected = _order(table.filter(pc.is_in(table.column("id"), value_set=published)),
                      tasks)
    assert got.to_pylist() == expected.to_pylist()
    assert got.column("example_id").to_pylist()[:3] == [
        "ptbxl/00001/report/0", "ptbxl/00001/report/1", "ptbxl/00001/diagnosis/0"]
