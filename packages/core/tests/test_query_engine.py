"""Semantics of the query engine: filters, sorting, paging, top-k, groups, histograms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from weightslab.query import (
    Frame,
    Group,
    Query,
    QueryError,
    QueryTypeError,
    SortKey,
    UnknownColumnError,
    aggregate,
    filter_mask,
    grouping,
    histogram_by_position,
    histogram_by_value,
    ordered_indices,
    ordering,
    run_query,
    sample_id_rank,
    select,
    sort_indices,
    top_k,
)

NAN = float("nan")


def obj(*values: object) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


@pytest.fixture
def frame() -> Frame:
    #  row  id       split  disc  loss  label name     margin noisy quality
    #  0    "10"     train  F     0.5   1     cat_1    0.1    T     blurry
    #  1    "2"      train  F     nan   2     dog      -0.2   F     None
    #  2    "1"      val    T     2.5   1     None     0.3    T     dark
    #  3    "img10"  val    F     3.0   3     Cat      nan    F     blurry
    #  4    "img2"   test   F     1.0   nan   bird     -1.0   F     None
    #  5    "a"      train  T     1.5   2     cat      0.0    F     None
    return Frame(
        sample_id=obj("10", "2", "1", "img10", "img2", "a"),
        split=obj("train", "train", "val", "val", "test", "train"),
        discarded=np.array([False, False, True, False, False, True]),
        columns={
            "loss": np.array([0.5, NAN, 2.5, 3.0, 1.0, 1.5]),
            "label": np.array([1, 2, 1, 3, NAN, 2], dtype=float),
            "name": obj("cat_1", "dog", None, "Cat", "bird", "cat"),
            "margin": np.array([0.1, -0.2, 0.3, NAN, -1.0, 0.0]),
        },
        tags={"noisy": np.array([True, False, True, False, False, False])},
        categories={"quality": obj("blurry", None, "dark", "blurry", None, None)},
    )


FILTER_CASES = [
    ("loss > 1", [2, 3, 5]),
    ("loss >= 1", [2, 3, 4, 5]),
    ("loss < 1", [0]),
    ("loss <= 1", [0, 4]),
    ("loss == 2.5", [2]),
    ("loss = 2.5", [2]),
    ("loss != 2.5", [0, 3, 4, 5]),  # NaN never matches, not even !=
    ("not loss == 2.5", [0, 1, 3, 4, 5]),  # not = complement: includes the NaN row
    ("loss > 100", []),
    ("loss between 1 and 2.5", [2, 4, 5]),
    ("loss not between 1 and 2.5", [0, 1, 3]),
    ("loss is null", [1]),
    ("loss is not null", [0, 2, 3, 4, 5]),
    ("label == 1", [0, 2]),
    ("label == 1.0", [0, 2]),
    ("label in (1, 3)", [0, 2, 3]),
    ("label not in (1, 3)", [1, 4, 5]),
    ("label in ()", []),
    ("margin == 0", [5]),
    ("margin < 0", [1, 4]),
    ('name contains "cat"', [0, 5]),
    ('name icontains "cat"', [0, 3, 5]),
    ('name contains ""', [0, 1, 3, 4, 5]),
    ('name == "dog"', [1]),
    ('name != "dog"', [0, 3, 4, 5]),  # None never matches
    ('name in ("dog", "bird", "x", "y", "z", "cat")', [1, 4, 5]),  # > 4 values: set path
    ("name is null", [2]),
    ("name is not null", [0, 1, 3, 4, 5]),
    ("has:noisy", [0, 2]),
    ("not has:noisy", [1, 3, 4, 5]),
    ("not (has:noisy)", [1, 3, 4, 5]),
    ("has:never_used", []),
    ("not has:never_used", [0, 1, 2, 3, 4, 5]),
    ("tag:noisy", [0, 2]),
    ("tag:noisy == false", [1, 3, 4, 5]),
    ('tag:quality == "blurry"', [0, 3]),
    ('tag:quality != "blurry"', [2]),
    ('tag:quality in ("dark", "blurry")', [0, 2, 3]),
    ("tag:quality is null", [1, 4, 5]),
    ('split == "train"', [0, 1, 5]),
    ('split != "train"', [2, 3, 4]),
    ('split in ("val", "test")', [2, 3, 4]),
    ('split == "nope"', []),
    ("discarded", [2, 5]),
    ("not discarded", [0, 1, 3, 4]),
    ("discarded == false", [0, 1, 3, 4]),
    ("discarded in (true)", [2, 5]),
    ("sample_id == 2", [1]),  # numbers match their decimal spelling on string columns
    ('sample_id in (1, 10, "a")', [0, 2, 5]),
    ("(loss > 1 or margin < 0) and not discarded", [1, 3, 4]),
    ("loss > 1 and loss < 3 or has:noisy", [0, 2, 5]),
    ("all()", [0, 1, 2, 3, 4, 5]),
    ("any()", []),
    ("all(loss > 1, label == 3)", [3]),
    ("not not has:noisy", [0, 2]),
    ("", [0, 1, 2, 3, 4, 5]),
]


@pytest.mark.parametrize(("text", "expected"), FILTER_CASES)
def test_filters(frame: Frame, text: str, expected: list[int]) -> None:
    assert select(frame, text or None).tolist() == expected
    result = run_query(frame, text)
    assert result.total == len(expected)
    assert result.indices.tolist() == expected


def test_json_filters(frame: Frame) -> None:
    spec = {"op": "all", "filters": [{"op": ">", "column": "loss", "value": 1},
                                     {"op": "not", "filter": {"op": "has_tag", "tag": "noisy"}}]}
    assert select(frame, spec).tolist() == [3, 5]
    assert select(frame, {"op": "category", "tag": "quality", "value": "dark"}).tolist() == [2]
    assert select(frame, {"op": "not_has_tag", "tag": "noisy"}).tolist() == [1, 3, 4, 5]
    assert select(frame, {"op": "category", "tag": "never_used", "value": "x"}).tolist() == []
    assert filter_mask(frame, None).all()
    assert select(frame, None).dtype == np.int64


def test_unknown_column_message(frame: Frame) -> None:
    with pytest.raises(UnknownColumnError) as info:
        select(frame, "lss > 1")
    msg = str(info.value)
    assert "'lss'" in msg and "did you mean 'loss'" in msg
    for known in ("label", "loss", "margin", "name", "sample_id", "split", "discarded", "tag:noisy",
                  "tag:quality"):
        assert known in msg
    assert info.value.column == "lss"
    assert isinstance(info.value, QueryError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownColumnError, match="'tag:nope'"):
        select(frame, "tag:nope is null")
    with pytest.raises(UnknownColumnError, match="sort"):
        run_query(frame, "sort by nope")
    with pytest.raises(UnknownColumnError, match="group"):
        aggregate(frame, None, Group(by=("nope",)))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('name < "x"', "operator '<' needs a numeric column, but 'name' is a string column"),
        ("split >= 1", "'split' is a string column"),
        ('loss == "x"', "column 'loss' is a numeric column; cannot compare it with string 'x'"),
        ("loss == true", "cannot compare it with boolean true"),
        ("loss", "cannot compare it with boolean true"),  # a bare numeric column is no condition
        ('loss contains "x"', "contains needs a string column"),
        ("name between 1 and 2", "between needs a numeric column"),
        ("discarded < 1", "'discarded' is a boolean column"),
        ("discarded == 2", "compare it with true or false"),
        ('discarded == "yes"', "compare it with true or false"),
        ("name == true", "cannot compare it with boolean true"),
        ('label in (1, "a")', "cannot compare it with string 'a'"),
        ("has:quality", "categorical tag"),
        ('tag:noisy == "x"', "boolean tag; use has:noisy"),
    ],
)
def test_type_mismatch(frame: Frame, text: str, fragment: str) -> None:
    with pytest.raises(QueryTypeError) as info:
        select(frame, text)
    assert fragment in str(info.value)


# -- sorting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sort by sample_id", [2, 1, 0, 5, 4, 3]),  # 1 < 2 < 10 < a < img2 < img10
        ("sort by sample_id desc", [3, 4, 5, 0, 1, 2]),
        ("sort by loss", [0, 4, 5, 2, 3, 1]),  # NaN last
        ("sort by loss desc", [3, 2, 5, 4, 0, 1]),  # NaN last in both directions
        ("sort by name", [3, 4, 5, 0, 1, 2]),  # None last
        ("sort by name desc", [1, 0, 5, 4, 3, 2]),
        ("sort by label", [0, 2, 1, 5, 3, 4]),  # stable: ties keep table order
        ("sort by label desc", [3, 1, 5, 0, 2, 4]),
        ("sort by split, label desc", [4, 1, 5, 0, 3, 2]),
        ("sort by split desc, loss", [2, 3, 0, 5, 1, 4]),
        ("sort by discarded, sample_id", [1, 0, 4, 3, 2, 5]),
        ("sort by discarded desc", [2, 5, 0, 1, 3, 4]),
        ("sort by tag:quality, sample_id", [0, 3, 2, 1, 5, 4]),
        ("sort by tag:noisy desc", [0, 2, 1, 3, 4, 5]),
        ("has:noisy or loss > 2 sort by margin desc", [2, 0, 3]),
    ],
)
def test_sort(frame: Frame, text: str, expected: list[int]) -> None:
    assert run_query(frame, text).indices.tolist() == expected
    assert ordered_indices(frame, text).tolist() == expected


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["10", "2", "1", "0"], ["0", "1", "2", "10"]),  # fast path: plain decimal ids
        (["10", "9", "100", "11"], ["9", "10", "11", "100"]),
        (["img10", "img2", "img1", "a", "10", "2"], ["2", "10", "a", "img1", "img2", "img10"]),
        (["7", "007", "07", "x"], ["007", "07", "7", "x"]),  # equal numbers: text order
        (["-1", "3", "+2"], ["3", "+2", "-1"]),  # signs are text, not numbers
        (["b", "a", "", "B"], ["", "B", "a", "b"]),
        (["a2b10", "a2b9", "a10b1"], ["a2b9", "a2b10", "a10b1"]),
        (["99999999999999999999", "5"], ["5", "99999999999999999999"]),  # > int64
    ],
)
def test_numeric_aware_id_sort(ids: list[str], expected: list[str]) -> None:
    arr = obj(*ids)
    rank = sample_id_rank(arr)
    assert [ids[i] for i in np.argsort(rank)] == expected
    assert sorted(set(rank.tolist())) == list(range(len(set(ids))))
    f = Frame(sample_id=arr, split=obj(*(["train"] * len(ids))), discarded=np.zeros(len(ids), bool))
    assert [ids[i] for i in run_query(f, "sort by sample_id").indices] == expected
    assert [ids[i] for i in run_query(f, "sort by sample_id desc").indices] == expected[::-1]


def test_id_sort_same_id_in_two_splits_is_stable() -> None:
    f = Frame(sample_id=obj("3", "1", "3", "1"), split=obj("val", "val", "train", "train"),
              discarded=np.zeros(4, bool))
    assert run_query(f, "sort by sample_id").indices.tolist() == [1, 3, 0, 2]
    assert run_query(f, "sort by sample_id, split").indices.tolist() == [3, 1, 2, 0]


def test_precomputed_id_rank_is_used() -> None:
    ids = obj("b", "a", "c")
    f = Frame(sample_id=ids, split=obj("t", "t", "t"), discarded=np.zeros(3, bool),
              sample_id_rank=np.array([0, 2, 1]))
    assert run_query(f, "sort by sample_id").indices.tolist() == [0, 2, 1]


def _reference_order(columns: dict[str, np.ndarray], idx: list[int], keys: list[tuple[str, bool]]) -> list[int]:
    out = list(idx)
    for name, desc in reversed(keys):
        col = columns[name]
        present = [i for i in out if not math.isnan(col[i])]
        missing = [i for i in out if math.isnan(col[i])]
        present.sort(key=lambda i, c=col: c[i], reverse=desc)
        out = present + missing
    return out


@pytest.mark.parametrize("block", [1 << 16, 777])  # one block; pages read across 26 blocks
@pytest.mark.parametrize("seed", range(6))
def test_partial_sort_matches_full_stable_sort(seed: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ordering, "_PAGE_BLOCK_ROWS", block)
    rng = np.random.default_rng(seed)
    n = 20_000
    a = rng.integers(0, 5, n).astype(float)  # many ties on the primary key
    a[rng.random(n) < 0.2] = np.nan
    b = rng.integers(0, 50, n).astype(float)
    b[rng.random(n) < 0.1] = np.nan
    c = rng.random(n)
    d = np.full(n, np.nan)
    d[rng.choice(n, 50, replace=False)] = rng.integers(0, 3, 50)  # few values: NaN at the cut
    cols = {"a": a, "b": b, "c": c, "d": d}
    f = Frame(sample_id=obj(*[str(i) for i in range(n)]), split=obj(*(["s"] * n)),
              discarded=np.zeros(n, bool), columns=cols)
    keys = [("a", bool(seed % 2)), ("b", seed % 3 == 0)]
    sort = [SortKey(column=k, descending=d) for k, d in keys]
    idx = select(f, "c > 0.3")
    expected = _reference_order(cols, idx.tolist(), keys)
    for offset, limit in [(0, 1), (0, 128), (37, 100), (2000, 50), (len(idx) - 5, 100)]:
        q = Query(filter={"op": ">", "column": "c", "value": 0.3}, sort=sort,
                  page={"offset": offset, "limit": limit})
        got = run_query(f, q)
        assert got.total == len(idx)
        assert got.indices.tolist() == expected[offset : offset + limit]
    assert sort_indices(f, idx, sort).tolist() == expected
    assert sort_indices(f, idx, sort, limit=10).tolist() == expected[:10]
    for keys2 in ([("d", False)], [("d", True), ("a", False)]):
        sort2 = [SortKey(column=k, descending=dd) for k, dd in keys2]
        assert sort_indices(f, idx, sort2, limit=60).tolist() == _reference_order(cols, idx.tolist(), keys2)[:60]
    # NaN beyond the cut: the k-th value is NaN (all non-NaN rows fit in the page).
    nn = int((~np.isnan(a[idx])).sum())
    got = sort_indices(f, idx, sort[:1], limit=min(nn + 3, len(idx)))
    assert got.tolist() == _reference_order(cols, idx.tolist(), keys[:1])[: nn + 3]


# -- paging / top-k --------------------------------------------------------------------


def test_paging(frame: Frame) -> None:
    r = run_query(frame, "sort by loss limit 2 offset 1")
    assert (r.total, r.indices.tolist(), r.offset, r.limit) == (6, [4, 5], 1, 2)
    assert run_query(frame, "limit 2 offset 5").indices.tolist() == [5]
    assert run_query(frame, "limit 2 offset 50").indices.tolist() == []
    assert run_query(frame, "limit 0").indices.tolist() == []
    assert run_query(frame, "loss > 100 sort by loss").total == 0
    assert run_query(frame, {"page": {"limit": 3}}).indices.tolist() == [0, 1, 2]
    assert run_query(frame, Query()).to_dict()["indices"] == [0, 1, 2, 3, 4, 5]


def test_invalid_queries_name_the_field(frame: Frame) -> None:
    with pytest.raises(QueryError, match=r"page\.limit"):
        run_query(frame, {"page": {"limit": 10**6}})
    with pytest.raises(QueryError, match=r"filter\.>\.valeu"):
        run_query(frame, {"filter": {"op": ">", "column": "loss", "valeu": 1}})
    with pytest.raises(QueryError, match="bins"):
        histogram_by_value(frame, "loss", 0)
    with pytest.raises(QueryError):
        run_query(frame, 42)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match=r"sort\.0\.descending"):
        sort_indices(frame, np.arange(6), [{"column": "loss", "descending": "maybe"}])
    assert run_query(frame, '{"filter": {"op": "has_tag", "tag": "noisy"}}').indices.tolist() == [0, 2]
    with pytest.raises(QueryError, match=r"page\.limit"):
        run_query(frame, '{"page": {"limit": -1}}')


def test_top_k(frame: Frame) -> None:
    assert run_query(frame, "top 2 by loss").indices.tolist() == [3, 2]
    assert run_query(frame, "bottom 2 by loss").indices.tolist() == [0, 4]
    r = run_query(frame, "top 10 by loss")  # NaN rows are never "top"
    assert (r.total, r.indices.tolist()) == (5, [3, 2, 5, 4, 0])
    assert run_query(frame, "top 3 by loss sort by sample_id").indices.tolist() == [2, 5, 3]
    assert run_query(frame, "not discarded top 2 by loss").indices.tolist() == [3, 4]
    assert top_k(frame, "margin", 2).tolist() == [2, 0]
    assert top_k(frame, "margin", 2, largest=False, filter="not discarded").tolist() == [4, 1]
    assert top_k(frame, "name", 2).tolist() == [1, 0]
    with pytest.raises(QueryError, match="k"):
        top_k(frame, "loss", 0)


# -- groups ------------------------------------------------------------------------------


def test_group_aggregates(frame: Frame) -> None:
    rows = run_query(frame, "group by split: count, count(loss), mean(loss), min(loss), max(loss), "
                            "sum(loss), median(loss), quantile(loss, 0.25), mean(tag:noisy)").groups
    assert rows is not None
    by = {r.key["split"]: r for r in rows}
    assert [r.key["split"] for r in rows] == ["test", "train", "val"]
    train = by["train"]
    assert train.count == 3
    assert train.values == {"count": 3, "count(loss)": 2, "mean(loss)": 1.0, "min(loss)": 0.5,
                            "max(loss)": 1.5, "sum(loss)": 2.0, "quantile(loss, 0.5)": 1.0,
                            "quantile(loss, 0.25)": 0.75, "mean(tag:noisy)": pytest.approx(1 / 3)}
    assert by["val"].values["mean(loss)"] == 2.75
    assert by["test"].values["quantile(loss, 0.25)"] == 1.0


def test_group_keys_and_missing(frame: Frame) -> None:
    rows = aggregate(frame, None, Group(by=("label",)))
    assert [(r.key["label"], r.count) for r in rows] == [(1.0, 2), (2.0, 2), (3.0, 1), (None, 1)]
    rows = aggregate(frame, None, {"by": ["tag:quality"], "aggregates": [{"fn": "count", "column": "name"}]})
    assert [(r.key["tag:quality"], r.count, r.values["count(name)"]) for r in rows] == [
        ("blurry", 2, 2), ("dark", 1, 0), (None, 3, 3)]
    rows = aggregate(frame, "not discarded", Group(by=("tag:noisy", "split")))
    assert [(r.key["tag:noisy"], r.key["split"], r.count) for r in rows] == [
        (False, "test", 1), (False, "train", 1), (False, "val", 1), (True, "train", 1)]
    rows = aggregate(frame, "loss is null", Group(by=("split",), aggregates=({"fn": "mean", "column": "loss"},)))
    assert [(r.key, r.count, r.values) for r in rows] == [({"split": "train"}, 1, {"mean(loss)": None})]
    rows = aggregate(frame, "loss > 100", Group(by=("split",)))
    assert rows == []
    rows = run_query(frame, "loss > 100 aggregate count, mean(loss), min(loss), median(loss)").groups
    assert rows is not None and [(r.key, r.count, r.values) for r in rows] == [
        ({}, 0, {"count": 0, "mean(loss)": None, "min(loss)": None, "quantile(loss, 0.5)": None})]
    assert rows[0].to_dict() == {"key": {}, "count": 0, "values": rows[0].values}
    with pytest.raises(QueryTypeError, match="mean needs a numeric"):
        aggregate(frame, None, Group(by=("split",), aggregates=({"fn": "mean", "column": "name"},)))


def test_grouped_query_sort_and_page(frame: Frame) -> None:
    r = run_query(frame, "group by label: count, mean(loss) sort by mean(loss) desc")
    assert r.groups is not None and r.total == 6 and r.total_groups == 4
    assert [g.key["label"] for g in r.groups] == [3.0, 1.0, 2.0, None]
    r = run_query(frame, "group by label: mean(loss) sort by count desc, label desc limit 2 offset 1")
    assert r.groups is not None and [g.key["label"] for g in r.groups] == [1.0, 3.0]
    assert r.indices.tolist() == []
    assert r.to_dict()["total_groups"] == 4
    with pytest.raises(QueryError, match="not a group column or aggregate"):
        run_query(frame, "group by label: count sort by loss")


@pytest.mark.parametrize("ngroups", [7, 1000])
def test_aggregates_match_numpy(ngroups: int) -> None:
    rng = np.random.default_rng(ngroups)
    n = 30_000
    g = rng.integers(0, ngroups, n).astype(float)
    v = rng.normal(size=n)
    v[rng.random(n) < 0.1] = np.nan
    f = Frame(sample_id=obj(*[str(i) for i in range(n)]), split=obj(*(["s"] * n)),
              discarded=np.zeros(n, bool), columns={"g": g, "v": v})
    rows = run_query(f, "group by g: count, mean(v), min(v), max(v), sum(v), quantile(v, 0.9), "
                        "quantile(v, 0), quantile(v, 1) limit 10000").groups
    assert rows is not None and len(rows) == len(np.unique(g))
    for r in rows:
        x = v[g == r.key["g"]]
        x = x[~np.isnan(x)]
        vals = r.values
        assert r.count == int((g == r.key["g"]).sum())
        assert vals["mean(v)"] == pytest.approx(x.mean())
        assert vals["sum(v)"] == pytest.approx(x.sum())
        assert vals["min(v)"] == x.min() and vals["max(v)"] == x.max()
        assert vals["quantile(v, 0.9)"] == pytest.approx(np.quantile(x, 0.9))
        assert vals["quantile(v, 0.0)"] == x.min() and vals["quantile(v, 1.0)"] == x.max()


def test_split_modules_keep_the_old_import_paths() -> None:
    from weightslab.query import engine, filtering, histograms, ordering

    assert engine.select is filtering.select and engine.sort_indices is ordering.sort_indices
    assert engine.aggregate is grouping.aggregate and engine.Histogram is histograms.Histogram
    assert engine.MAX_GROUPS == grouping.MAX_GROUPS and engine.MAX_BINS == histograms.MAX_BINS


def test_too_many_groups(frame: Frame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grouping, "MAX_GROUPS", 2)
    with pytest.raises(QueryError, match="groups"):
        run_query(frame, "group by sample_id: count")


# -- histograms --------------------------------------------------------------------------


def test_histogram_by_value(frame: Frame) -> None:
    h = histogram_by_value(frame, "loss", 5)
    assert h.edges.tolist() == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert h.counts.tolist() == [1, 1, 1, 0, 2]
    assert {k: v.tolist() for k, v in h.by_split.items()} == {
        "test": [0, 1, 0, 0, 0], "train": [1, 0, 1, 0, 0], "val": [0, 0, 0, 0, 2]}
    assert h.discarded.tolist() == [0, 0, 1, 0, 1]
    assert {k: v.tolist() for k, v in h.by_split_discarded.items()} == {
        "test": [0] * 5, "train": [0, 0, 1, 0, 0], "val": [0, 0, 0, 0, 1]}
    assert (h.missing, h.out_of_range) == (1, 0)
    d = h.to_dict()
    assert d["counts"] == [1, 1, 1, 0, 2] and d["by_split"]["val"] == [0, 0, 0, 0, 2]

    h = histogram_by_value(frame, "loss", 2, filter="not discarded", range=(0, 2))
    assert h.edges.tolist() == [0.0, 1.0, 2.0]
    assert h.counts.tolist() == [1, 1]  # 0.5 | 1.0 ; 3.0 out of range; NaN missing
    assert (h.missing, h.out_of_range) == (1, 1)

    h = histogram_by_value(frame, "loss", 4, filter="loss == 2.5")  # single value
    assert h.edges[0] == 2.0 and h.edges[-1] == 3.0 and h.counts.sum() == 1
    h = histogram_by_value(frame, "loss", 3, filter="loss > 100")  # empty selection
    assert h.counts.tolist() == [0, 0, 0]
    h = histogram_by_value(frame, "tag:noisy", 2)
    assert h.counts.tolist() == [4, 2]
    with pytest.raises(QueryTypeError):
        histogram_by_value(frame, "name", 10)
    with pytest.raises(QueryError, match="range"):
        histogram_by_value(frame, "loss", 10, range=(2, 1))


def test_histogram_by_value_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    v = np.round(rng.normal(size=n), 2)  # many values exactly on bin edges
    f = Frame(sample_id=obj(*[str(i) for i in range(n)]),
              split=obj(*rng.choice(["a", "b"], n).tolist()),
              discarded=rng.random(n) < 0.3, columns={"v": v})
    for bins, rng_ in [(512, None), (7, None), (100, (-1.0, 1.0))]:
        h = histogram_by_value(f, "v", bins, range=rng_)
        counts, edges = np.histogram(v, bins=bins, range=rng_)
        assert h.edges.tolist() == pytest.approx(edges.tolist())
        assert h.counts.tolist() == counts.tolist()
        assert (h.by_split["a"] + h.by_split["b"]).tolist() == counts.tolist()
        disc, _ = np.histogram(v[f.discarded], bins=bins, range=(edges[0], edges[-1]))
        assert h.discarded.tolist() == disc.tolist()


def test_histogram_by_position(frame: Frame) -> None:
    order = ordered_indices(frame, "sort by loss")
    assert order.tolist() == [0, 4, 5, 2, 3, 1]
    h = histogram_by_position(frame, order, 3)
    assert h.edges.tolist() == [0.0, 2.0, 4.0, 6.0]
    assert h.counts.tolist() == [2, 2, 2]
    assert h.discarded.tolist() == [0, 2, 0]
    assert {k: v.tolist() for k, v in h.by_split.items()} == {
        "test": [1, 0, 0], "train": [1, 1, 1], "val": [0, 1, 1]}
    h = histogram_by_position(frame, np.array([], dtype=np.int64), 4)
    assert h.counts.tolist() == [0, 0, 0, 0]
    h = histogram_by_position(frame, order, 10)  # more bins than rows
    assert h.counts.sum() == 6
    with pytest.raises(QueryError, match="out of range"):
        histogram_by_position(frame, np.array([0, 6]), 2)
    with pytest.raises(QueryError, match="group"):
        ordered_indices(frame, "group by split: count")


# -- frame ---------------------------------------------------------------------------------


def test_frame_lookup_and_validation(frame: Frame) -> None:
    assert len(frame) == 6
    assert frame.column_names() == ["sample_id", "split", "discarded", "label", "loss", "margin", "name",
                                    "tag:noisy", "tag:quality"]
    assert frame.column("tag:noisy").dtype == bool
    assert frame.column("tag:quality")[0] == "blurry"
    assert (frame.kind("loss"), frame.kind("name"), frame.kind("tag:noisy"), frame.kind("split")) == (
        "numeric", "string", "bool", "string")
    assert "loss" in frame and "tag:quality" in frame and "nope" not in frame
    with pytest.raises(ValueError, match="rows"):
        Frame(sample_id=obj("1", "2"), split=obj("a"), discarded=np.zeros(2, bool))
    with pytest.raises(ValueError, match="reserved"):
        Frame(sample_id=obj("1"), split=obj("a"), discarded=np.zeros(1, bool), columns={"split": obj("x")})
    with pytest.raises(ValueError, match="bool"):
        Frame(sample_id=obj("1"), split=obj("a"), discarded=np.zeros(1, bool), tags={"t": np.zeros(1)})
    empty = Frame(sample_id=obj(), split=obj(), discarded=np.zeros(0, bool), columns={"loss": np.zeros(0)})
    assert run_query(empty, "loss > 1 sort by sample_id").total == 0
    assert run_query(empty, "group by split: count").groups == []
    assert histogram_by_value(empty, "loss", 4).counts.tolist() == [0, 0, 0, 0]


def test_integer_columns_and_split_cache(frame: Frame) -> None:
    f = Frame(sample_id=obj("a", "b", "c"), split=obj("x", "y", "x"), discarded=np.zeros(3, bool),
              columns={"seen": np.array([3, 1, 2], dtype=np.int64)})
    assert run_query(f, "seen >= 2 sort by seen desc").indices.tolist() == [0, 2]
    assert select(f, "seen is null").tolist() == []
    assert select(f, 'split == "x"').tolist() == [0, 2]
    f.split_codes()  # populate the cache: filters then use the codes
    assert select(f, 'split == "x"').tolist() == [0, 2]
    assert select(f, 'split in ("y", "z")').tolist() == [1]


# -- robustness: nothing a client sends crashes the engine -----------------------------------

_COLS = st.sampled_from(["loss", "label", "name", "margin", "split", "sample_id", "discarded", "tag:noisy",
                         "tag:quality", "nope", "tag:nope"])
_VALUES = st.one_of(st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["train", "cat", "1", "blurry", ""]))
_LEAF = st.one_of(
    st.builds(lambda op, c, v: {"op": op, "column": c, "value": v},
              st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _COLS, _VALUES),
    st.builds(lambda c, a, b: {"op": "between", "column": c, "low": min(a, b), "high": max(a, b)},
              _COLS, st.integers(-3, 3), st.integers(-3, 3)),
    st.builds(lambda c, v: {"op": "in", "column": c, "values": v}, _COLS, st.lists(_VALUES, max_size=6)),
    st.builds(lambda c, v, i: {"op": "contains", "column": c, "value": v, "ignore_case": i}, _COLS,
              st.sampled_from(["a", "C", ""]), st.booleans()),
    st.builds(lambda op, c: {"op": op, "column": c}, st.sampled_from(["is_null", "not_null"]), _COLS),
    st.builds(lambda op, t: {"op": op, "tag": t}, st.sampled_from(["has_tag", "not_has_tag"]),
              st.sampled_from(["noisy", "quality", "nope"])),
    st.builds(lambda t, v: {"op": "category", "tag": t, "value": v}, st.sampled_from(["noisy", "quality"]),
              st.sampled_from(["blurry", "x"])),
)
_FILTER = st.recursive(_LEAF, lambda ch: st.one_of(
    st.builds(lambda fs: {"op": "all", "filters": fs}, st.lists(ch, max_size=3)),
    st.builds(lambda fs: {"op": "any", "filters": fs}, st.lists(ch, max_size=3)),
    st.builds(lambda f: {"op": "not", "filter": f}, ch)), max_leaves=6)
_AGG = st.one_of(st.just({"fn": "count"}),
                 st.builds(lambda fn, c: {"fn": fn, "column": c},
                           st.sampled_from(["count", "mean", "min", "max", "sum"]), _COLS),
                 st.builds(lambda c, q: {"fn": "quantile", "column": c, "q": q}, _COLS, st.sampled_from([0, 0.5, 1])))
_QUERY = st.fixed_dictionaries({}, optional={
    "filter": _FILTER,
    "sort": st.lists(st.builds(lambda c, d: {"column": c, "descending": d}, _COLS, st.booleans()), max_size=3),
    "page": st.builds(lambda o, m: {"offset": o, "limit": m}, st.integers(0, 8), st.integers(0, 8)),
    "top_k": st.builds(lambda c, k, g: {"column": c, "k": k, "largest": g}, _COLS, st.integers(1, 8), st.booleans()),
    "group": st.builds(lambda by, aggs: {"by": by, "aggregates": aggs},
                       st.lists(_COLS, max_size=2, unique=True), st.lists(_AGG, min_size=1, max_size=3)),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_QUERY)
def test_random_queries_never_crash(frame: Frame, data: dict) -> None:
    _check_random_query(frame, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_QUERY)
def test_random_queries_read_in_blocks_page_as_the_full_order(frame: Frame, data: dict,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A page is read a block of rows at a time (``ordering.page_of``); with blocks of 3 rows every
    query spans several, and its page must still be the slice of the full order."""
    monkeypatch.setattr(ordering, "_PAGE_BLOCK_ROWS", 3)
    _check_random_query(frame, data)


def _check_random_query(frame: Frame, data: dict) -> None:
    try:
        result = run_query(frame, data)
    except QueryError:
        return
    assert 0 <= result.total <= len(frame)
    assert all(0 <= i < len(frame) for i in result.indices.tolist())
    assert len(result.indices) <= result.limit
    if "group" not in data:
        # The page is a slice of the full order, and the full order holds every result row once.
        full = ordered_indices(frame, data)
        assert len(full) == result.total == len(set(full.tolist()))
        off = data.get("page", {}).get("offset", 0)
        assert result.indices.tolist() == full.tolist()[off : off + len(result.indices)]
