"""No code-executing deserialisation or evaluation in any package source.

Scans ``packages/*/src`` (non-test code) with the tokenizer, so comments, docstrings and
strings that merely mention the names do not count, and methods such as ``model.eval()``
are not the builtin ``eval``. Flags: builtin ``eval(``/``exec(``, ``pickle.loads``/
``pickle.load``-style imports, ``marshal.loads``, ``dill.loads``, ``yaml.load(``/
``yaml.load_all(`` without a ``SafeLoader``, ``yaml.unsafe_load``, pandas ``.query(`` /
``.eval(`` on a data frame or ``pd.eval``.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PANDAS_RECEIVER = re.compile(r"(^|_)(df|frame|dataframe|data_frame)s?($|_)|^(pd|pandas)$", re.IGNORECASE)
SAFE_YAML = re.compile(r"Loader\s*=\s*(yaml\.)?C?SafeLoader")


def _source_files() -> list[Path]:
    files = []
    for path in sorted((REPO / "packages").glob("*/src/**/*.py")):
        parts = set(path.relative_to(REPO).parts)
        if "tests" in parts or path.name.startswith("test_") or "node_modules" in parts:
            continue
        files.append(path)
    return files


def _line_rest(lines: list[str], row: int, col: int) -> str:
    """The call text from ``col`` on, spanning a few lines for multi-line calls."""
    return "".join(lines[row - 1 : row + 4])[col:]


def scan_source(text: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every unsafe construct in Python source ``text``."""
    found: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                  tokenize.DEDENT)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # Unparseable (e.g. half-written) file: fall back to a plain text search.
        for i, line in enumerate(lines, 1):
            if re.search(r"(?<![\w.])(eval|exec)\(|pickle\.loads|yaml\.unsafe_load|\bdf\.query\(", line):
                found.append((i, line.strip()))
        return found

    def tok(i: int) -> tokenize.TokenInfo | None:
        return toks[i] if 0 <= i < len(toks) else None

    def is_op(i: int, s: str) -> bool:
        t = tok(i)
        return t is not None and t.type == tokenize.OP and t.string == s

    def is_name(i: int, *names: str) -> bool:
        t = tok(i)
        return t is not None and t.type == tokenize.NAME and t.string in names

    for i, t in enumerate(toks):
        if t.type != tokenize.NAME:
            continue
        row = t.start[0]
        name = t.string
        after_dot = is_op(i - 1, ".")
        if name in ("eval", "exec") and is_op(i + 1, "(") and not after_dot and not is_name(i - 1, "def"):
            found.append((row, f"{name}("))
        elif name in ("eval", "query") and after_dot and is_op(i + 1, "("):
            recv = tok(i - 2)
            if recv is not None and (
                (recv.type == tokenize.NAME and PANDAS_RECEIVER.search(recv.string))
                or (recv.type == tokenize.OP and recv.string == ")" and is_name(i - 4, "dataframe", "DataFrame"))
            ):
                found.append((row, f"{recv.string}.{name}("))
        elif name in ("pickle", "cPickle", "dill", "marshal", "_pickle") and is_op(i + 1, ".") and is_name(
                i + 2, "loads", "load", "Unpickler"):
            found.append((row, f"{name}.{toks[i + 2].string}"))
        elif name == "from" and is_name(i + 1, "pickle", "cPickle", "dill", "marshal", "_pickle") and is_name(
                i + 2, "import"):
            j = i + 3
            while tok(j) is not None and toks[j].start[0] == row:
                if is_name(j, "loads", "load", "Unpickler"):
                    found.append((row, f"from {toks[i + 1].string} import {toks[j].string}"))
                j += 1
        elif name == "yaml" and is_op(i + 1, "."):
            attr = tok(i + 2)
            if attr is None or attr.type != tokenize.NAME:
                continue
            if attr.string in ("unsafe_load", "unsafe_load_all", "full_load", "full_load_all"):
                found.append((row, f"yaml.{attr.string}"))
            elif attr.string in ("load", "load_all") and is_op(i + 3, "("):
                if not SAFE_YAML.search(_line_rest(lines, row, t.start[1])):
                    found.append((row, f"yaml.{attr.string}( without SafeLoader"))
    return found


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("x = eval(s)\n", True),
        ("exec(code)\n", True),
        ("import pickle\nobj = pickle.loads(b)\n", True),
        ("from pickle import loads\n", True),
        ("data = yaml.load(f)\n", True),
        ("data = yaml.load(f, Loader=yaml.FullLoader)\n", True),
        ("data = yaml.unsafe_load(f)\n", True),
        ("rows = df.query('loss > 1')\n", True),
        ("rows = wl.dataframe().query(q)\n", True),
        ("x = pd.eval(expr)\n", True),
        # Not flagged:
        ("model.eval()\n", False),
        ("data = yaml.safe_load(f)\n", False),
        ("data = yaml.load(f, Loader=yaml.SafeLoader)\n", False),
        ("data = yaml.load(\n    f,\n    Loader=yaml.CSafeLoader,\n)\n", False),
        ("# never call eval(x) here\n", False),
        ('"""Docs: no eval(), exec() or pickle.loads."""\n', False),
        ("msg = 'df.query(x) is forbidden'\n", False),
        ("result = agent.query(text)\n", False),
        ("def eval(self):\n    return 1\n", False),
        ("self.evaluate(x)\n", False),
    ],
)
def test_scanner_detects(source: str, flagged: bool) -> None:
    assert bool(scan_source(source)) is flagged, scan_source(source)


def test_no_unsafe_calls_in_package_sources() -> None:
    files = _source_files()
    assert any(p.parts[-2:] == ("query", "engine.py") for p in files), "scanner found no sources"
    problems = []
    for path in files:
        for line, what in scan_source(path.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{path.relative_to(REPO)}:{line}: {what}")
    assert not problems, "unsafe constructs in package sources:\n" + "\n".join(problems)
