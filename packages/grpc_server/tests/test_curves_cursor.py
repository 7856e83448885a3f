"""Per-client curve cursors: every client gets every point exactly once, incrementally."""

from __future__ import annotations

import threading

import numpy as np
from grpc_testutil import TIMEOUT, pb


def _poll(stub, cursor: int, seen: list[tuple[str, int, float, int]]) -> int:
    reply = stub.GetCurves(pb.GetCurvesRequest(since_seq=cursor), timeout=TIMEOUT)
    for series in reply.series:
        seen.extend((series.signal, p.step, p.value, p.seq) for p in series.points)
    assert reply.next_seq >= cursor
    return int(reply.next_seq)


def test_two_clients_each_get_all_points_incrementally(make_env) -> None:
    env = make_env(populate_data=False)
    history = env.experiment.history
    a, b = env.stub(), env.stub()
    cursor_a = cursor_b = 0
    seen_a: list[tuple[str, int, float, int]] = []
    seen_b: list[tuple[str, int, float, int]] = []
    appended = []
    for step in range(30):
        for signal in ("loss", "acc"):
            point = history.append_curve(signal, "train", "b0", step, float(step) / 10)
            appended.append((signal, point.step, point.value, point.seq))
        if step % 2 == 0:
            cursor_a = _poll(a, cursor_a, seen_a)
        if step % 7 == 0:
            cursor_b = _poll(b, cursor_b, seen_b)
    cursor_a = _poll(a, cursor_a, seen_a)
    cursor_b = _poll(b, cursor_b, seen_b)
    assert sorted(seen_a, key=lambda p: p[3]) == appended
    assert sorted(seen_b, key=lambda p: p[3]) == appended
    assert len(seen_a) == len(set(seen_a)) == 60  # nothing twice: the server keeps no per-client queue
    assert _poll(a, cursor_a, []) == cursor_a  # nothing new, cursor unchanged


def test_cursor_under_concurrent_appends(make_env) -> None:
    env = make_env(populate_data=False)
    history = env.experiment.history
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        step = 0
        while not stop.is_set() and step < 3000:
            written.append(history.append_curve("loss", "train", "b0", step, float(np.sin(step))).seq)
            step += 1

    thread = threading.Thread(target=writer)
    thread.start()
    stubs = [env.stub(), env.stub()]
    cursors = [0, 0]
    seen: list[list[int]] = [[], []]
    try:
        for _ in range(40):
            for i, stub in enumerate(stubs):
                reply = stub.GetCurves(pb.GetCurvesRequest(since_seq=cursors[i], signals=["loss"]), timeout=TIMEOUT)
                for series in reply.series:
                    seen[i].extend(p.seq for p in series.points)
                cursors[i] = reply.next_seq
    finally:
        stop.set()
        thread.join(10)
    for i, stub in enumerate(stubs):
        reply = stub.GetCurves(pb.GetCurvesRequest(since_seq=cursors[i]), timeout=TIMEOUT)
        for series in reply.series:
            seen[i].extend(p.seq for p in series.points)
        assert seen[i] == written  # every point once, in order, no gaps
