"""User-triggered evaluation passes over a split (optionally restricted to tagged samples).

A pass runs in a daemon thread:

1. it sets the training control to ``evaluating`` so the training loop blocks at its next
   step boundary, and waits (bounded) for the loop to get there;
2. it takes the main lock (its thread is exempt from the watchdog's stuck-lock interrupt),
   snapshots the model train/eval modes and the RNG states;
3. it runs the registered ``@wl.eval_fn`` or the default evaluator over batches built
   directly from the watched loader's dataset (never through the training sampler, which
   would block at the boundary), restricted to the selected samples;
4. it records per-sample values (``eval_loss`` with ``split=<split>``), one curve point per
   metric and an evaluation marker (``experiment.history.markers``), then restores the
   modes, the RNG states and the training state it found (running stays running, paused
   stays paused, unless ``resume_after`` says otherwise). The optimizer is never touched.

Calling convention of a user evaluation function (registered with ``@wl.eval_fn``):

* ``fn(ctx)`` with one parameter: ``ctx`` is an :class:`EvalContext` (``ctx.batches``
  yields ``(inputs, sample_ids, targets, *rest)`` exactly like the watched loader, restricted
  to the selection; ``ctx.model``; ``ctx.record(name, values, batch_ids)``;
  ``ctx.should_stop()``; ``ctx.report(**metrics)``);
* ``fn(batches, model)`` with two parameters (the classic ``eval_fn(data_loader, model)``).

It may return a mapping ``{metric: number}``, a single number (reported as ``eval_score``)
or ``None``. Metric names not starting with ``eval`` get an ``eval_`` prefix so evaluation
curves never mix with training curves of the same name.

Timeout: ``max(timeout_min_seconds, avg_batch_seconds * nb_batches * timeout_multiplier)``
unless ``timeout_seconds > 0`` (settings section ``evaluation``: ``WEIGHTSLAB_EVAL_TIMEOUT_*``).
``avg_batch_seconds`` is the mean of the training loop's recent step times scaled to the
evaluation batch size (samples per evaluation batch / samples per training batch), or the
duration of the first evaluation batch when no training step was timed yet. The pass is
stopped cooperatively between batches (``ctx.batches`` stops yielding; a user function can
poll ``ctx.should_stop()``), and reported as ``timeout``.
"""

from .context import EvalBatches, EvalContext, make_batch
from .controller import DEFAULT_EVALUATOR, STATES, EvaluationController, attach, compute_timeout
from .default import default_evaluator
from .errors import EvaluationBusy, EvaluationError

__all__ = ["DEFAULT_EVALUATOR", "STATES", "EvalBatches", "EvalContext", "EvaluationBusy", "EvaluationController",
           "EvaluationError", "attach", "compute_timeout", "default_evaluator", "make_batch"]
