"""The Studio data board's RPCs: ListTags and GetThumbnails (a page of thumbnails in one call)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from grpc_testutil import TIMEOUT, Env, pb, rpc_error


def test_list_tags_kinds_counts_and_values(make_env) -> None:
    env = make_env()  # populate: "hard" on train 0..9, quality=blurry on train 0..4
    stub = env.stub()
    exp = env.experiment
    exp.edit("tag", ids=["t1", "t2"], tag="hard")
    exp.edit("set_category", ids=["7", "8", "t3"], tag="quality", value="sharp")
    exp.edit("set_category", ids=["9"], tag="quality", value="sharp")
    exp.edit("discard", ids=["1"])
    reply = stub.ListTags(pb.ListTagsRequest(), timeout=TIMEOUT)
    tags = {t.name: t for t in reply.tags}
    assert [t.name for t in reply.tags] == sorted(tags)
    hard, quality = tags["hard"], tags["quality"]
    assert hard.kind == pb.TAG_KIND_BOOLEAN and not hard.values
    assert hard.count == 12 and dict(hard.split_counts) == {"train": 10, "test": 2} and hard.discarded == 1
    assert quality.kind == pb.TAG_KIND_CATEGORICAL
    assert quality.count == 9 and dict(quality.split_counts) == {"train": 8, "test": 1}
    assert [(v.value, v.count, dict(v.split_counts)) for v in quality.values] == [
        ("blurry", 5, {"train": 5}), ("sharp", 4, {"train": 3, "test": 1})]
    exp.edit("untag", ids=[str(i) for i in range(10)] + ["t1", "t2"], tag="hard")
    hard = {t.name: t for t in stub.ListTags(pb.ListTagsRequest(), timeout=TIMEOUT).tags}["hard"]
    assert hard.count == 0 and not hard.split_counts


def test_list_tags_empty_table(make_env) -> None:
    env = make_env(populate_data=False)
    assert not env.stub().ListTags(pb.ListTagsRequest(), timeout=TIMEOUT).tags


def _with_loader(env: Env) -> None:
    from weightslab.data import WatchedLoader

    x = np.arange(6 * 4 * 4, dtype=np.float32).reshape(6, 4, 4)
    env.experiment.loaders["media"] = WatchedLoader(env.experiment, (x, np.arange(6) % 2), loader_name="media",
                                                    batch_size=2)


def test_thumbnails_page_in_request_order_with_per_id_errors(make_env) -> None:
    env = make_env()  # train/test rows have no loader in this process: no media
    _with_loader(env)
    stub = env.stub()
    reply = stub.GetThumbnails(pb.GetThumbnailsRequest(sample_ids=["3", "nope", "1", "3"], split="media", size=64),
                               timeout=TIMEOUT)
    assert reply.size == 64
    assert [t.sample_id for t in reply.thumbnails] == ["3", "nope", "1", "3"]
    ok = [t for t in reply.thumbnails if not t.error]
    assert [t.data for t in ok] == [b"thumb:(4, 4):48.0:64", b"thumb:(4, 4):16.0:64", b"thumb:(4, 4):48.0:64"]
    assert all(t.mime_type == "image/x-test" and t.split == "media" for t in ok)
    missing = reply.thumbnails[1]
    assert missing.error_code == "INVALID_ARGUMENT" and "nope" in missing.error and not missing.data
    # without a split: "3" exists in media and in train -> ambiguous; "t1" has no loader here
    mixed = stub.GetThumbnails(pb.GetThumbnailsRequest(sample_ids=["3", "t1"]), timeout=TIMEOUT)
    three, t1 = mixed.thumbnails
    assert mixed.size == 720  # WL_DEFAULT_THUMBNAIL_SIZE default
    assert "several splits" in three.error and three.error_code == "INVALID_ARGUMENT" and not three.data
    assert t1.error_code == "FAILED_PRECONDITION" and t1.split == "test" and "no watched data loader" in t1.error
    assert len(env.plugin.previews) == 3  # only the ids that rendered


@pytest.mark.parametrize(("request_kwargs", "field"), [
    ({"sample_ids": []}, "sample_ids"),
    ({"sample_ids": ["1"] * 513}, "sample_ids"),
    ({"sample_ids": ["1"], "size": 9000}, "size"),
    ({"sample_ids": [""]}, "sample_ids[0]"),
    ({"sample_ids": ["1"], "split": "x" * 300}, "split"),
])
def test_thumbnails_bad_request_names_the_field(shared_env: Env, request_kwargs, field) -> None:
    err = rpc_error(shared_env.stub().GetThumbnails, pb.GetThumbnailsRequest(**request_kwargs))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith((field + ":", field + "="))
