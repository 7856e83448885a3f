"""One rank of a two-process job whose ranks watch datasets of different sizes (a careless user
who loads a different subset on rank 1). Run by test_distributed_mismatch.py."""

from __future__ import annotations

import faulthandler
import sys

import numpy as np
import torch
import torch.distributed as dist


def main() -> int:
    rank, port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    faulthandler.dump_traceback_later(seconds, exit=True)  # a hang ends with its stack, not forever
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    import weightslab as wl

    n = 96 if rank == 0 else 64
    x = np.random.default_rng(0).random((n, 4)).astype(np.float32)
    model = wl.watch_or_edit(torch.nn.Linear(4, 4), flag="model")
    opt = wl.watch_or_edit(torch.optim.SGD(model.parameters(), lr=0.1), flag="optimizer")
    loader = wl.watch_or_edit((x, np.arange(n) % 4), flag="data", loader_name="train", batch_size=8, seed=0)
    loss_fn = wl.watch_or_edit(torch.nn.CrossEntropyLoss(reduction="none"), flag="loss", name="train_loss")
    for inputs, ids, labels in loader:
        with wl.guard_training_context:
            opt.zero_grad()
            loss_fn(model(torch.as_tensor(inputs)), torch.as_tensor(labels), batch_ids=ids).mean().backward()
            opt.step()
    print(f"rank {rank}: epoch finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
