"""Label corrections from a hostile or careless client over a real gRPC server (TLS + token on
127.0.0.1): out-of-range classes before the model's width is known, export of an unknown split,
no client-given path on ExportLabels, and two clients relabelling the same rows at once."""

from __future__ import annotations

import threading

import grpc
import numpy as np
from grpc_testutil import TIMEOUT, pb, rpc_error


def test_export_labels_takes_no_path_and_names_an_unknown_split(make_env) -> None:
    # the server never writes a file a client names: the request has a split and nothing else
    assert [f.name for f in pb.ExportLabelsRequest.DESCRIPTOR.fields] == ["split"]
    env = make_env()
    stub = env.stub()
    stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_RELABEL, ids=pb.SampleIds(ids=["1"]), label=3),
                     timeout=TIMEOUT)
    err = rpc_error(stub.ExportLabels, pb.ExportLabelsRequest(split="trian"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "split='trian': unknown split; known splits: test, train" in err.details()
    assert [e.id for e in stub.ExportLabels(pb.ExportLabelsRequest(split="train"), timeout=TIMEOUT).labels] == ["1"]


def test_a_class_beyond_the_dataset_is_refused_while_the_width_is_unknown(make_env) -> None:
    env = make_env()  # recorded prediction votes only: the number of classes is not known
    stub = env.stub()
    exp = env.experiment
    assert exp.suggestions.n_classes == 0
    for label, message in ((99, "label=99: out of range: the labels of split 'train' go up to 9"),
                           (2**62, "label=4611686018427387904: expected a class index")):
        err = rpc_error(stub.EditSamples, pb.EditSamplesRequest(
            action=pb.EDIT_ACTION_RELABEL, query=pb.SampleQuery(text='split == "train"'), label=label))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.details(), err.details()
    assert len(exp.label_edits) == 0 and np.isnan(exp.table.numeric.get("original_label", np.full(1, np.nan))).all()


def test_two_clients_relabelling_the_same_rows_keep_originals_and_corrections_consistent(make_env) -> None:
    env = make_env()
    exp = env.experiment
    errors: list[BaseException] = []

    def client(label: int) -> None:
        stub = env.stub()
        try:
            for _ in range(10):
                stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_RELABEL, split="train",
                                                       query=pb.SampleQuery(text="sample_id != ''"), label=label),
                                 timeout=TIMEOUT)
                stub.EditSamples(pb.EditSamplesRequest(action=pb.EDIT_ACTION_REVERT_LABEL, split="train",
                                                       ids=pb.SampleIds(ids=["1", "2", "3"])), timeout=TIMEOUT)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(label,)) for label in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 4)
    assert not errors and not any(t.is_alive() for t in threads)
    table = exp.table
    rows = np.flatnonzero(table.split[: table.n] == "train")
    label, original = table.numeric["label"][rows], table.numeric["original_label"][rows]
    # every row's original is the dataset's label, whatever interleaving happened
    assert (np.where(np.isfinite(original), original, label) == np.arange(100) % 10).all()
    corrected = exp.label_edits.corrected(rows)
    assert ((corrected >= 0) == np.isfinite(original)).all()
    assert (label[corrected >= 0] == corrected[corrected >= 0]).all() and set(label[corrected >= 0]) <= {3.0, 4.0}
