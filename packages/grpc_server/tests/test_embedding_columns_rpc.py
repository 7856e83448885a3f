"""The embedding score columns (weightslab.embeddings) through QuerySamples on a real server."""

from __future__ import annotations

import numpy as np
from grpc_testutil import TIMEOUT, pb
from weightslab.embeddings import EmbeddingIndex


def test_outlier_and_near_duplicate_columns_are_served(make_env) -> None:
    env = make_env()
    exp = env.experiment
    rows = np.arange(exp.table.n)  # populate(): train 0..99, test t0..t19
    values = np.random.default_rng(0).normal(size=(len(rows), 16)).astype(np.float32)
    values[100 + 3] = values[7] + 1e-4  # test/t3 copies train/7
    values[42] = 40.0  # train/42 is far from everything
    index = EmbeddingIndex(exp)
    index.put(rows, values, 5)
    exp.embeddings = index
    assert index.refresh(wait=True, timeout=TIMEOUT)
    stub = env.stub()
    top = stub.QuerySamples(pb.QuerySamplesRequest(
        query=pb.SampleQuery(text="outlier_score > 2 sort by outlier_score desc"),
        columns=["outlier_score", "uniqueness"]), timeout=TIMEOUT)
    assert top.total >= 1 and top.rows[0].sample_id == "42" and top.rows[0].values[0].number > 2
    assert [c.type for c in top.columns] == [pb.COLUMN_TYPE_NUMBER, pb.COLUMN_TYPE_NUMBER]
    dups = stub.QuerySamples(pb.QuerySamplesRequest(
        query=pb.SampleQuery(text="has near_duplicate_of sort by sample_id"),
        columns=["near_duplicate_of", "near_duplicate_split", "duplicate_group"]), timeout=TIMEOUT)
    assert dups.total == 2
    got = {(r.split, r.sample_id): (r.values[0].string, r.values[1].string) for r in dups.rows}
    assert got == {("train", "7"): ("t3", "test"), ("test", "t3"): ("7", "train")}
    assert dups.rows[0].values[2].number == dups.rows[1].values[2].number == 7  # the group's first row
    status = stub.GetStatus(pb.GetStatusRequest(), timeout=TIMEOUT)
    assert status.samples == 120
