"""``WatchedLoader.set_epoch``: ``DistributedSampler``'s way of choosing an epoch's shuffle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from weightslab.data import WatchedLoader
from weightslab.experiment import Experiment

ENV = {"WEIGHTSLAB_DISABLED_PLUGINS": "data_cache,grpc_server,cli,watchdog,auth,agent,studio,example",
       "WEIGHTSLAB_LOG_LEVEL": "WARNING"}


def _order(loader: WatchedLoader) -> list[str]:
    return [i for _, ids, _ in loader for i in ids]


@pytest.fixture
def experiment(tmp_path: Path):  # noqa: ANN201
    exp = Experiment(kwargs={"root_log_dir": tmp_path}, environ=ENV)
    exp.start()
    yield exp
    exp.shutdown()


def _loader(exp: Experiment, name: str, seed: int | None) -> WatchedLoader:
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    return WatchedLoader(exp, (x, np.arange(20) % 2), loader_name=name, batch_size=6, shuffle=True, seed=seed)


def test_the_same_epoch_gives_the_same_order_and_another_epoch_another(experiment: Experiment) -> None:
    a, b = _loader(experiment, "train", 7), _loader(experiment, "other", 7)
    a.set_epoch(3)
    first = _order(a)
    a.set_epoch(3)
    assert _order(a) == first  # a rerun of epoch 3
    b.set_epoch(3)
    assert _order(b) == first  # another loader (another rank) with the seed
    a.set_epoch(4)
    assert _order(a) != first and sorted(_order(a)) == sorted(first)
    c = _loader(experiment, "third", 8)
    c.set_epoch(3)
    assert _order(c) != first  # the seed matters


def test_without_set_epoch_every_epoch_is_shuffled_anew(experiment: Experiment) -> None:
    loader = _loader(experiment, "train", None)
    assert _order(loader) != _order(loader)


@pytest.mark.parametrize("epoch", [-1, 1.5, "2", True])
def test_a_bad_epoch_is_refused_with_what_is_accepted(experiment: Experiment, epoch: object) -> None:
    loader = _loader(experiment, "train", 0)
    with pytest.raises(ValueError, match=r"set_epoch\(epoch=.*\): expected an integer >= 0"):
        loader.set_epoch(epoch)  # type: ignore[arg-type]
