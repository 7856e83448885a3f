"""The text syntax: parsing into specs, positioned syntax errors, format -> parse round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from weightslab.query import (
    Aggregate,
    All,
    AnyOf,
    Between,
    CategoryEquals,
    Compare,
    Contains,
    Group,
    HasTag,
    In,
    IsNull,
    Not,
    NotHasTag,
    NotNull,
    Page,
    Query,
    QueryError,
    QuerySyntaxError,
    SortKey,
    TopK,
    format_filter,
    format_query,
    parse_filter,
    parse_query,
)

EXAMPLES = [
    ("loss > 2.5", Query(filter=Compare(op=">", column="loss", value=2.5))),
    ('label == 3 and split == "train"',
     Query(filter=All(filters=(Compare(op="==", column="label", value=3),
                               Compare(op="==", column="split", value="train"))))),
    ("loss between 1 and 2", Query(filter=Between(column="loss", low=1, high=2))),
    ("label in (1, 2, 7)", Query(filter=In(column="label", values=(1, 2, 7)))),
    ("has:noisy", Query(filter=HasTag(tag="noisy"))),
    ("not has:reviewed", Query(filter=NotHasTag(tag="reviewed"))),
    ('tag:quality == "blurry"', Query(filter=CategoryEquals(tag="quality", value="blurry"))),
    ('name contains "cat"', Query(filter=Contains(column="name", value="cat"))),
    ("loss is null", Query(filter=IsNull(column="loss"))),
    ("loss is not null", Query(filter=NotNull(column="loss"))),
    ("(loss > 1 or margin < 0) and not discarded",
     Query(filter=All(filters=(AnyOf(filters=(Compare(op=">", column="loss", value=1),
                                              Compare(op="<", column="margin", value=0))),
                               Not(filter=Compare(op="==", column="discarded", value=True)))))),
    ("sort by loss desc, sample_id",
     Query(sort=(SortKey(column="loss", descending=True), SortKey(column="sample_id")))),
    ("limit 50 offset 100", Query(page=Page(limit=50, offset=100))),
    ("offset 100 limit 50", Query(page=Page(limit=50, offset=100))),
    ("top 20 by suspected_mislabel", Query(top_k=TopK(column="suspected_mislabel", k=20))),
    ("bottom 5 by margin", Query(top_k=TopK(column="margin", k=5, largest=False))),
    ("group by label: count, mean(loss)",
     Query(group=Group(by=("label",), aggregates=(Aggregate(fn="count"), Aggregate(fn="mean", column="loss"))))),
    ("group by split", Query(group=Group(by=("split",)))),
    ("aggregate count(loss), avg(loss), median(loss), quantile(loss, 0.9)",
     Query(group=Group(aggregates=(Aggregate(fn="count", column="loss"), Aggregate(fn="mean", column="loss"),
                                   Aggregate(fn="quantile", column="loss", q=0.5),
                                   Aggregate(fn="quantile", column="loss", q=0.9))))),
    ("LOSS > 1 AND NOT Has:x Sort By LOSS DESC",
     Query(filter=All(filters=(Compare(op=">", column="LOSS", value=1), NotHasTag(tag="x"))),
           sort=(SortKey(column="LOSS", descending=True),))),
    ("`my col` >= -1.5e-3 or `and` != 'x'",
     Query(filter=AnyOf(filters=(Compare(op=">=", column="my col", value=-0.0015),
                                 Compare(op="!=", column="and", value="x"))))),
    ("has:low-light and tag:`a b` is null",
     Query(filter=All(filters=(HasTag(tag="low-light"), IsNull(column="tag:a b"))))),
    ("x not in (1, 2) and y not contains \"z\" and name icontains 'CAT'",
     Query(filter=All(filters=(Not(filter=In(column="x", values=(1, 2))),
                               Not(filter=Contains(column="y", value="z")),
                               Contains(column="name", value="CAT", ignore_case=True))))),
    ('s == "a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00"', Query(filter=Compare(op="==", column="s", value='a"b\\c\né😀'))),
    ("flag == true and other == false",
     Query(filter=All(filters=(Compare(op="==", column="flag", value=True),
                               Compare(op="==", column="other", value=False))))),
    ("all() or any(a, b > 1)",
     Query(filter=AnyOf(filters=(All(), AnyOf(filters=(Compare(op="==", column="a", value=True),
                                                       Compare(op=">", column="b", value=1))))))),
    ("", Query()),
    ("   sort by x", Query(sort=(SortKey(column="x"),))),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_parse_examples(text: str, expected: Query) -> None:
    parsed = parse_query(text)
    assert parsed == expected
    assert parse_query(format_query(parsed)) == parsed
    assert Query.model_validate_json(parsed.model_dump_json()) == parsed


def test_format_is_readable() -> None:
    q = parse_query('(loss > 1 or margin < 0) and not discarded and label in (1, 2) top 20 by loss '
                    'sort by loss desc, sample_id limit 50 offset 100')
    assert format_query(q) == ('(loss > 1 or margin < 0) and not discarded and label in (1, 2) '
                               'top 20 by loss sort by loss desc, sample_id limit 50 offset 100')
    assert format_query(parse_query("group by label, split: count, median(loss) sort by median(loss) desc")) == (
        "group by label, split: count, quantile(loss, 0.5) sort by quantile(loss, 0.5) desc")
    assert format_query(Not(filter=HasTag(tag="x"))) == "not (has:x)"
    assert format_query(Not(filter=All(filters=(HasTag(tag="a"), HasTag(tag="b"))))) == "not (has:a and has:b)"
    assert format_filter(All(filters=(All(filters=(HasTag(tag="a"), HasTag(tag="b"))), HasTag(tag="c")))) == (
        "(has:a and has:b) and has:c")
    assert format_query(Compare(op="==", column="limit", value="x")) == '`limit` == "x"'
    assert format_query(Compare(op="==", column="tag:weird name", value=1)) == "tag:`weird name` == 1"


def test_parse_filter() -> None:
    assert parse_filter("") is None
    assert parse_filter("has:x") == HasTag(tag="x")
    with pytest.raises(QuerySyntaxError, match="end of filter"):
        parse_filter("has:x sort by y")


SYNTAX_ERRORS = [
    ("loss >", 6, "expected a value"),
    ("split == train", 9, 'quote strings: "train"'),
    ("loss > 1 and", 12, "expected a condition"),
    ("(loss > 1", 9, "expected ')' to close the '(' at position 0"),
    ("loss > 1)", 8, "expected 'and', 'or' or a clause"),
    ("limit 99999", 6, "limit must be at most 10000"),
    ("limit -1", 6, "non-negative integer"),
    ("limit 2.5", 6, "non-negative integer"),
    ("sort loss", 5, "expected 'by'"),
    ("loss between 2 and 1", 19, "high (1) must be >= low (2)"),
    ("loss between 1 or 2", 15, "expected 'and'"),
    ("x in (1, 2", 10, "to close the 'in' list"),
    ("x in 1, 2", 5, "expected '('"),
    ("label == 3 sort by", 18, "expected a column name"),
    ("loss < null", 7, "null is not a value"),
    ("limit 5 limit 6", 8, "duplicate 'limit' clause"),
    ("top 1 by a bottom 2 by b", 11, "duplicate 'bottom' clause"),
    ('name == "abc', 8, "unterminated string"),
    ("name == `abc", 8, "unterminated `name`"),
    ('name == "a\\qb"', 10, "invalid escape"),
    ("loss > 1 foo", 9, "expected 'and', 'or' or a clause"),
    ("group by label: avgg(loss)", 16, "expected an aggregate"),
    ("group by label: quantile(loss)", 29, "expected ','"),
    ("group by label: quantile(loss, 2)", 31, "q: must be between 0 and 1"),
    ("group by label: count, count", 23, "duplicate aggregate count"),
    ("top 0 by loss", 4, "greater than or equal to 1"),
    ("loss > 1 and and", 13, "expected a condition"),
    ("sort by limit", 8, "in backticks"),
    ("loss ! 3", 5, "unexpected character '!'"),
    ("loss > ²", 7, "expected a value"),
    ("loss > 3abc", 7, "invalid number"),
    ("loss > 1e999", 7, "out of range"),
    ("has:", 4, "expected a tag name"),
    ("x is 3", 5, "expected 'null'"),
    ("x not 3", 6, "expected 'in', 'between' or 'contains' after 'not'"),
    ("x contains 3", 11, "expected a quoted string"),
    ("\n\nloss >> 1", 8, "expected a value"),
    ("(" * 70 + "a" + ")" * 70, 64, "nested too deeply"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), SYNTAX_ERRORS)
def test_syntax_errors_are_positioned(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    err = info.value
    assert fragment in err.message, err.message
    assert err.position == position, str(err)
    assert isinstance(err, QueryError) and isinstance(err, ValueError)
    # The caret line points at the offending character of its line.
    lines = str(err).splitlines()
    assert lines[-1].strip() == "^"
    line_start = text.rfind("\n", 0, position) + 1
    src_line = text[line_start:].split("\n", 1)[0]
    caret_col = lines[-1].index("^") - 2
    if len(src_line) <= 120:
        assert lines[-2][2:] == src_line
        assert caret_col == position - line_start
    assert f"position {position}" in lines[0]


def test_long_line_caret_is_windowed() -> None:
    text = "a > 1 and " * 30 + "b >"
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    shown, caret = str(info.value).splitlines()[-2:]
    assert len(shown) < 140 and shown.lstrip().startswith("...")
    assert caret.index("^") <= len(shown)


def test_limits() -> None:
    with pytest.raises(QuerySyntaxError, match="too long"):
        parse_query("a" * 200_000)
    with pytest.raises(TypeError):
        parse_query(3)  # type: ignore[arg-type]
    many = " or ".join(f"x == {i}" for i in range(10_001))
    with pytest.raises(QuerySyntaxError, match="at most 10000"):
        parse_query(many)


# -- spec validation ---------------------------------------------------------------------


def test_spec_validation_names_the_field() -> None:
    from pydantic import ValidationError

    cases = [
        ({"filter": {"op": ">", "column": "loss", "value": 1, "extra": 2}}, "filter.>.extra"),
        ({"filter": {"op": "between", "column": "x", "low": 2, "high": 1}}, "filter.between"),
        ({"filter": {"op": "nope"}}, "filter"),
        ({"filter": {"op": ">", "column": "", "value": 1}}, "filter.>.column"),
        ({"filter": {"op": ">", "column": "x", "value": float("nan")}}, "filter.>.value"),
        ({"page": {"limit": 10_001}}, "page.limit"),
        ({"page": {"offset": -1}}, "page.offset"),
        ({"sort": [{"column": "x", "direction": "desc"}]}, "sort.0.direction"),
        ({"group": {"by": ["a"], "aggregates": [{"fn": "quantile", "column": "x"}]}}, "group.aggregates.0"),
        ({"group": {"by": ["a"], "aggregates": [{"fn": "mean"}]}}, "group.aggregates.0"),
        ({"group": {"by": ["a", "a"]}}, "group"),
        ({"top_k": {"column": "x", "k": 0}}, "top_k.k"),
        ({"unknown": 1}, "unknown"),
    ]
    for data, loc in cases:
        with pytest.raises(ValidationError) as info:
            Query.model_validate(data)
        locs = [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]
        assert any(x.startswith(loc) for x in locs), (data, locs)


def test_deep_json_filter_is_rejected() -> None:
    from pydantic import ValidationError

    f: dict = {"op": "has_tag", "tag": "x"}
    for _ in range(100):
        f = {"op": "not", "filter": f}
    with pytest.raises(ValidationError):
        Query.model_validate({"filter": f})


def test_specs_are_json() -> None:
    q = parse_query('loss > 1 and tag:q == "x" top 5 by loss group by split: count, quantile(loss, 0.5) '
                    "sort by count desc limit 10")
    data = json.loads(q.model_dump_json())
    assert data["filter"]["op"] == "all"
    assert data["filter"]["filters"][1] == {"op": "category", "tag": "q", "value": "x"}
    assert Query.model_validate(data) == q
    assert Query.model_validate_json(json.dumps(data)) == q


# -- hypothesis round trip ---------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["loss", "label", "split", "sample_id", "x.y", "_a1", "tag:quality", "tag:low-light",
                     "my col", "and", "LIMIT", "has:x", "Tag:x", "a`b", "x\\y", "count", "1abc", "mean(loss)",
                     "é", "tag:", "tag:a b", "tag:`q`"]),
    st.text(min_size=1, max_size=8),
)
TAGS = st.one_of(st.sampled_from(["noisy", "low-light", "a.b", "2x", "a b", "`", "x:y"]),
                 st.text(min_size=1, max_size=8))
NUMBERS = st.one_of(st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(allow_nan=False, allow_infinity=False))
SCALARS = st.one_of(st.booleans(), NUMBERS, st.text(max_size=12))


def _compare(op: str, column: str, value: object) -> Compare:
    return Compare(op=op, column=column, value=value)


COMPARES = st.builds(_compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), NAMES, SCALARS).filter(
    # `tag:x == "v"` is canonicalised to CategoryEquals by the parser.
    lambda c: not (c.column.startswith("tag:") and len(c.column) > 4 and c.op == "=="
                   and isinstance(c.value, str))
)


def _between(column: str, a: float, b: float) -> Between:
    lo, hi = (a, b) if a <= b else (b, a)
    return Between(column=column, low=lo, high=hi)


LEAVES = st.one_of(
    COMPARES,
    st.builds(_between, NAMES, NUMBERS, NUMBERS),
    st.builds(lambda c, v: In(column=c, values=tuple(v)), NAMES, st.lists(SCALARS, max_size=4)),
    st.builds(lambda c, v, i: Contains(column=c, value=v, ignore_case=i), NAMES, st.text(max_size=8),
              st.booleans()),
    st.builds(lambda c: IsNull(column=c), NAMES),
    st.builds(lambda c: NotNull(column=c), NAMES),
    st.builds(lambda t: HasTag(tag=t), TAGS),
    st.builds(lambda t: NotHasTag(tag=t), TAGS),
    st.builds(lambda t, v: CategoryEquals(tag=t, value=v), TAGS, st.text(max_size=8)),
)

FILTERS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.builds(lambda fs: All(filters=tuple(fs)), st.lists(children, max_size=4)),
        st.builds(lambda fs: AnyOf(filters=tuple(fs)), st.lists(children, max_size=4)),
        st.builds(lambda f: Not(filter=f), children),
    ),
    max_leaves=12,
)

AGGREGATES = st.one_of(
    st.just(Aggregate(fn="count")),
    st.builds(lambda fn, c: Aggregate(fn=fn, column=c), st.sampled_from(["count", "mean", "min", "max", "sum"]),
              NAMES),
    st.builds(lambda c, q: Aggregate(fn="quantile", column=c, q=q), NAMES,
              st.floats(min_value=0, max_value=1, allow_nan=False)),
)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    fields: dict = {}
    if draw(st.booleans()):
        fields["filter"] = draw(FILTERS)
    sort_names = NAMES
    if draw(st.booleans()):
        by = draw(st.lists(NAMES, max_size=3, unique=True))
        aggs = draw(st.lists(AGGREGATES, min_size=1, max_size=4, unique_by=lambda a: a.name))
        fields["group"] = Group(by=tuple(by), aggregates=tuple(aggs))
        sort_names = st.one_of(NAMES, st.sampled_from([a.name for a in aggs] + ["count"]))
    if draw(st.booleans()):
        fields["sort"] = tuple(draw(st.lists(st.builds(lambda c, d: SortKey(column=c, descending=d), sort_names,
                                                       st.booleans()), max_size=3)))
    if draw(st.booleans()):
        fields["top_k"] = TopK(column=draw(NAMES), k=draw(st.integers(1, 10**6)), largest=draw(st.booleans()))
    fields["page"] = Page(offset=draw(st.integers(0, 10**9)), limit=draw(st.integers(0, 10_000)))
    return Query(**fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILTERS)
def test_filter_round_trip(f: object) -> None:
    text = format_filter(f)  # type: ignore[arg-type]
    assert parse_filter(text) == f, text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_query_round_trip(q: Query) -> None:
    text = format_query(q)
    assert parse_query(text) == q, text
    assert Query.model_validate_json(q.model_dump_json()) == q


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parser_never_crashes(text: str) -> None:
    try:
        parse_query(text)
    except QuerySyntaxError as e:
        assert 0 <= e.position <= len(text)
