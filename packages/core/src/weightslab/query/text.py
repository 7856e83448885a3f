"""A compact human syntax for queries, parsed into the typed spec (no eval anywhere).

Grammar (keywords are case-insensitive; column names are case-sensitive)::

    query      := [filter] clause*                  (each clause at most once, any order)
    clause     := "sort" "by" sortkey ("," sortkey)*
                | "limit" INT | "offset" INT
                | ("top" | "bottom") INT "by" name
                | "group" "by" name ("," name)* [":" agg ("," agg)*]
                | "aggregate" agg ("," agg)*
    sortkey    := (name | agg) ["asc" | "desc"]     (agg names sort grouped queries)
    filter     := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" "has:" TAG | "not" "has" name | "not" not_expr | atom
    atom       := "(" filter ")" | ("all" | "any") "(" [filter ("," filter)*] ")"
                | "has:" TAG | "has" name | predicate   (has <column>: not null)
    predicate  := name OP value                     OP: == = != < <= > >=
                | name ["not"] "between" number "and" number
                | name ["not"] "in" "(" [value ("," value)*] ")"
                | name ["not"] ("contains" | "icontains") STRING
                | name "is" ["not"] "null"
                | name                              (boolean column is true: `discarded`)
    agg        := "count" ["(" [name] ")"] | ("mean" | "avg" | "min" | "max" | "sum" | "median") "(" name ")"
                | "quantile" "(" name "," number ")"
    name       := IDENT | "tag:" TAG | `any text`   (IDENT: a letter or _, then letters, digits, _ .)
    value      := number | STRING | "true" | "false"
    STRING     := "..." or '...' with JSON escapes (\\" \\\\ \\n \\t \\uXXXX ...)

``tag:<name> == "<value>"`` is a categorical-tag filter; ``has:<tag>`` a boolean-tag one.
Errors raise :class:`QuerySyntaxError` with the character ``position`` and a caret line.
:func:`format_query` writes a spec back in this syntax; ``parse_query(format_query(q)) == q``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ._syntax import (
    IDENT_RE,
    KEYWORDS,
    TAG_NAME_RE,
    TAG_PREFIX,
    format_name,
    format_number,
    format_tag_name,
    format_value,
)
from .errors import QuerySyntaxError
from .spec import (
    DEFAULT_LIMIT,
    MAX_FILTER_DEPTH,
    MAX_LIMIT,
    Aggregate,
    All,
    AnyOf,
    Between,
    CategoryEquals,
    Compare,
    Contains,
    Filter,
    Group,
    HasTag,
    In,
    IsNull,
    Not,
    NotHasTag,
    NotNull,
    Page,
    Query,
    SortKey,
    TopK,
)

MAX_TEXT_LENGTH = 100_000

_CLAUSES = ("sort", "limit", "offset", "top", "bottom", "group", "aggregate")
_OPS = ("==", "!=", "<=", ">=", "<", ">", "=")
_AGG_FNS = ("count", "mean", "avg", "min", "max", "sum", "quantile", "median")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass
class _Tok:
    kind: str  # name | kw | has | string | number | op | ( | ) | , | : | eof
    value: Any
    pos: int
    raw: str
    quoted: bool = False  # a `backticked` name
    tagref: bool = False  # written tag:<name>

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of input"
        if self.kind == "string":
            return f"string {self.raw}"
        if self.kind == "number":
            return f"number {self.raw}"
        if self.kind == "name":
            return f"name {self.raw}"
        return repr(self.raw)


def _digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)

    def fail(msg: str, pos: int) -> QuerySyntaxError:
        return QuerySyntaxError(msg, text, pos)

    def read_backtick(start: int) -> tuple[str, int]:
        j = start + 1
        out: list[str] = []
        while j < n:
            c = text[j]
            if c == "\\" and j + 1 < n:
                out.append(text[j + 1])
                j += 2
                continue
            if c == "`":
                if not out:
                    raise fail("empty `name`", start)
                return "".join(out), j + 1
            out.append(c)
            j += 1
        raise fail("unterminated `name` (missing closing backtick)", start)

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c in "(),:":
            toks.append(_Tok(c, c, start, c))
            i += 1
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            toks.append(_Tok("op", "==" if op == "=" else op, start, op))
            i += len(op)
            continue
        if c in "\"'":
            j = i + 1
            out: list[str] = []
            while True:
                if j >= n:
                    raise fail("unterminated string (missing closing quote)", start)
                ch = text[j]
                if ch == c:
                    j += 1
                    break
                if ch == "\\":
                    if j + 1 >= n:
                        raise fail("unterminated string (missing closing quote)", start)
                    e = text[j + 1]
                    if e == "u":
                        hexdigits = text[j + 2 : j + 6]
                        if len(hexdigits) != 4 or any(h not in "0123456789abcdefABCDEF" for h in hexdigits):
                            raise fail("invalid \\u escape (expected 4 hex digits)", j)
                        out.append(chr(int(hexdigits, 16)))
                        j += 6
                        continue
                    if e not in _ESCAPES:
                        raise fail(f"invalid escape \\{e} in string", j)
                    out.append(_ESCAPES[e])
                    j += 2
                    continue
                out.append(ch)
                j += 1
            value = "".join(out)
            if "\\u" in text[start:j]:
                try:  # join surrogate pairs written as \uD83D\uDE00
                    value = value.encode("utf-16", "surrogatepass").decode("utf-16")
                except UnicodeDecodeError:
                    pass
            toks.append(_Tok("string", value, start, text[start:j]))
            i = j
            continue
        if c == "`":
            name, i = read_backtick(start)
            toks.append(_Tok("name", name, start, text[start:i], quoted=True))
            continue
        if _digit(c) or (c in "+-." and i + 1 < n and (_digit(text[i + 1]) or
                                                      (text[i + 1] == "." and c != "." and i + 2 < n
                                                       and _digit(text[i + 2])))):
            j = i + 1 if c in "+-" else i
            while j < n and _digit(text[j]):
                j += 1
            is_float = False
            if j < n and text[j] == ".":
                is_float = True
                j += 1
                while j < n and _digit(text[j]):
                    j += 1
            if j < n and text[j] in "eE":
                k = j + 1
                if k < n and text[k] in "+-":
                    k += 1
                if k < n and _digit(text[k]):
                    is_float = True
                    j = k
                    while j < n and _digit(text[j]):
                        j += 1
            raw = text[start:j]
            if j < n and (text[j].isalnum() or text[j] in "_."):
                raise fail(f"invalid number {text[start:j + 1]!r}", start)
            if is_float:
                num: int | float = float(raw)
                if num in (float("inf"), float("-inf")):
                    raise fail(f"number {raw} is out of range", start)
            else:
                if len(raw.lstrip("+-")) > 4000:
                    raise fail("number has too many digits", start)
                num = int(raw)
            toks.append(_Tok("number", num, start, raw))
            i = j
            continue
        m = IDENT_RE.match(text, i)
        if m:
            word = m.group(0)
            lower = word.lower()
            j = m.end()
            if lower in ("has", "tag") and j < n and text[j] == ":":
                k = j + 1
                if k < n and text[k] == "`":
                    tag, k = read_backtick(k)
                else:
                    tm = TAG_NAME_RE.match(text, k)
                    if not tm:
                        raise fail(f"expected a tag name after '{word}:'", k)
                    tag, k = tm.group(0), tm.end()
                if lower == "has":
                    toks.append(_Tok("has", tag, start, text[start:k]))
                else:
                    toks.append(_Tok("name", TAG_PREFIX + tag, start, text[start:k], tagref=True))
                i = k
                continue
            if lower in KEYWORDS:
                toks.append(_Tok("kw", lower, start, word))
            else:
                toks.append(_Tok("name", word, start, word))
            i = j
            continue
        raise fail(f"unexpected character {c!r}", start)
    toks.append(_Tok("eof", None, n, ""))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_TEXT_LENGTH:
            raise QuerySyntaxError(f"query text is too long ({len(text)} characters, at most "
                                   f"{MAX_TEXT_LENGTH})", text, MAX_TEXT_LENGTH)
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers -----------------------------------------------------------------
    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def advance(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None = None) -> QuerySyntaxError:
        tok = tok or self.peek()
        return QuerySyntaxError(message, self.text, tok.pos)

    def is_kw(self, *words: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "kw" and tok.value in words

    def expect_kw(self, word: str, context: str) -> _Tok:
        if not self.is_kw(word):
            raise self.error(f"expected '{word}' {context} but found {self.peek().describe()}")
        return self.advance()

    def expect(self, kind: str, context: str) -> _Tok:
        if self.peek().kind != kind:
            raise self.error(f"expected '{kind}' {context} but found {self.peek().describe()}")
        return self.advance()

    def build(self, cls: Any, tok: _Tok, **fields: Any) -> Any:
        try:
            return cls(**fields)
        except ValidationError as e:
            msgs = "; ".join(
                ".".join(str(p) for p in err.get("loc", ())) + (": " if err.get("loc") else "") + err["msg"]
                for err in e.errors()
            )
            raise self.error(msgs.replace("Value error, ", ""), tok) from None

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise self.error(f"filter is nested too deeply (at most {MAX_FILTER_DEPTH} levels)", tok)

    # -- query -------------------------------------------------------------------
    def parse_query(self) -> Query:
        filt: Filter | None = None
        if self.peek().kind != "eof" and not self.is_kw(*_CLAUSES):
            filt = self.parse_or()
        fields: dict[str, Any] = {}
        limit: int | None = None
        offset: int | None = None
        seen: dict[str, _Tok] = {}
        while self.peek().kind != "eof":
            tok = self.peek()
            if not self.is_kw(*_CLAUSES):
                expected = "'and', 'or' or " if filt is not None and not seen else ""
                raise self.error(f"expected {expected}a clause (sort by, limit, offset, top, bottom, group by, "
                                 f"aggregate) but found {tok.describe()}")
            slot = {"bottom": "top", "aggregate": "group"}.get(tok.value, tok.value)
            if slot in seen:
                raise self.error(f"duplicate '{tok.raw}' clause", tok)
            seen[slot] = tok
            self.advance()
            if slot == "sort":
                self.expect_kw("by", "after 'sort'")
                fields["sort"] = self.parse_sort_keys()
            elif slot == "limit":
                ntok = self.peek()
                limit = self.parse_int("after 'limit'")
                if limit > MAX_LIMIT:
                    raise self.error(f"limit must be at most {MAX_LIMIT}", ntok)
            elif slot == "offset":
                ntok = self.peek()
                offset = self.parse_int("after 'offset'")
                self.build(Page, ntok, offset=offset)
            elif slot == "top":
                ktok = self.peek()
                k = self.parse_int(f"after '{tok.raw}'")
                self.expect_kw("by", f"after '{tok.raw} {k}'")
                col = self.parse_name("after 'by'")
                fields["top_k"] = self.build(TopK, ktok, column=col, k=k, largest=tok.value == "top")
            elif tok.value == "group":
                self.expect_kw("by", "after 'group'")
                by = [self.parse_name("after 'group by'")]
                while self.peek().kind == ",":
                    self.advance()
                    by.append(self.parse_name("after ','"))
                group_fields: dict[str, Any] = {"by": tuple(by)}
                if self.peek().kind == ":":
                    self.advance()
                    group_fields["aggregates"] = self.parse_aggs()
                fields["group"] = self.build(Group, tok, **group_fields)
            else:  # aggregate
                fields["group"] = self.build(Group, tok, by=(), aggregates=self.parse_aggs())
        page = self.build(Page, self.peek(), offset=offset or 0, limit=DEFAULT_LIMIT if limit is None else limit)
        first = self.toks[0]
        return self.build(Query, first, filter=filt, page=page, **fields)

    def parse_int(self, context: str) -> int:
        tok = self.peek()
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
            raise self.error(f"expected a non-negative integer {context} but found {tok.describe()}")
        self.advance()
        return tok.value

    def parse_name(self, context: str) -> str:
        tok = self.peek()
        if tok.kind != "name":
            hint = f" (write `{tok.raw}` in backticks to use it as a column name)" if tok.kind == "kw" else ""
            raise self.error(f"expected a column name {context} but found {tok.describe()}{hint}")
        self.advance()
        return str(tok.value)

    def parse_sort_keys(self) -> tuple[SortKey, ...]:
        keys = []
        while True:
            tok = self.peek()
            if (tok.kind == "name" and not tok.quoted and str(tok.value).lower() in _AGG_FNS
                    and self.peek(1).kind == "("):
                column = self.parse_agg().name
            else:
                column = self.parse_name("in 'sort by'")
            descending = False
            if self.is_kw("asc", "desc"):
                descending = self.advance().value == "desc"
            keys.append(self.build(SortKey, tok, column=column, descending=descending))
            if self.peek().kind != ",":
                return tuple(keys)
            self.advance()

    def parse_aggs(self) -> tuple[Aggregate, ...]:
        aggs = [self.parse_agg()]
        while self.peek().kind == ",":
            self.advance()
            tok = self.peek()
            agg = self.parse_agg()
            if any(a.name == agg.name for a in aggs):
                raise self.error(f"duplicate aggregate {agg.name}", tok)
            aggs.append(agg)
        return tuple(aggs)

    def parse_agg(self) -> Aggregate:
        tok = self.peek()
        fn = str(tok.value).lower() if tok.kind == "name" and not tok.quoted else ""
        if fn not in _AGG_FNS:
            raise self.error(f"expected an aggregate (count, mean(col), min(col), max(col), sum(col), "
                             f"median(col), quantile(col, q)) but found {tok.describe()}")
        self.advance()
        if fn == "count":
            if self.peek().kind != "(":
                return Aggregate(fn="count")
            self.advance()
            column = None if self.peek().kind == ")" else self.parse_name("in count(...)")
            self.expect(")", "to close count(")
            return self.build(Aggregate, tok, fn="count", column=column)
        self.expect("(", f"after '{tok.raw}' (e.g. {fn}(loss))")
        column = self.parse_name(f"in {fn}(...)")
        if fn == "quantile":
            self.expect(",", "after the column in quantile(col, q)")
            qtok = self.peek()
            q = self.parse_number("for q in quantile(col, q)")
            self.expect(")", "to close quantile(")
            return self.build(Aggregate, qtok, fn="quantile", column=column, q=float(q))
        self.expect(")", f"to close {fn}(")
        if fn == "median":
            return self.build(Aggregate, tok, fn="quantile", column=column, q=0.5)
        if fn == "avg":
            fn = "mean"
        return self.build(Aggregate, tok, fn=fn, column=column)

    # -- filters -----------------------------------------------------------------
    def parse_or(self) -> Filter:
        start = self.peek()
        items = [self.parse_and()]
        while self.is_kw("or"):
            self.advance()
            items.append(self.parse_and())
        if len(items) == 1:
            return items[0]
        return self.build(AnyOf, start, filters=tuple(items))

    def parse_and(self) -> Filter:
        start = self.peek()
        items = [self.parse_not()]
        while self.is_kw("and"):
            self.advance()
            items.append(self.parse_not())
        if len(items) == 1:
            return items[0]
        return self.build(All, start, filters=tuple(items))

    def parse_not(self) -> Filter:
        if not self.is_kw("not"):
            return self.parse_atom()
        tok = self.advance()
        if self.peek().kind == "has":
            return self.build(NotHasTag, self.peek(), tag=self.advance().value)
        if self.is_kw("has") and self.peek(1).kind == "name":  # not has <column>: the column is null
            self.advance()
            return self.build(IsNull, self.peek(), column=str(self.advance().value))
        self.enter(tok)
        inner = self.parse_not()
        self.depth -= 1
        return Not(filter=inner)

    def parse_atom(self) -> Filter:
        tok = self.peek()
        if tok.kind == "(":
            self.advance()
            self.enter(tok)
            inner = self.parse_or()
            self.depth -= 1
            if self.peek().kind != ")":
                raise self.error(f"expected ')' to close the '(' at position {tok.pos} but found "
                                 f"{self.peek().describe()}")
            self.advance()
            return inner
        if self.is_kw("all", "any") and self.peek(1).kind == "(":
            self.advance()
            self.advance()
            self.enter(tok)
            args: list[Filter] = []
            if self.peek().kind != ")":
                args.append(self.parse_or())
                while self.peek().kind == ",":
                    self.advance()
                    args.append(self.parse_or())
            self.depth -= 1
            self.expect(")", f"to close {tok.raw}(")
            cls = All if tok.value == "all" else AnyOf
            return self.build(cls, tok, filters=tuple(args))
        if tok.kind == "has":
            self.advance()
            return self.build(HasTag, tok, tag=tok.value)
        if self.is_kw("has") and self.peek(1).kind == "name":  # has <column>: the column is not null
            self.advance()
            return self.build(NotNull, self.peek(), column=str(self.advance().value))
        if tok.kind == "name":
            self.advance()
            return self.parse_predicate(tok)
        hint = ""
        if tok.kind == "kw" and tok.value not in ("not", "all", "any"):
            hint = f" (write `{tok.raw}` in backticks to use it as a column name)"
        raise self.error(f"expected a condition (a column, has:<tag>, not, or '(') but found "
                         f"{tok.describe()}{hint}")

    def parse_predicate(self, name_tok: _Tok) -> Filter:
        column = str(name_tok.value)
        tok = self.peek()
        if tok.kind == "op":
            self.advance()
            value = self.parse_value(f"after '{tok.raw}'")
            if name_tok.tagref and tok.value == "==" and isinstance(value, str):
                return self.build(CategoryEquals, name_tok, tag=column[len(TAG_PREFIX):], value=value)
            return self.build(Compare, name_tok, op=tok.value, column=column, value=value)
        negate = False
        if self.is_kw("not"):
            if not self.is_kw("in", "between", "contains", "icontains", ahead=1):
                raise self.error(f"expected 'in', 'between' or 'contains' after 'not' but found "
                                 f"{self.peek(1).describe()}", self.peek(1))
            self.advance()
            negate = True
            tok = self.peek()
        result: Filter
        if self.is_kw("between"):
            self.advance()
            low = self.parse_number("after 'between'")
            self.expect_kw("and", "between the bounds of 'between'")
            high_tok = self.peek()
            high = self.parse_number("after 'and'")
            result = self.build(Between, high_tok, column=column, low=low, high=high)
        elif self.is_kw("in"):
            self.advance()
            self.expect("(", "after 'in' (e.g. label in (1, 2))")
            values: list[Any] = []
            if self.peek().kind != ")":
                values.append(self.parse_value("in the list"))
                while self.peek().kind == ",":
                    self.advance()
                    values.append(self.parse_value("after ','"))
            self.expect(")", "to close the 'in' list")
            result = self.build(In, tok, column=column, values=tuple(values))
        elif self.is_kw("contains", "icontains"):
            kw = self.advance()
            stok = self.peek()
            if stok.kind != "string":
                raise self.error(f"expected a quoted string after '{kw.raw}' but found {stok.describe()}")
            self.advance()
            result = self.build(Contains, stok, column=column, value=stok.value,
                                ignore_case=kw.value == "icontains")
        elif self.is_kw("is") and not negate:
            self.advance()
            is_not = False
            if self.is_kw("not"):
                self.advance()
                is_not = True
            self.expect_kw("null", "after 'is'" + (" not" if is_not else ""))
            return self.build(NotNull if is_not else IsNull, name_tok, column=column)
        else:
            # A bare column: the boolean column is true (`discarded`, `tag:noisy`).
            return self.build(Compare, name_tok, op="==", column=column, value=True)
        return Not(filter=result) if negate else result

    def parse_number(self, context: str) -> int | float:
        tok = self.peek()
        if tok.kind != "number":
            raise self.error(f"expected a number {context} but found {tok.describe()}")
        self.advance()
        return tok.value

    def parse_value(self, context: str) -> Any:
        tok = self.peek()
        if tok.kind in ("number", "string"):
            self.advance()
            return tok.value
        if self.is_kw("true", "false"):
            self.advance()
            return tok.value == "true"
        if self.is_kw("null"):
            raise self.error("null is not a value: write 'column is null' / 'column is not null'")
        if tok.kind == "name":
            raise self.error(f"expected a value {context} but found {tok.describe()}; "
                             f"quote strings: \"{tok.raw}\"")
        raise self.error(f"expected a value (number, \"string\", true, false) {context} but found "
                         f"{tok.describe()}")


def parse_query(text: str) -> Query:
    """Parse query text (filter and clauses) into a :class:`Query`."""
    if not isinstance(text, str):
        raise TypeError(f"parse_query expects text, got {type(text).__name__}")
    return _Parser(text).parse_query()


def parse_filter(text: str) -> Filter | None:
    """Parse filter-only text (``None`` for blank text)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_filter expects text, got {type(text).__name__}")
    p = _Parser(text)
    if p.peek().kind == "eof":
        return None
    f = p.parse_or()
    if p.peek().kind != "eof":
        raise p.error(f"expected 'and', 'or' or end of filter but found {p.peek().describe()}")
    return f


# -- formatting -----------------------------------------------------------------------


def _is_combinator(f: Any) -> bool:
    return isinstance(f, (All, AnyOf)) and len(f.filters) >= 2


def format_filter(f: Filter) -> str:
    """A filter spec in the text syntax (``parse_filter(format_filter(f)) == f``)."""
    if isinstance(f, (All, AnyOf)):
        word = "all" if isinstance(f, All) else "any"
        if len(f.filters) < 2:
            return f"{word}(" + ", ".join(format_filter(c) for c in f.filters) + ")"
        joiner = " and " if isinstance(f, All) else " or "
        return joiner.join(f"({format_filter(c)})" if _is_combinator(c) else format_filter(c) for c in f.filters)
    if isinstance(f, Not):
        child = f.filter
        if isinstance(child, HasTag) or _is_combinator(child):
            return f"not ({format_filter(child)})"
        return f"not {format_filter(child)}"
    if isinstance(f, HasTag):
        return f"has:{format_tag_name(f.tag)}"
    if isinstance(f, NotHasTag):
        return f"not has:{format_tag_name(f.tag)}"
    if isinstance(f, CategoryEquals):
        return f"{TAG_PREFIX}{format_tag_name(f.tag)} == {format_value(f.value)}"
    name = format_name(f.column)
    if isinstance(f, Compare):
        if f.op == "==" and f.value is True:
            return name
        return f"{name} {f.op} {format_value(f.value)}"
    if isinstance(f, Between):
        return f"{name} between {format_number(f.low)} and {format_number(f.high)}"
    if isinstance(f, In):
        return f"{name} in (" + ", ".join(format_value(v) for v in f.values) + ")"
    if isinstance(f, Contains):
        return f"{name} {'icontains' if f.ignore_case else 'contains'} {format_value(f.value)}"
    if isinstance(f, IsNull):
        return f"{name} is null"
    if isinstance(f, NotNull):
        return f"{name} is not null"
    raise TypeError(f"cannot format {type(f).__name__}")


def format_query(spec: Query | Filter) -> str:
    """A query (or a bare filter) in the text syntax, for showing plans to people.

    ``parse_query(format_query(q)) == q`` (a ``Compare`` on ``tag:<name> == "<text>"`` comes
    back as the equivalent ``CategoryEquals``).
    """
    if not isinstance(spec, Query):
        return format_filter(spec)
    parts: list[str] = []
    if spec.filter is not None:
        parts.append(format_filter(spec.filter))
    if spec.top_k is not None:
        word = "top" if spec.top_k.largest else "bottom"
        parts.append(f"{word} {spec.top_k.k} by {format_name(spec.top_k.column)}")
    agg_names: set[str] = set()
    if spec.group is not None:
        aggs = ", ".join(a.name for a in spec.group.aggregates)
        agg_names = {a.name for a in spec.group.aggregates}
        if spec.group.by:
            parts.append("group by " + ", ".join(format_name(b) for b in spec.group.by) + ": " + aggs)
        else:
            parts.append("aggregate " + aggs)
    if spec.sort:
        keys = []
        for k in spec.sort:
            col = k.column if k.column in agg_names and k.column != "count" else format_name(k.column)
            keys.append(col + (" desc" if k.descending else ""))
        parts.append("sort by " + ", ".join(keys))
    if spec.page.limit != DEFAULT_LIMIT:
        parts.append(f"limit {spec.page.limit}")
    if spec.page.offset:
        parts.append(f"offset {spec.page.offset}")
    return " ".join(parts)
