"""``data-quality [refresh [WAIT_SECONDS]] [--pairs N]``: embedding scores' state and train/val leakage.

A thin adapter over :mod:`weightslab.operations.data_quality`; the score columns themselves are
queried like any column (``query outlier_score > 2 sort by outlier_score desc``,
``query has near_duplicate_of``).
"""

from __future__ import annotations

from typing import Any

from weightslab.operations.data_quality import DataQualityRequest, get_data_quality

from weightslab_cli.commands import CommandContext, CommandError, command
from weightslab_cli.protocol import Request, split_args

USAGE = "data-quality [refresh [WAIT_SECONDS]] [--pairs N]"


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CommandError(f"{what}={text!r}: expected a number") from None


@command("data-quality", USAGE, "Outlier / near-duplicate scores from embeddings: computation state and "
         "cross-split near-duplicate pairs (train/val leakage); 'refresh' recomputes now.")
def _data_quality(ctx: CommandContext, req: Request) -> dict[str, Any]:
    tokens = list(req.args) if req.args is not None else split_args(req.rest)
    refresh, wait, pairs = False, 0.0, 50
    while tokens:
        token = tokens.pop(0)
        if token == "refresh":
            refresh = True
            if tokens and not tokens[0].startswith("--"):
                wait = _number(tokens.pop(0), "WAIT_SECONDS")
        elif token == "--pairs" and tokens:
            value = _number(tokens.pop(0), "--pairs")
            if not value.is_integer():
                raise CommandError(f"--pairs={value:g}: expected a whole number")
            pairs = int(value)
        else:
            raise CommandError(f"unexpected {token!r}; usage: {USAGE}")
    result = get_data_quality(ctx.experiment, DataQualityRequest(refresh=refresh, wait_seconds=wait,
                                                                 max_pairs=pairs))
    return {"data_quality": result.to_dict()}
