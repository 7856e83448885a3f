"""``wl.relabel``, ``wl.relabel_to_suggestion``, ``wl.revert_labels``, ``wl.export_labels``:
label corrections through the core operation every front end uses (same validation, lock, audit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightslab.sdk import get_experiment


def _ids(ids: Any) -> tuple[str, ...] | None:
    from weightslab.operations import InvalidRequest
    from weightslab.table import ids_to_list

    if isinstance(ids, (str, bytes, int)):  # relabel("5", 3): one id is still a list of ids
        raise InvalidRequest.of("ids", ids, f"expected a list of sample ids (e.g. [{ids!r}])")
    return None if ids is None else tuple(ids_to_list(ids))


def _result(result: Any) -> dict[str, Any]:
    out = {"matched": result.matched, "changed": result.changed, "sample_ids": list(result.sample_ids)}
    if result.action == "relabel_to_suggestion":
        out["without_suggestion"] = result.without_suggestion
    return out


def relabel(ids: Any = None, label: Any = None, *, query: Any = None, split: str | None = None,
            suggested: bool = False) -> dict[str, Any]:
    """Set the class label of samples (by ``ids`` or ``query``): the watched loader yields it from the
    next batch on; the original stays in ``original_label`` (``revert_labels`` brings it back).
    ``suggested=True`` sets each sample's ``suggested_label`` instead of one ``label``."""
    from weightslab.operations.labels import RelabelRequest, relabel_samples

    if suggested and label is not None:
        raise ValueError("give label= or suggested=True, not both")
    request = RelabelRequest(action="relabel_to_suggestion" if suggested else "relabel", ids=_ids(ids),
                             query=query, split=split or "", label=label)
    return _result(relabel_samples(get_experiment(), request))


def relabel_to_suggestion(ids: Any = None, *, query: Any = None, split: str | None = None) -> dict[str, Any]:
    """Accept the run's ``suggested_label`` for these samples (rows without one are left as they are)."""
    return relabel(ids, query=query, split=split, suggested=True)


def revert_labels(ids: Any = None, *, query: Any = None, split: str | None = None) -> dict[str, Any]:
    """Give corrected samples their original label back."""
    from weightslab.operations.labels import RelabelRequest, relabel_samples

    request = RelabelRequest(action="revert_label", ids=_ids(ids), query=query, split=split or "")
    return _result(relabel_samples(get_experiment(), request))


def export_labels(path: str | Path | None = None, format: str | None = None, *,
                  split: str | None = None) -> Path:
    """Write every corrected label (id, split, original, corrected, by, at) as CSV or JSON;
    default ``<root_log_dir>/exports/labels.csv``. Returns the path written."""
    from weightslab.operations.labels import ExportLabelsRequest, write_labels
    from weightslab.operations.labels import export_labels as export_op

    experiment = get_experiment()
    result = export_op(experiment, ExportLabelsRequest(split=split or ""))
    if path is None:
        path = experiment.root_log_dir / "exports" / f"labels.{(format or 'csv').lower()}"
    return write_labels(result.rows(), path, format)
