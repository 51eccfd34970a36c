"""The Delta table layer: one contract for both backends (native = delta-spark, embedded = Spark + delta-rs),
checked against delta-rs as an independent reader, plus tables written by one backend and read or appended by
the other."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from jobs.core.config import TableSettings
from jobs.core.tables import ConcurrentWriteError, EmbeddedBackend, TableError, TableStore, open_store

SCHEMA = "id long, part string, score double, flag boolean, seen timestamp, tags array<string>"


def _rows(start: int, count: int, part: str | None = "a") -> list[tuple]:
    return [
        (i, part, i / 10.0, i % 2 == 0, dt.datetime(2024, 1, 1 + i % 28, 12, 0), [f"t{i}", "x"])
        for i in range(start, start + count)
    ]


BACKENDS = ("embedded", "native")


@pytest.fixture(params=BACKENDS)
def store(spark, tmp_path: Path, request: pytest.FixtureRequest) -> TableStore:
    return open_store(spark, str(tmp_path), TableSettings(backend=request.param))


@pytest.fixture()
def embedded(spark, tmp_path: Path) -> TableStore:
    """For the embedded backend's own failure points (its staging and delta-rs commit)."""
    return open_store(spark, str(tmp_path), TableSettings(backend="embedded"))


def _stores(spark, root: Path) -> dict[str, TableStore]:
    return {backend: open_store(spark, str(root), TableSettings(backend=backend)) for backend in BACKENDS}


def _delta_rs_rows(path: str, version: int | None = None) -> list[dict]:
    table = pa.table(DeltaTable(path, version=version).to_pyarrow_table())
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def _spark_rows(frame) -> list[dict]:
    return sorted((row.asDict() for row in frame.collect()), key=lambda row: row["id"])


def _data_files(path: str) -> set[str]:
    found = set()
    for folder, dirs, names in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith("_")]
        found |= {os.path.relpath(os.path.join(folder, n), path) for n in names if n.endswith(".parquet")}
    return found


def test_auto_picks_native_when_the_connector_loads_and_embedded_without_it(spark, tmp_path, monkeypatch):
    assert open_store(spark, str(tmp_path), TableSettings()).backend.name == "native"
    monkeypatch.setattr("jobs.core.spark.delta_connector_available", lambda session: False)
    assert open_store(spark, str(tmp_path), TableSettings()).backend.name == "embedded"
    with pytest.raises(TableError, match="delta-spark connector is not on the classpath"):
        open_store(spark, str(tmp_path), TableSettings(backend="native"))


def test_written_table_opens_with_delta_rs_and_holds_exactly_what_spark_wrote(spark, store):
    frame = spark.createDataFrame(_rows(0, 25) + _rows(25, 5, "b") + _rows(30, 3, None), SCHEMA)
    result = store.write(frame, "t", mode="overwrite", run_id="run-1", partition_by=["part"])
    assert (result.version, result.skipped, result.rows_added) == (0, False, 33)

    expected = _spark_rows(frame)
    from_delta_rs = _delta_rs_rows(store.path("t"))
    assert [r["id"] for r in from_delta_rs] == [r["id"] for r in expected]
    for ours, theirs in zip(expected, from_delta_rs, strict=True):
        assert theirs["part"] == ours["part"]
        assert theirs["score"] == ours["score"] and theirs["flag"] == ours["flag"]
        assert theirs["tags"] == ours["tags"]
        assert theirs["seen"].replace(tzinfo=None) == ours["seen"]
    assert DeltaTable(store.path("t")).metadata().partition_columns == ["part"]
    assert _spark_rows(store.read("t")) == expected


def test_add_actions_carry_sizes_partition_values_and_stats(spark, store):
    frame = spark.createDataFrame(_rows(0, 10) + _rows(10, 4, "b"), SCHEMA).repartition(1)
    store.write(frame, "t", mode="overwrite", run_id="r", partition_by=["part"])
    actions = pa.table(DeltaTable(store.path("t")).get_add_actions(flatten=True)).to_pylist()
    by_part = {a["partition.part"]: a for a in actions}
    assert set(by_part) == {"a", "b"}
    assert by_part["a"]["num_records"] == 10 and by_part["b"]["num_records"] == 4
    assert by_part["a"]["min.id"] == 0 and by_part["a"]["max.id"] == 9
    assert by_part["b"]["min.id"] == 10 and by_part["b"]["max.id"] == 13
    assert by_part["a"]["null_count.score"] == 0
    for action in actions:
        on_disk = os.path.getsize(os.path.join(store.path("t"), action["path"]))
        assert action["size_bytes"] == on_disk


def test_versions_history_and_time_travel(spark, store):
    first = spark.createDataFrame(_rows(0, 3), SCHEMA)
    second = spark.createDataFrame(_rows(3, 2), SCHEMA)
    store.write(first, "t", mode="overwrite", run_id="r1")
    store.write(second, "t", mode="append", run_id="r2")
    store.write(second, "t", mode="overwrite", run_id="r3")

    history = store.history("t")
    assert [h.version for h in history] == [0, 1, 2]
    assert [h.run_id for h in history] == ["r1", "r2", "r3"]
    assert [r["id"] for r in _spark_rows(store.read("t", version=0))] == [0, 1, 2]
    assert [r["id"] for r in _spark_rows(store.read("t", version=1))] == [0, 1, 2, 3, 4]
    assert [r["id"] for r in _spark_rows(store.read("t"))] == [3, 4]
    assert [r["id"] for r in _delta_rs_rows(store.path("t"), version=1)] == [0, 1, 2, 3, 4]


def test_replace_partitions_only_touches_written_partitions(spark, store):
    store.write(spark.createDataFrame(_rows(0, 3, "a") + _rows(3, 3, "b"), SCHEMA), "t",
                mode="overwrite", run_id="r1", partition_by=["part"])
    store.write(spark.createDataFrame(_rows(100, 2, "b") + _rows(200, 1, "c"), SCHEMA), "t",
                mode="replace_partitions", run_id="r2", partition_by=["part"])
    rows = _delta_rs_rows(store.path("t"))
    assert [(r["id"], r["part"]) for r in rows] == [(0, "a"), (1, "a"), (2, "a"), (100, "b"), (101, "b"),
                                                   (200, "c")]


def test_awkward_partition_values_round_trip(spark, store):
    values = ["a b", "x:y", "50%", "slash/inside", None, "ünï"]
    frame = spark.createDataFrame([(i, v, 0.0, True, None, []) for i, v in enumerate(values)], SCHEMA)
    store.write(frame, "t", mode="overwrite", run_id="r", partition_by=["part"])
    assert [r["part"] for r in _delta_rs_rows(store.path("t"))] == values
    assert [r["part"] for r in _spark_rows(store.read("t"))] == values


def test_retried_commit_of_the_same_run_is_skipped(spark, store):
    frame = spark.createDataFrame(_rows(0, 4), SCHEMA)
    first = store.write(frame, "t", mode="append", run_id="nightly-1")
    retry = store.write(frame, "t", mode="append", run_id="nightly-1")
    assert retry.skipped and retry.version == first.version == 0
    assert len(_delta_rs_rows(store.path("t"))) == 4
    other_tag = store.write(frame, "t", mode="append", run_id="nightly-1", tag="second-batch")
    assert not other_tag.skipped and len(_delta_rs_rows(store.path("t"))) == 8
    assert DeltaTable(store.path("t")).transaction_version("curate/nightly-1/t") == 1


def test_failure_between_write_and_commit_leaves_no_new_version(spark, embedded, monkeypatch):
    embedded.write(spark.createDataFrame(_rows(0, 3), SCHEMA), "t", mode="overwrite", run_id="r1")
    files_before = _data_files(embedded.path("t"))

    def crash(*args, **kwargs):
        raise RuntimeError("injected: driver lost before commit")

    monkeypatch.setattr(EmbeddedBackend, "_commit", crash)
    with pytest.raises(RuntimeError, match="injected"):
        embedded.write(spark.createDataFrame(_rows(10, 5), SCHEMA), "t", mode="overwrite", run_id="r2")

    assert embedded.version("t") == 0
    assert [r["id"] for r in _delta_rs_rows(embedded.path("t"))] == [0, 1, 2]
    assert _data_files(embedded.path("t")) == files_before  # the moved files were taken back
    assert not os.path.exists(os.path.join(embedded.path("t"), "_staging"))

    monkeypatch.undo()  # the retry of the same run now commits
    retry = embedded.write(spark.createDataFrame(_rows(10, 5), SCHEMA), "t", mode="overwrite", run_id="r2")
    assert retry.version == 1
    assert [r["id"] for r in _delta_rs_rows(embedded.path("t"))] == [10, 11, 12, 13, 14]


def test_hard_crash_before_commit_leaves_files_invisible(spark, embedded, monkeypatch):
    """Even when clean-up cannot run (process killed), uncommitted files are not part of any version."""
    embedded.write(spark.createDataFrame(_rows(0, 2), SCHEMA), "t", mode="overwrite", run_id="r1")
    monkeypatch.setattr(EmbeddedBackend, "_commit", lambda *a, **k: (_ for _ in ()).throw(SystemExit(9)))
    monkeypatch.setattr(EmbeddedBackend, "_discard", lambda self, written: None)
    with pytest.raises(SystemExit):
        embedded.write(spark.createDataFrame(_rows(50, 3), SCHEMA), "t", mode="append", run_id="r2")
    assert embedded.version("t") == 0
    assert [r["id"] for r in _delta_rs_rows(embedded.path("t"))] == [0, 1]
    assert [r["id"] for r in _spark_rows(embedded.read("t"))] == [0, 1]


def test_empty_frame_creates_a_readable_empty_table(spark, store):
    store.write(spark.createDataFrame([], SCHEMA), "t", mode="overwrite", run_id="r")
    assert DeltaTable(store.path("t")).version() == 0
    assert store.read("t").count() == 0
    assert store.read("t").schema.fieldNames() == ["id", "part", "score", "flag", "seen", "tags"]


def test_write_rejects_bad_requests(spark, store):
    frame = spark.createDataFrame(_rows(0, 1), SCHEMA)
    with pytest.raises(TableError, match="unknown write mode"):
        store.write(frame, "t", mode="upsert", run_id="r")  # type: ignore[arg-type]
    with pytest.raises(TableError, match="needs partition columns"):
        store.write(frame, "t", mode="replace_partitions", run_id="r")
    store.write(frame, "t", mode="overwrite", run_id="r", partition_by=["part"])
    with pytest.raises(TableError, match="partitioned by"):
        store.write(frame, "t", mode="append", run_id="r2")
    with pytest.raises(TableError, match="no Delta table"):
        store.read("missing")


# ----------------------------------------------------------------------------------------- keyed writes

KEYED = "doc_id string, input_file string, text string"


def _keyed(spark, rows: list[tuple]) -> object:
    return spark.createDataFrame(rows, KEYED)


def _table_rows(path: str) -> list[tuple]:
    table = pa.table(DeltaTable(path).to_pyarrow_table())
    return sorted(zip(*(table.column(name).to_pylist() for name in ("doc_id", "input_file", "text")),
                      strict=True))


def test_merge_inserts_only_absent_keys_and_a_retry_adds_nothing(spark, store):
    store.merge(_keyed(spark, [("a", "f1", "x"), ("b", "f1", "y")]), "k", key=["doc_id"], run_id="r1")
    result = store.merge(_keyed(spark, [("b", "f2", "changed?"), ("c", "f2", "z")]), "k", key=["doc_id"],
                         run_id="r2")
    assert result.rows_added == 1
    assert _table_rows(store.path("k")) == [("a", "f1", "x"), ("b", "f1", "y"), ("c", "f2", "z")]
    again = store.merge(_keyed(spark, [("d", "f3", "w")]), "k", key=["doc_id"], run_id="r2")
    assert again.skipped and len(_table_rows(store.path("k"))) == 3  # same run and tag: committed already


def test_merge_with_replace_swaps_one_files_rows_and_keeps_the_rest_of_its_data_files(spark, store):
    first = _keyed(spark, [("a", "f1", "old a"), ("b", "f1", "old b"), ("c", "f2", "keep c")]).repartition(1)
    store.merge(first, "k", key=["doc_id"], run_id="r1")  # one data file holds rows of f1 and f2
    changed = _keyed(spark, [("a", "f1", "new a"), ("d", "f1", "new d")])
    store.merge(changed, "k", key=["doc_id"], run_id="r2", replace=("input_file", ["f1"]))
    assert _table_rows(store.path("k")) == [("a", "f1", "new a"), ("c", "f2", "keep c"), ("d", "f1", "new d")]
    assert store.history("k")[-1].run_id == "r2"


def test_merge_that_changes_nothing_commits_nothing(spark, store):
    store.merge(_keyed(spark, [("a", "f1", "x")]), "k", key=["doc_id"], run_id="r1")
    result = store.merge(_keyed(spark, [("a", "f1", "x")]), "k", key=["doc_id"], run_id="r2")
    assert result.rows_added == 0 and store.version("k") == 0


def test_merge_replans_when_another_writer_commits_first(spark, embedded, monkeypatch):
    embedded.merge(_keyed(spark, [("a", "f1", "x")]), "k", key=["doc_id"], run_id="r1")
    real_commit = EmbeddedBackend._commit
    raced: list[int] = []

    def commit_after_a_rival(self, table, uri, actions, mode, schema, partition_by, properties):
        if not raced:  # a rival run inserts the same new key between our plan and our commit
            raced.append(1)
            embedded.merge(_keyed(spark, [("b", "f2", "rival")]), "k", key=["doc_id"], run_id="rival")
        return real_commit(self, table, uri, actions, mode, schema, partition_by, properties)

    monkeypatch.setattr(EmbeddedBackend, "_commit", commit_after_a_rival)
    ours = _keyed(spark, [("b", "f2", "ours"), ("c", "f2", "ours")])
    embedded.merge(ours, "k", key=["doc_id"], run_id="r2")
    assert _table_rows(embedded.path("k")) == [("a", "f1", "x"), ("b", "f2", "rival"), ("c", "f2", "ours")]


def test_plain_overwrite_on_a_moved_snapshot_fails_instead_of_keeping_both(spark, embedded, monkeypatch):
    embedded.write(_keyed(spark, [("a", "f1", "x")]), "k", mode="overwrite", run_id="r1")
    real_commit = EmbeddedBackend._commit

    def commit_after_a_rival(self, *args):
        monkeypatch.setattr(EmbeddedBackend, "_commit", real_commit)
        embedded.write(_keyed(spark, [("r", "f9", "rival")]), "k", mode="append", run_id="rival")
        return real_commit(self, *args)

    monkeypatch.setattr(EmbeddedBackend, "_commit", commit_after_a_rival)
    with pytest.raises(ConcurrentWriteError, match="another writer committed first"):
        embedded.write(_keyed(spark, [("b", "f1", "y")]), "k", mode="overwrite", run_id="r2")
    assert _table_rows(embedded.path("k")) == [("a", "f1", "x"), ("r", "f9", "rival")]
    assert not os.path.exists(os.path.join(embedded.path("k"), "_staging"))


def test_concurrent_merges_of_the_same_keys_leave_each_key_once(spark, store):
    from concurrent.futures import ThreadPoolExecutor

    rows = [(f"d{i:03d}", "f1", "t") for i in range(60)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda run: store.merge(_keyed(spark, rows), "k", key=["doc_id"],
                                                        run_id=f"run-{run}"), range(3)))
    ids = [row[0] for row in _table_rows(store.path("k"))]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 60
    assert sum(result.rows_added or 0 for result in results) == 60


# ------------------------------------------------------------------------------------- both backends

def test_a_write_whose_job_fails_leaves_no_new_version(spark, store):
    store.write(spark.createDataFrame(_rows(0, 3), SCHEMA), "t", mode="overwrite", run_id="r1")

    @F.udf("long")
    def fail_on_the_last_row(value):
        if value == 14:
            raise ValueError("injected: a task fails after others wrote their files")
        return value

    doomed = spark.createDataFrame(_rows(10, 5), SCHEMA).repartition(2)
    doomed = doomed.withColumn("id", fail_on_the_last_row("id"))
    with pytest.raises(Exception, match="injected"):
        store.write(doomed, "t", mode="overwrite", run_id="r2")
    assert store.version("t") == 0
    assert [r["id"] for r in _delta_rs_rows(store.path("t"))] == [0, 1, 2]
    assert [r["id"] for r in _spark_rows(store.read("t"))] == [0, 1, 2]


def test_a_relative_output_root_works(spark, tmp_path, monkeypatch, store):
    monkeypatch.chdir(tmp_path)
    relative = open_store(spark, "out/local", TableSettings(backend=store.backend.name))
    relative.write(spark.createDataFrame(_rows(0, 2), SCHEMA), "t", mode="overwrite", run_id="r1",
                   partition_by=["part"])
    relative.merge(_keyed(spark, [("a", "f1", "x")]), "k", key=["doc_id"], run_id="r1")
    relative.write(spark.createDataFrame(_rows(2, 1), SCHEMA), "t", mode="append", run_id="r2",
                   partition_by=["part"])
    assert [r["id"] for r in _delta_rs_rows(str(tmp_path / "out/local/tables/t"))] == [0, 1, 2]
    assert relative.history("t")[-1].run_id == "r2" and relative.read("k").count() == 1


def test_maintenance_compacts_small_files_and_vacuums_replaced_ones(spark, store):
    for run in range(4):  # four nightly appends, one small file each
        store.write(spark.createDataFrame(_rows(run * 3, 3), SCHEMA).repartition(1), "t", mode="append",
                    run_id=f"night-{run}")
    assert len(DeltaTable(store.path("t")).file_uris()) == 4
    done = store.maintain("t", retention_hours=0, run_id="maint")
    assert (done.files_compacted, done.files_written, done.files_vacuumed) == (4, 1, 4)
    assert len(DeltaTable(store.path("t")).file_uris()) == 1
    assert len(_data_files(store.path("t"))) == 1  # the four replaced files are gone from storage
    assert [r["id"] for r in _spark_rows(store.read("t"))] == list(range(12))
    assert store.history("t")[-1].version == done.version
    kept = store.maintain("t", retention_hours=168, run_id="maint-2")  # nothing small, nothing old
    assert (kept.files_compacted, kept.files_vacuumed) == (0, 0)


@pytest.mark.parametrize("writer,reader", [("native", "embedded"), ("embedded", "native")])
def test_a_table_written_by_one_backend_reads_exactly_in_the_other_and_in_delta_rs(spark, tmp_path, writer,
                                                                                  reader):
    stores = _stores(spark, tmp_path)
    frame = spark.createDataFrame(_rows(0, 6) + _rows(6, 3, "b") + _rows(9, 2, None), SCHEMA)
    stores[writer].write(frame, "t", mode="overwrite", run_id="w1", partition_by=["part"])
    expected = _spark_rows(frame)
    assert _spark_rows(stores[reader].read("t")) == expected
    from_delta_rs = _delta_rs_rows(stores[writer].path("t"))
    assert [(r["id"], r["part"], r["tags"]) for r in from_delta_rs] == [(r["id"], r["part"], r["tags"])
                                                                         for r in expected]
    assert [(h.version, h.run_id) for h in stores[reader].history("t")] == [(0, "w1")]


def test_a_table_appended_by_both_backends_in_turn_has_every_row_once_and_one_history(spark, tmp_path):
    stores = _stores(spark, tmp_path)
    order = ["native", "embedded", "native", "embedded"]
    for turn, backend in enumerate(order):
        stores[backend].write(spark.createDataFrame(_rows(turn * 10, 2), SCHEMA), "t", mode="append",
                              run_id=f"turn-{turn}")
    stores["native"].merge(_keyed_like(spark, [(1, "x"), (100, "merged")]), "k", key=["id"], run_id="m1")
    stores["embedded"].merge(_keyed_like(spark, [(100, "again"), (101, "merged")]), "k", key=["id"],
                             run_id="m2")
    want = [0, 1, 10, 11, 20, 21, 30, 31]
    for backend in BACKENDS:
        assert [r["id"] for r in _spark_rows(stores[backend].read("t"))] == want
        assert [(h.version, h.run_id) for h in stores[backend].history("t")] == [
            (turn, f"turn-{turn}") for turn in range(len(order))]
        assert sorted(r["id"] for r in stores[backend].read("k").collect()) == [1, 100, 101]
    assert [r["id"] for r in _delta_rs_rows(stores["native"].path("t"))] == want
    assert DeltaTable(stores["native"].path("t")).transaction_version("curate/turn-2/t") == 1


def _keyed_like(spark, rows: list[tuple]) -> object:
    return spark.createDataFrame(rows, "id long, note string")


def test_native_overwrite_on_a_moved_snapshot_fails_instead_of_keeping_both(spark, tmp_path):
    """A rival append commits while our overwrite's job runs: Delta's conflict check refuses our commit."""
    native = _stores(spark, tmp_path)["native"]
    native.write(_keyed(spark, [("a", "f1", "x")]), "k", mode="overwrite", run_id="r1")
    started, rival_done = tmp_path / "started", tmp_path / "rival-done"

    @F.udf("string")
    def wait_for_the_rival(value):
        import os as inner_os
        import time as inner_time

        open(str(started), "w").close()
        deadline = inner_time.time() + 60
        while not inner_os.path.exists(str(rival_done)) and inner_time.time() < deadline:
            inner_time.sleep(0.05)
        return value

    def rival() -> None:
        while not started.exists():
            time.sleep(0.05)
        native.write(_keyed(spark, [("r", "f9", "rival")]), "k", mode="append", run_id="rival")
        rival_done.touch()

    thread = threading.Thread(target=rival)
    thread.start()
    slow = _keyed(spark, [("b", "f1", "y")]).coalesce(1).withColumn("text", wait_for_the_rival("text"))
    with pytest.raises(ConcurrentWriteError, match="another writer committed first"):
        native.write(slow, "k", mode="overwrite", run_id="r2")
    thread.join()
    assert _table_rows(native.path("k")) == [("a", "f1", "x"), ("r", "f9", "rival")]
