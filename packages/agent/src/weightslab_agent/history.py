"""Bounded, structured agent history: questions, answers, errors and log-style entries
(connect, model_change, reset). Never holds an API key."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

EntryKind = Literal["question", "answer", "error", "applied", "connect", "model_change", "reset"]
MAX_ENTRIES = 500
PROMPT_TURNS = 3


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class HistoryEntry:
    kind: EntryKind
    text: str
    details: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)  # seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "timestamp": _iso(self.time), "kind": self.kind, "text": self.text,
                "details": dict(self.details)}


class History:
    def __init__(self, maxlen: int = MAX_ENTRIES) -> None:
        self._entries: deque[HistoryEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, kind: EntryKind, text: str, **details: Any) -> HistoryEntry:
        entry = HistoryEntry(kind, text, details)
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self, limit: int | None = None) -> list[HistoryEntry]:
        with self._lock:
            items = list(self._entries)
        return items[-limit:] if limit else items

    def turns(self, n: int = PROMPT_TURNS) -> list[tuple[str, str]]:
        """The last ``n`` answered questions as ``(question, plan JSON)`` for the prompt."""
        out: list[tuple[str, str]] = []
        for entry in reversed(self.entries()):
            plan = entry.details.get("plan")
            if entry.kind == "answer" and plan is not None:
                out.append((str(entry.details.get("question", "")), json.dumps(plan, separators=(",", ":"))))
                if len(out) >= n:
                    break
        return list(reversed(out))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
