"""The vectorised paths behind a million-sample loader (issue 19) give what the per-sample paths
gave: rows of numbered samples registered as one array, numbered ids without a string per
sample, and a ``TensorDataset`` gathered a batch at a time equal to the DataLoader's collate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from weightslab.data import NumberedIds, WatchedLoader
from weightslab.experiment import Experiment
from weightslab.table import SampleTable

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache,grpc_server,cli,watchdog,auth,agent,studio,example",
       "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def test_numbered_rows_equal_rows_added_one_by_one() -> None:
    vectorised, reference = SampleTable(), SampleTable()
    for table in (vectorised, reference):
        table.rows("val", ["a", "3"])  # another split first: rows do not start at 0
    batches = [np.array([5, 2, 5, 9, 0]), np.array([2, 7, 7, 1 << 21, 3])]  # repeats, known ids, a far id
    for ids in batches:
        got = vectorised.int_rows("train", ids)
        want = reference.rows("train", [str(v) for v in ids.tolist()])
        assert got.tolist() == want.tolist()
    n = reference.n
    assert vectorised.n == n
    assert vectorised.sample_id[:n].tolist() == reference.sample_id[:n].tolist()
    assert vectorised.int_id[:n].tolist() == reference.int_id[:n].tolist()
    assert vectorised.split[:n].tolist() == reference.split[:n].tolist()
    assert vectorised.split_code[:n].tolist() == reference.split_code[:n].tolist()
    assert vectorised.splits() == reference.splits()
    assert sorted(vectorised._index.items()) == sorted(reference._index.items())
    for sid in ("5", "0", str(1 << 21), "3"):
        assert vectorised._index[("train", sid)] == reference._index[("train", sid)]
    with pytest.raises(KeyError):
        vectorised.rows("train", ["4"], create=False)


def test_numbered_ids_read_like_the_list_of_their_text() -> None:
    ids, listed = NumberedIds(12), [str(i) for i in range(12)]
    assert len(ids) == 12 and list(ids) == listed
    assert ids[0] == "0" and ids[11] == "11" and ids[-1] == "11"
    assert ids[2:5] == listed[2:5] and ids[::4] == listed[::4]
    assert "7" in ids and "12" not in ids and "07" not in ids and 7 not in ids and "-1" not in ids
    with pytest.raises(IndexError):
        ids[12]


def _experiment(tmp_path: Path) -> Experiment:
    return Experiment(kwargs={"root_log_dir": tmp_path / "root"}, environ=ENV)


def test_a_numbered_loader_registers_every_sample_with_its_label(tmp_path: Path) -> None:
    x, y = torch.randn(300, 3), torch.randint(0, 4, (300,))
    exp = _experiment(tmp_path)
    loader = WatchedLoader(exp, torch.utils.data.TensorDataset(x, y), batch_size=32, labels=y.numpy())
    assert isinstance(loader.ids, NumberedIds)
    assert exp.table.n == 300 and loader.rows.tolist() == list(range(300))
    assert exp.table.sample_id[:300].tolist() == [str(i) for i in range(300)]
    assert exp.table.numeric["label"][:300].tolist() == y.double().tolist()
    assert loader.index_of("299") == 299
    with pytest.raises(ValueError, match="not in split"):
        loader.index_of("300")


@pytest.mark.parametrize("workers", [0, 2])
def test_tensor_dataset_batches_equal_the_dataloader_collate(tmp_path: Path, workers: int) -> None:
    """Same batches, value for value and dtype for dtype, as the item-by-item collate, with
    discards between batches honoured; a subclass keeps its own ``__getitem__``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, 3, generator=g)
    y = torch.randint(0, 5, (200,), generator=g)
    w = torch.rand(200, generator=g, dtype=torch.float64)

    class Doubled(torch.utils.data.TensorDataset):
        def __getitem__(self, index: int):  # type: ignore[override]
            a, b, c = super().__getitem__(index)
            return a * 2, b, c

    for dataset, scale in ((torch.utils.data.TensorDataset(x, y, w), 1), (Doubled(x, y, w), 2)):
        exp = _experiment(tmp_path / str(scale))
        loader = WatchedLoader(exp, dataset, batch_size=16, shuffle=True, num_workers=workers, seed=3)
        assert (loader._torch_loader.dataset.tensors is not None) == (scale == 1)
        seen: list[int] = []
        for i, (inputs, ids, labels, weights) in enumerate(loader):
            idx = torch.as_tensor([int(s) for s in ids.tolist()])
            reference = torch.utils.data.default_collate([dataset[j] for j in idx.tolist()])
            for got, want in zip((inputs, labels, weights), reference, strict=True):
                assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)
            assert torch.equal(inputs, x[idx] * scale)
            seen += idx.tolist()
            if i == 0:  # discarded now: never yielded later in this epoch (num_workers=0 fetches lazily)
                exp.edit("discard", ids=[str(v) for v in range(150, 200)], split="train")
        assert len(seen) == len(set(seen))
        if workers == 0:
            later = set(seen[16:])
            assert not later & set(range(150, 200))
        assert not set(seen) - set(range(200))


def test_the_first_epoch_order_drawn_at_registration_is_the_seeded_order(tmp_path: Path) -> None:
    """Drawing the first shuffle ahead changes nothing: epochs follow the seeded generator's
    permutations in turn, and a loader told not to shuffle before its first epoch does not."""
    x = torch.arange(40).float().unsqueeze(1)
    exp = _experiment(tmp_path)
    loader = WatchedLoader(exp, torch.utils.data.TensorDataset(x, torch.zeros(40)), loader_name="a",
                           batch_size=40, shuffle=True, seed=11)
    rng = np.random.default_rng(11)
    for _ in range(3):
        (_, ids, _), = list(loader)
        assert ids.tolist() == rng.permutation(40).tolist()
    plain = WatchedLoader(exp, torch.utils.data.TensorDataset(x, torch.zeros(40)), loader_name="b",
                          batch_size=40, shuffle=True, seed=11)
    plain.shuffle = False
    (_, ids, _), = list(plain)
    assert ids.tolist() == list(range(40))


def _mixed_table() -> tuple[SampleTable, list[str], list[str]]:
    table = SampleTable()
    table.int_rows("train", np.arange(3000, dtype=np.int64)[::-1])
    texts = ["img-7", "007", "-3", " 5", "b", "a10", "a9", str(1 << 70)]
    table.rows("val", texts + ["12", "3"])
    splits = ["train"] * 3000 + ["val"] * (len(texts) + 2)
    ids = [str(v) for v in range(2999, -1, -1)] + texts + ["12", "3"]
    return table, ids, splits


def test_the_id_column_reads_like_the_text_of_every_id() -> None:
    from weightslab.query import sample_id_rank

    table, ids, _ = _mixed_table()
    n = table.n
    assert table.sample_id[:n].tolist() == ids and table.sample_id[:n].dtype == object
    assert all(type(s) is str for s in table.sample_id[:n].tolist())
    rows = np.array([3001, 0, 3007, 2999, 3009])
    assert table.sample_id[rows].tolist() == [ids[r] for r in rows.tolist()]
    assert table.sample_id[3000] == "img-7" and table.sample_id[5] == "2994"
    assert table.sample_id[n] is None  # room beyond the rows, as an unset object array reads
    assert np.asarray(table.sample_id)[:n].tolist() == ids
    frame = table.frame()
    assert frame.ids_at(rows).tolist() == [ids[r] for r in rows.tolist()] and frame.ids_at(3000) == "img-7"
    assert frame.id_rank().tolist() == sample_id_rank(np.array(ids, dtype=object)).tolist()
    assert frame.sample_id.tolist() == ids and len(frame) == n
    assert table.frame(copy=True).sample_id.tolist() == ids
    assert table.frame(rows=rows).sample_id.tolist() == [ids[r] for r in rows.tolist()]
    decimal = SampleTable()
    decimal.int_rows("train", np.array([10, 2, 33, 2]))
    assert decimal.frame().id_rank().tolist() == sample_id_rank(np.array(["10", "2", "33"], dtype=object)).tolist()


def test_a_page_of_a_large_numbered_table_spells_only_its_own_ids(tmp_path: Path) -> None:
    """A query that neither filters nor sorts on sample_id reads the ids of its page only: no
    string per row is made (at 200k rows they would be ~12 MB); filtering on the id still works."""
    import tracemalloc

    from weightslab.operations.samples import QuerySamplesRequest, query_samples

    exp = _experiment(tmp_path)
    n = 200_000
    exp.register_samples("train", NumberedIds(n))
    exp.table.set_signal("loss", np.arange(n), np.linspace(0.0, 2.0, n))
    query_samples(exp, QuerySamplesRequest(query="loss > 1 sort by loss desc limit 5"))  # frame built
    exp.table.set_signal("loss", np.arange(10), np.full(10, 9.0))  # the table changed, and a new frame
    exp.table.set_tag("checked", np.arange(3), True)  # is built (a new column)
    tracemalloc.start()
    try:
        page = query_samples(exp, QuerySamplesRequest(query="loss > 1 sort by loss desc limit 5"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert list(page.sample_ids) == [str(i) for i in range(5)] and page.total == n // 2 + 10
    assert peak < 8_000_000, f"a page query allocated {peak} bytes"  # spelling every id: ~30 MB
    by_id = query_samples(exp, QuerySamplesRequest(query="sample_id == 199999"))
    assert list(by_id.sample_ids) == ["199999"]
    tail = query_samples(exp, QuerySamplesRequest(query="sort by sample_id desc limit 2"))
    assert list(tail.sample_ids) == ["199999", "199998"]


def test_a_page_of_a_large_table_lists_no_row_of_the_whole_result(tmp_path: Path) -> None:
    """A filtered, sorted page reads the table a block of rows at a time: no index of every match,
    no sort key of every match, no int64 split code per row (the first query after a change paid
    for ~22 MB of fresh pages at 1M rows). Split counts follow a discard at once."""
    import tracemalloc

    from weightslab.operations.samples import QuerySamplesRequest, list_splits, query_samples

    exp = _experiment(tmp_path)
    n = 400_000
    exp.register_samples("train", NumberedIds(n))
    exp.register_samples("test", NumberedIds(1000))  # registered after train: renumbered codes
    rng = np.random.default_rng(0)
    loss = rng.random(n + 1000) * 3
    exp.table.set_signal("loss", np.arange(n + 1000), loss)
    query = "loss > 1 sort by loss desc limit 20"
    query_samples(exp, QuerySamplesRequest(query=query))
    exp.table.set_signal("loss", np.arange(10), np.full(10, 9.0))  # the table changed
    tracemalloc.start()
    try:
        page = query_samples(exp, QuerySamplesRequest(query=query))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    loss[:10] = 9.0
    matches = np.flatnonzero(loss > 1)
    want = matches[np.argsort(-loss[matches], kind="stable")][:20]
    assert page.rows.tolist() == want.tolist() and page.total == len(matches)
    assert peak < 6 * n, f"a page query allocated {peak} bytes ({peak / n:.1f} a row)"  # was ~25 bytes a row
    assert {s.name: (s.samples, s.discarded) for s in list_splits(exp)} == {"train": (n, 0), "test": (1000, 0)}
    exp.table.set_discarded(np.arange(n - 3, n + 2), True)
    assert {s.name: (s.samples, s.discarded) for s in list_splits(exp)} == {"train": (n, 3), "test": (1000, 2)}
    by_split = query_samples(exp, QuerySamplesRequest(query="split == 'test' sort by loss limit 3"))
    test_rows = np.arange(n, n + 1000)
    assert by_split.rows.tolist() == test_rows[np.argsort(loss[test_rows], kind="stable")][:3].tolist()


def test_a_tuple_of_numpy_arrays_yields_its_rows_by_index(tmp_path: Path) -> None:
    """``(x, y)`` arrays: every batch is ``x[idx], y[idx]`` for the ids it carries (the in-process
    twin of the numpy-only test, which runs in a subprocess a mutation run cannot reach)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)), rng.integers(0, 4, 50)
    exp = _experiment(tmp_path)
    loader = WatchedLoader(exp, (x, y), batch_size=8, shuffle=True, seed=2)
    seen = []
    for xb, ids, yb in loader:
        assert isinstance(xb, np.ndarray) and isinstance(ids, np.ndarray)
        assert np.array_equal(xb, x[ids]) and np.array_equal(yb, y[ids])
        seen += ids.tolist()
    assert sorted(seen) == list(range(50))
