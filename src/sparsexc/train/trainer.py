"""Mini-batch training of an :class:`~sparsexc.models.XCModel` straight from CSR matrices."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from sparsexc._params import RunParams, TrainParams
from sparsexc._sparse import as_features, as_label_matrix
from sparsexc.core.labels import LabelBatch
from sparsexc.errors import (
    ConfigurationError,
    NonFiniteLossError,  # re-exported: the old import path
)
from sparsexc.heads._metric_bridge import evaluate, parse_val_metric
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.model import XCModel
from sparsexc.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from sparsexc.train.optim import build_optimizer, build_scheduler
from sparsexc.train.progress import epoch_line, fit_summary, interactive
from sparsexc.train.state import TrainState, restore_rng, rng_tensors
from sparsexc.train.strategy import Strategy, choose_strategy

__all__ = ["NonFiniteLossError", "Trainer", "epoch_order", "resolve_device"]


# a feature value above this makes the error of a non-finite loss suggest scaling the features first
_LARGE_FEATURE = 1e6


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other strings are passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(f"device={device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def epoch_order(seed: int, epoch: int, n_rows: int) -> np.ndarray:
    """The shuffled row order of an epoch: a function of (seed, epoch) only, so a resumed run replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n_rows)


class Trainer:
    """Train a model with mini-batches, validation, early stopping and resumable checkpoints.

    Parameters
    ----------
    model : XCModel
    params : TrainParams, dict or None
    checkpoint_dir : str, os.PathLike or None
        Folder for ``checkpoint.pt``/``checkpoint.json``, written atomically every ``checkpoint_every`` steps
        and at every epoch end. Needed for ``fit(resume=True)``.
    checkpoint_every : int or None
        Steps between checkpoints (beside the one at every epoch end); needs ``checkpoint_dir``.
    log_path : str, os.PathLike or None
        JSON-lines file, one line of metrics per epoch, rewritten atomically at every epoch end.
    on_epoch_end : callable ``(trainer, record) -> None``, optional
        Called at the end of every epoch this process trains, once the epoch's record is made (the entry
        appended to :attr:`history`: ``train_loss``, ``seconds``, ``val_<metric>``, ...), its checkpoint and log
        written and early stopping decided; ``record`` is a copy. Called on every rank of a multi-process run
        (``sparsexc.distributed.is_main`` tells which one should write). It runs outside the epoch's clock
        (``seconds`` does not include it), so a caller can evaluate or time the run here.

    ``checkpoint_dir``, ``checkpoint_every``, ``log_path`` and ``fit``'s ``resume`` are the run plumbing
    (:class:`sparsexc._params.RunParams`, where their constraints and help are declared): they say where a
    run writes, never what it learns.

    Notes
    -----
    ``fit`` seeds torch's global generator with ``params.seed`` (dropout) and draws the row order of epoch
    ``e`` from ``numpy.random.default_rng([seed, e])``; a checkpoint stores the weights, optimiser and
    scheduler states, torch's generator state, the position in the epoch, the running loss, the history and
    the best weights so far, so a resumed run is bit-identical to an uninterrupted one on the same machine.

    Inside a ``torch.distributed`` process group of S ranks (torchrun, ``sparsexc train --nproc-per-node``;
    see ``docs/distributed.md``) the step runs under DistributedDataParallel: every rank draws the same
    global row order, takes its contiguous share of each global batch of ``batch_size`` rows, and the
    gradients are averaged so the step equals the one-process step on the whole batch. Losses are
    all-reduced, validation rows are scored in shards and gathered, and only rank 0 writes checkpoints and
    logs. A checkpoint holds global positions only, so it resumes on any number of ranks.

    A model whose head holds a label-sharded output layer (``shard_labels=True``) is trained model-parallel
    over the labels instead: every rank takes the whole global batch and the step equals the one-process
    step. Which of the three (one process, data parallel, label sharded) is decided once per ``fit`` by
    :func:`sparsexc.train.strategy.choose_strategy` (:attr:`strategy`); the Trainer asks it, never the mode.
    A label-sharded model's checkpoints keep the sharded tensors (weights, best weights, optimiser state) in
    one file per rank with an index in the state (:func:`save_label_shards`), and resume re-shards them for
    the current number of ranks. ``params.precision="bfloat16"`` runs the forward
    pass and the loss under autocast.

    Attributes (after fit)
    ----------------------
    history : list of dict
        One entry per epoch: ``epoch``, ``train_loss``, ``lr``, ``seconds``, ``examples_per_second`` and
        ``val_<metric>`` for every metric of ``sparsexc.metrics.evaluate`` when validation data was given.
    best_epoch : int or None
        Epoch (1-based) whose weights were kept.
    stopped_early : bool
    fit_summary : dict
        How training ended (:func:`sparsexc.train.progress.fit_summary`): ``epochs_run``, ``stopped_early``,
        ``kept_epoch``, ``kept_value``, ``message`` ("stopped early after epoch 13: validation P@1 did not
        improve for 5 epochs; kept epoch 8 (P@1 0.6312)"), ...
    tuned : dict
        What ``head.tune`` returned on the validation data.
    last_grad_norm : float or None
        L2 norm of the last step's gradient before clipping.
    state : TrainState or None
        Where the run stands (:class:`sparsexc.train.state.TrainState`); also the checkpoint's JSON state.
    strategy : Strategy or None
        How the run is spread over processes (:mod:`sparsexc.train.strategy`).
    """

    def __init__(
        self,
        model: XCModel,
        params: TrainParams | dict | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        *,
        checkpoint_every: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None,
    ) -> None:
        if on_epoch_end is not None and not callable(on_epoch_end):
            raise ConfigurationError(
                f"on_epoch_end must be a callable (trainer, record) or None; got {type(on_epoch_end).__name__}"
            )
        self.model = model
        self.params = params if isinstance(params, TrainParams) else TrainParams.from_dict(params)
        run = RunParams.from_arguments(
            checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, log_path=log_path
        )
        self.checkpoint_dir, self.checkpoint_every, self.log_path = (
            run.checkpoint_dir,
            run.checkpoint_every,
            run.log_path,
        )
        self.on_epoch_end = on_epoch_end
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.fit_summary: dict[str, Any] = {}
        self.tuned: dict[str, Any] = {}
        self.last_grad_norm: float | None = None

        self.state: TrainState | None = None
        self.strategy: Strategy | None = None
        self._loss_module: torch.nn.Module | None = None

    # -- fit: the steps in order -------------------------------------------------------------------------------
    def fit(self, X: Any, Y: Any, X_val: Any = None, Y_val: Any = None, resume: bool = False) -> list[dict[str, Any]]:
        """Train; return the per-epoch history.

        With validation data: the model is scored at every epoch end (``sparsexc.metrics.evaluate``), training
        stops after ``patience`` epochs without improving ``val_metric``, the best epoch's weights are
        restored, and the head's set parameter is tuned for ``tune_metric``.
        ``resume=True`` continues from the checkpoint in ``checkpoint_dir`` (a fresh start when there is none),
        up to ``params.epochs``, which may differ from the checkpointed run's:

        * larger: training goes on to ``params.epochs``, also after a run that had finished (the same weights
          as one uninterrupted run of ``params.epochs`` when the learning rate schedule does not depend on
          ``epochs``: "constant", "step"; "linear" / "cosine" continue on the new horizon's multiplier);
        * but a run that had stopped early (``patience``) stays stopped (a warning says so; start afresh to
          train longer);
        * smaller than the epochs done: nothing is trained (a warning says so); the model and the history are
          the checkpoint's.

        With ``params.progress`` one line per epoch (``epoch 3/20  loss 0.0712  val P@1 0.5432  2.1 s  * best``)
        and, at the end, :attr:`fit_summary`'s message go to stderr, with a progress bar during each epoch when
        ``params.progress_bar`` and stderr is a terminal or a notebook (never in a log file); stdout stays free
        for the caller's output. The per-epoch JSON records go to :attr:`history` and ``log_path``.

        The steps: :meth:`_prepare` (check the inputs, place the model, build the optimiser),
        :meth:`_start` (a fresh :class:`TrainState` or the checkpoint's), then per epoch :meth:`_epoch`
        (:meth:`_train_epoch`, :meth:`_evaluate` with early stopping and :meth:`_keep_best`,
        :meth:`_checkpoint`, the log, ``on_epoch_end`` and the progress line), and :meth:`_finish` (best weights,
        tuning).

        Raises
        ------
        NonFiniteLossError
            At the first step whose loss is NaN or infinite (with several ranks: the all-reduced loss, which every
            rank sees, so all stop at the same step). The message names the epoch and step and what to try; the
            checkpoint on disk, if any, is the last one written before that step.
        """
        run = self._prepare(X, Y, X_val, Y_val, resume)
        self._start(run, resume)
        # after resuming: DDP broadcasts rank 0's weights
        self._loss_module = run.strategy.wrap(self.model, self.params.precision)
        self.model.train()
        state = self._state()
        while not state.finished and state.epoch < self.params.epochs:
            self._epoch(run)
        self._finish(run)
        return self.history

    def _prepare(self, X: Any, Y: Any, X_val: Any, Y_val: Any, resume: bool) -> _Run:
        """Check the data and settings, choose the strategy, place and seed the model, build the optimiser."""
        p, model = self.params, self.model
        X, Y, X_val, Y_val = self._checked_data(X, Y, X_val, Y_val)
        val_k, val_needs_sets, higher_is_better = self._checked_settings(X_val is not None, resume)
        strategy = self.strategy = choose_strategy(model)  # decided once for the whole run
        device = strategy.device(resolve_device(p.device))
        model.to(device)
        torch.manual_seed(p.seed)  # dropout and any other torch randomness during training
        model.prepare(X, Y)  # the head's, and a shortlist model's matcher
        steps_per_epoch = math.ceil(X.shape[0] / p.batch_size)
        optimizer = build_optimizer(model.parameters(), p)
        scheduler = build_scheduler(optimizer, p, steps_per_epoch)
        talk = p.progress and strategy.is_main  # one voice in a multi-process run
        return _Run(
            X=X,
            Y=Y,
            X_val=X_val,
            Y_val=Y_val,
            strategy=strategy,
            device=device,
            optimizer=optimizer,
            scheduler=scheduler,
            steps_per_epoch=steps_per_epoch,
            val_k=val_k,
            val_needs_sets=val_needs_sets,
            higher_is_better=higher_is_better,
            talk=talk,
            # the bar only where redraws show as one line: a file or pipe would get every redraw
            show_bar=talk and p.progress_bar and interactive(sys.stderr),
        )

    def _checked_data(
        self, X: Any, Y: Any, X_val: Any, Y_val: Any
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix | None, sp.csr_matrix | None]:
        """The training (and validation) matrices as CSR of the model's shape, or a ConfigurationError."""
        model = self.model
        X = as_features(X, name="X", n_features=model.n_features)
        Y = as_label_matrix(Y, n_labels=model.n_labels, name="Y")
        if X.shape[0] != Y.shape[0]:
            raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if X.shape[0] == 0:
            raise ConfigurationError("X has no rows to train on")
        if X_val is None and Y_val is None:
            return X, Y, None, None
        if X_val is None or Y_val is None:
            raise ConfigurationError("give both X_val and Y_val, or neither")
        X_val = as_features(X_val, name="X_val", n_features=model.n_features)
        Y_val = as_label_matrix(Y_val, n_labels=model.n_labels, name="Y_val")
        if X_val.shape[0] != Y_val.shape[0]:
            raise ConfigurationError(f"X_val has {X_val.shape[0]} rows but Y_val has {Y_val.shape[0]}")
        return X, Y, X_val, Y_val

    def _checked_settings(self, has_val: bool, resume: bool) -> tuple[int, bool, bool]:
        """``val_metric`` parsed (:func:`parse_val_metric`: its k, whether it needs label sets, whether higher
        is better), or a ConfigurationError for settings this run cannot honour."""
        p, n_labels = self.params, self.model.n_labels
        val_k, val_needs_sets, higher_is_better = parse_val_metric(p.val_metric)
        if val_k > n_labels:
            raise ConfigurationError(
                f"val_metric={p.val_metric!r} ranks the top {val_k} labels, but the model has only "
                f"n_labels={n_labels}; use k <= {n_labels}"
            )
        if p.patience is not None and not has_val:
            raise ConfigurationError("patience (early stopping) needs validation data: pass X_val and Y_val")
        if resume and self.checkpoint_dir is None:
            raise ConfigurationError("resume=True needs a checkpoint_dir")
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ConfigurationError("checkpoint_every needs a checkpoint_dir to write the checkpoints to")
        return val_k, val_needs_sets, higher_is_better

    def _start(self, run: _Run, resume: bool) -> None:
        """Set :attr:`state`: a fresh one, or (``resume``) the checkpoint's with the weights, optimiser,
        scheduler and random generators it holds; then write the log of the epochs done so far."""
        p = self.params
        self.state = TrainState(n_rows=run.X.shape[0], batch_size=p.batch_size, seed=p.seed)
        if resume:
            self._restore(run)
        self.history = self.state.history  # the same list: each epoch's record appears here at once
        if self.log_path and run.strategy.is_main:
            self._write_log(self.log_path)

    def _restore(self, run: _Run) -> None:
        """Load the checkpoint in ``checkpoint_dir``, if any, into the model, optimiser, scheduler, torch's
        generators and :attr:`state`; reconcile its epochs with this run's (:meth:`_extend_or_stop`)."""
        directory = self.checkpoint_dir
        assert directory is not None  # _prepare checked it
        loaded = load_checkpoint(directory)
        if loaded is None:
            return
        tensors, saved_dict = loaded
        saved = TrainState.from_dict(saved_dict)
        self._state().check_resumes(saved, directory)
        # label shards: re-sharded for this run's ranks (or gathered for one process)
        tensors = run.strategy.load_shards(directory, tensors, saved.label_shards, self.model, run.optimizer)
        try:
            self.model.load_state_dict(tensors["model"])
        except RuntimeError as exc:
            raise ConfigurationError(
                f"cannot resume from {directory}: its weights do not fit this model ({exc})"
            ) from None
        run.optimizer.load_state_dict(tensors["optimizer"])
        run.scheduler.load_state_dict(tensors["scheduler"])
        restore_rng(tensors, run.device)
        saved.best_weights = tensors.get("best_model")
        self.state = saved
        self._extend_or_stop(saved)

    def _extend_or_stop(self, st: TrainState) -> None:
        """Reconcile a loaded checkpoint state with this run's ``epochs`` (see :meth:`fit`)."""
        epochs, done = self.params.epochs, st.epoch
        if st.finished and done < epochs:
            if st.stopped_early:
                if self._strategy().is_main:
                    warnings.warn(
                        f"resume: the run in {self.checkpoint_dir} stopped early at epoch {done} (patience: no "
                        f"gain since its best epoch {st.best_epoch}); it is not trained on to epochs={epochs}. "
                        "Start a fresh run (resume=False) to train longer.",
                        stacklevel=5,
                    )
            else:  # it finished because epochs was reached: the larger epochs train on
                st.finished = False
        elif done + (st.step_in_epoch > 0) > epochs and self._strategy().is_main:  # a part-done epoch counts
            warnings.warn(
                f"resume: the checkpoint in {self.checkpoint_dir} has trained {done} epoch(s)"
                f"{' and part of the next' if st.step_in_epoch else ''}, more than epochs={epochs}; "
                "nothing is trained, the model is the checkpoint's",
                stacklevel=5,
            )

    def _epoch(self, run: _Run) -> None:
        """One epoch: train, evaluate (early stopping), then checkpoint, log and say the epoch's line."""
        p, state = self.params, self._state()
        record = self._train_epoch(run)
        if run.X_val is not None:
            self._evaluate(run, record)
        state.end_epoch(record, p.epochs)
        if self.checkpoint_dir is not None and run.strategy.writes_checkpoints:
            self._checkpoint(run)
        if self.log_path and run.strategy.is_main:
            self._write_log(self.log_path)
        if self.on_epoch_end is not None:
            self.on_epoch_end(self, dict(record))
        if run.talk:  # stdout carries only the caller's tables
            has_val = run.X_val is not None
            best = has_val and state.best_epoch == state.epoch
            line = epoch_line(record, p.epochs, p.val_metric if has_val else None, best=best)
            tqdm.write(line, file=sys.stderr)

    def _train_epoch(self, run: _Run) -> dict[str, Any]:
        """The remaining steps of the current epoch; return its record (loss, lr, time, throughput).

        Epoch ``e`` visits the rows in :func:`epoch_order` ``(seed, e)``, in global batches of ``batch_size``;
        the strategy says which rows of a batch this rank computes and with which loss weight.
        """
        p, state, strategy = self.params, self._state(), run.strategy
        n_rows, epoch, first_step = run.X.shape[0], state.epoch, state.step_in_epoch
        order = epoch_order(p.seed, epoch, n_rows)
        started = time.perf_counter()
        bar = self._progress_bar(run, n_rows, first_step)
        for step in range(first_step, run.steps_per_epoch):
            rows = order[step * p.batch_size : (step + 1) * p.batch_size]
            mine, weight = strategy.batch_rows(rows)
            with strategy.randomness(p.seed, state.global_step, run.device):
                loss = self._step(run.X[mine], run.Y[mine], run.optimizer, run.scheduler, run.device, weight, mine)
            batch_loss = strategy.batch_loss(loss, run.device)  # the same on every rank
            if not math.isfinite(batch_loss):  # so every rank stops here together
                bar.close()
                self._loss_module = None
                raise self._non_finite(batch_loss, epoch, step, run.steps_per_epoch, run.X, run.optimizer)
            state.loss_sum += batch_loss
            state.step_in_epoch = step + 1
            state.global_step += 1
            bar.update(len(rows))
            bar.set_postfix(loss=f"{state.loss_sum / (step + 1):.4f}", refresh=False)
            if self.checkpoint_every and state.global_step % self.checkpoint_every == 0 and strategy.writes_checkpoints:
                self._checkpoint(run)
        bar.close()
        seconds = time.perf_counter() - started
        return {
            "epoch": epoch + 1,
            "train_loss": state.loss_sum / run.steps_per_epoch,
            "lr": run.optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "examples_per_second": (n_rows - min(first_step * p.batch_size, n_rows)) / max(seconds, 1e-9),
        }

    def _progress_bar(self, run: _Run, n_rows: int, first_step: int) -> tqdm:
        """The epoch's progress bar (disabled unless :attr:`_Run.show_bar`), started at ``first_step``."""
        p = self.params
        return tqdm(
            total=n_rows,
            unit="ex",
            desc=f"epoch {self._state().epoch + 1}/{p.epochs}",
            disable=not run.show_bar,
            file=sys.stderr,
            initial=min(first_step * p.batch_size, n_rows),
            leave=True,
            dynamic_ncols=True,
        )

    def _evaluate(self, run: _Run, record: dict[str, Any]) -> None:
        """Score the validation data into ``record`` (``val_<metric>``) and apply early stopping: keep the
        weights when ``val_metric`` improves, else count a bad epoch and stop after ``patience`` of them."""
        assert run.X_val is not None and run.Y_val is not None
        p, state = self.params, self._state()
        val = self._validate(run.X_val, run.Y_val, run.val_k, run.val_needs_sets)
        record.update({f"val_{k}": v for k, v in val.items()})
        if state.observe(val[p.val_metric], run.higher_is_better, p.patience):
            self._keep_best()

    def _keep_best(self) -> None:
        """Keep a CPU copy of the current weights as the best so far (restored by :meth:`_finish`)."""
        self._state().best_weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _finish(self, run: _Run) -> None:
        """End the run: drop the wrapped module, summarise, restore the best weights and tune the head."""
        p, state = self.params, self._state()
        self._loss_module = None  # drop DDP (and its gradient hooks on the parameters) once training is over
        self.best_epoch = state.best_epoch
        self.stopped_early = state.stopped_early
        self.fit_summary = fit_summary(
            self.history, self.best_epoch, p.epochs, p.patience, p.val_metric, stopped_early=self.stopped_early
        )
        if run.talk:
            tqdm.write(self.fit_summary["message"], file=sys.stderr)
        if run.X_val is not None:
            if state.best_weights is not None:
                self.model.load_state_dict(state.best_weights)
            self.tuned = self.model.tune(run.X_val, run.Y_val, p.tune_metric, batch_size=p.eval_batch_size)
        self.model.eval()

    @staticmethod
    def _non_finite(
        loss: float, epoch: int, step: int, steps_per_epoch: int, X: sp.csr_matrix, optimizer: torch.optim.Optimizer
    ) -> NonFiniteLossError:
        largest = float(np.abs(X.data).max()) if X.nnz else 0.0
        scale = (
            f"X's largest absolute feature value is {largest:.3g}: scale or normalise the features (divide "
            "each column by its largest value, or L2-normalise the rows), or"
            if largest > _LARGE_FEATURE
            else "check X for extreme feature values, or"
        )
        return NonFiniteLossError(
            f"the training loss is {loss} at epoch {epoch + 1}, step {step + 1} of {steps_per_epoch}; training "
            f"stopped there. {scale} try a lower lr (now {optimizer.param_groups[0]['lr']:.3g}) or gradient "
            "clipping (grad_clip)",
            epoch + 1,
            step + 1,
            loss,
        )

    # -- the pieces the steps use ------------------------------------------------------------------------------
    def _step(
        self,
        X_rows: sp.csr_matrix,
        Y_rows: sp.csr_matrix,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        weight: float = 1.0,
        rows: np.ndarray | None = None,
    ) -> float:
        """One optimiser step on this rank's rows (``rows``: their positions in the training matrix); return its
        weighted loss (the strategy combines the ranks': :meth:`Strategy.batch_loss`)."""
        model, strategy = self.model, self._strategy()
        assert self._loss_module is not None  # set by fit for the duration of training
        features = FeatureBatch.from_csr(X_rows, device, rows)
        labels = LabelBatch.from_csr(Y_rows, device)
        optimizer.zero_grad(set_to_none=True)
        loss = self._loss_module(features, labels, weight)
        loss.backward()
        strategy.reduce_gradients(model)  # what the wrapped module (DDP) did not combine
        norm = strategy.clip_gradients(model, self.params.grad_clip)  # the norm before clipping
        self.last_grad_norm = float(norm)
        optimizer.step()
        scheduler.step()
        return float(loss.detach())

    def _validate(self, X_val: sp.csr_matrix, Y_val: sp.csr_matrix, val_k: int, needs_sets: bool) -> dict[str, Any]:
        """``sparsexc.metrics.evaluate`` of the model on the validation data (the strategy gathers the rows)."""
        ks = sorted({1, 3, 5, val_k})
        bs, strategy = self.params.eval_batch_size, self._strategy()
        topk = strategy.predict_topk(self.model, X_val, max(ks), bs)
        sets = strategy.predict_sets(self.model, X_val, bs) if needs_sets else None
        return evaluate(Y_val, topk, ks=ks, label_sets=sets)

    def _checkpoint(self, run: _Run) -> None:
        """Write the checkpoint: the state (:meth:`TrainState.to_dict`) and the tensors (weights, optimiser,
        scheduler, random generators, best weights); label-sharded tensors go to one file per rank."""
        directory, state = self.checkpoint_dir, self._state()
        assert directory is not None
        tensors: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            **rng_tensors(run.device),
        }
        if state.best_weights is not None:
            tensors["best_model"] = state.best_weights
        # a collective when the labels are sharded: each rank's shard in its own file, never gathered
        tensors, index = run.strategy.save_shards(directory, tensors, self.model, run.optimizer, state.global_step)
        if index is not None:
            state.label_shards = index
        if run.strategy.is_main:
            save_checkpoint(directory, tensors, state.to_dict())
            run.strategy.prune_shards(directory, index)

    def _write_log(self, path: str) -> None:
        # the whole log is rewritten atomically from the history, so a resumed run never duplicates lines
        text = "".join(json.dumps(record, sort_keys=False) + "\n" for record in self.history)
        atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))

    def _state(self) -> TrainState:
        assert self.state is not None, "the Trainer has no state before fit"
        return self.state

    def _strategy(self) -> Strategy:
        assert self.strategy is not None, "the Trainer has no strategy before fit"
        return self.strategy


@dataclass
class _Run:
    """What one :meth:`Trainer.fit` call works on, built once by :meth:`Trainer._prepare`."""

    X: sp.csr_matrix
    Y: sp.csr_matrix
    X_val: sp.csr_matrix | None
    Y_val: sp.csr_matrix | None
    strategy: Strategy
    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int
    val_k: int  # the k of val_metric, and whether it needs predicted label sets
    val_needs_sets: bool
    higher_is_better: bool
    talk: bool  # progress lines on stderr (rank 0 with params.progress)
    show_bar: bool  # a progress bar during each epoch (and stderr shows redraws as one line)
