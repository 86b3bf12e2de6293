"""Mini-batch training of an :class:`~sparsexc.models.XCModel` straight from CSR matrices."""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from sparsexc._params import TrainParams
from sparsexc._sparse import as_features, as_label_matrix
from sparsexc.distributed.context import all_reduce_sum, is_main, rank_device, world_size
from sparsexc.distributed.sharded import label_sharded
from sparsexc.errors import (
    ConfigurationError,
    NonFiniteLossError,  # re-exported: the old import path
)
from sparsexc.heads._metric_bridge import evaluate, parse_val_metric
from sparsexc.heads.labels import LabelBatch
from sparsexc.models.batch import FeatureBatch
from sparsexc.models.model import XCModel
from sparsexc.train.checkpoint import (
    atomic_write,
    has_label_shards,
    load_checkpoint,
    load_label_shards,
    prune_label_shards,
    save_checkpoint,
    save_label_shards,
)  # fmt: skip
from sparsexc.train.data_parallel import (
    average_sparse_gradients,
    clip_gradients,
    gathered_sets,
    gathered_topk,
    local_rows,
    rank_randomness,
    wrap_for_training,
)
from sparsexc.train.optim import build_optimizer, build_scheduler
from sparsexc.train.progress import epoch_line, fit_summary, interactive

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
    checkpoint_dir : str or None
        Folder for ``checkpoint.pt``/``checkpoint.json``, written atomically every ``checkpoint_every`` steps
        and at every epoch end. Needed for ``fit(resume=True)``.

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
    over the labels instead (:mod:`sparsexc.train.data_parallel`): every rank takes the whole global batch and
    the step equals the one-process step. Its checkpoints keep the sharded tensors (weights, best weights,
    optimiser state) in one file per rank with an index in the state (:func:`save_label_shards`), and
    resume re-shards them for the current number of ranks. ``params.precision="bfloat16"`` runs the forward
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
    """

    def __init__(
        self,
        model: XCModel,
        params: TrainParams | dict | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model = model
        self.params = params if isinstance(params, TrainParams) else TrainParams.from_dict(params)
        self.checkpoint_dir = os.fspath(checkpoint_dir) if checkpoint_dir is not None else None
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.fit_summary: dict[str, Any] = {}
        self.tuned: dict[str, Any] = {}
        self.last_grad_norm: float | None = None
        self._model_parallel = False

    # ------------------------------------------------------------------------------------------------------
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
        for the caller's output. The per-epoch JSON records go to :attr:`history` and ``params.log_path``.

        Raises
        ------
        NonFiniteLossError
            At the first step whose loss is NaN or infinite (with several ranks: the all-reduced loss, which every
            rank sees, so all stop at the same step). The message names the epoch and step and what to try; the
            checkpoint on disk, if any, is the last one written before that step.
        """
        p = self.params
        model = self.model
        X = as_features(X, name="X", n_features=model.n_features)
        Y = as_label_matrix(Y, n_labels=model.n_labels, name="Y")
        if X.shape[0] != Y.shape[0]:
            raise ConfigurationError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if X.shape[0] == 0:
            raise ConfigurationError("X has no rows to train on")
        has_val = X_val is not None or Y_val is not None
        if has_val:
            if X_val is None or Y_val is None:
                raise ConfigurationError("give both X_val and Y_val, or neither")
            X_val = as_features(X_val, name="X_val", n_features=model.n_features)
            Y_val = as_label_matrix(Y_val, n_labels=model.n_labels, name="Y_val")
            if X_val.shape[0] != Y_val.shape[0]:
                raise ConfigurationError(f"X_val has {X_val.shape[0]} rows but Y_val has {Y_val.shape[0]}")
        val_k, val_needs_sets, higher_is_better = parse_val_metric(p.val_metric)
        if val_k > model.n_labels:
            raise ConfigurationError(
                f"val_metric={p.val_metric!r} ranks the top {val_k} labels, but the model has only "
                f"n_labels={model.n_labels}; use k <= {model.n_labels}"
            )
        if p.patience is not None and not has_val:
            raise ConfigurationError("patience (early stopping) needs validation data: pass X_val and Y_val")
        if resume and self.checkpoint_dir is None:
            raise ConfigurationError("resume=True needs a checkpoint_dir")
        if p.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ConfigurationError("checkpoint_every needs a checkpoint_dir to write the checkpoints to")

        device = rank_device(resolve_device(p.device))
        model.to(device)
        self._model_parallel = label_sharded(model)  # every rank runs the whole batch on its label shard
        torch.manual_seed(p.seed)  # dropout and any other torch randomness during training
        model.head.prepare(X, Y)
        n_rows = X.shape[0]
        steps_per_epoch = math.ceil(n_rows / p.batch_size)
        optimizer = build_optimizer(model.parameters(), p)
        scheduler = build_scheduler(optimizer, p, steps_per_epoch)

        st = {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "loss_sum": 0.0,
            "history": [],
            "best_metric": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "finished": False,
            "stopped_early": False,
            "n_rows": n_rows,
            "batch_size": p.batch_size,
            "seed": p.seed,
        }
        best_state: dict[str, torch.Tensor] | None = None
        if resume:
            loaded = load_checkpoint(self.checkpoint_dir)
            if loaded is not None:
                tensors, saved = loaded
                for key in ("n_rows", "batch_size", "seed"):
                    if saved[key] != st[key]:
                        raise ConfigurationError(
                            f"cannot resume from {self.checkpoint_dir}: the checkpoint has {key}="
                            f"{saved[key]}, this run {st[key]}"
                        )
                st = saved
                if "label_shards" in saved:  # re-shard for this run's ranks (or gather for one process)
                    tensors = load_label_shards(self.checkpoint_dir, tensors, saved["label_shards"], model, optimizer)
                try:
                    model.load_state_dict(tensors["model"])
                except RuntimeError as exc:
                    raise ConfigurationError(
                        f"cannot resume from {self.checkpoint_dir}: its weights do not fit this model ({exc})"
                    ) from None
                optimizer.load_state_dict(tensors["optimizer"])
                scheduler.load_state_dict(tensors["scheduler"])
                torch.set_rng_state(tensors["torch_rng"])
                if device.type == "cuda" and "cuda_rng" in tensors:
                    torch.cuda.set_rng_state(tensors["cuda_rng"], device)
                best_state = tensors.get("best_model")
                self._extend_or_stop(st)
        self.history = st["history"]
        if p.log_path and is_main():
            self._write_log()

        self._loss_module = wrap_for_training(model, p.precision)  # after resuming: DDP broadcasts rank 0's weights
        world = world_size()
        talk = p.progress and is_main()  # one voice in a multi-process run
        # the bar only where redraws show as one line: a file or pipe would get every redraw
        show_bar = talk and p.progress_bar and interactive(sys.stderr)
        model.train()
        while not st["finished"] and st["epoch"] < p.epochs:
            epoch = st["epoch"]
            order = epoch_order(p.seed, epoch, n_rows)
            started = time.perf_counter()
            first_step = st["step_in_epoch"]
            bar = tqdm(
                total=n_rows,
                unit="ex",
                desc=f"epoch {epoch + 1}/{p.epochs}",
                disable=not show_bar,
                file=sys.stderr,
                initial=min(first_step * p.batch_size, n_rows),
                leave=True,
                dynamic_ncols=True,
            )
            for step in range(first_step, steps_per_epoch):
                rows = order[step * p.batch_size : (step + 1) * p.batch_size]
                mine, weight = local_rows(rows, replicated=self._model_parallel)
                # data parallel: each rank its own draws (negatives, dropout), a function of (seed, step, rank)
                with rank_randomness(p.seed, st["global_step"], device, replicated=self._model_parallel):
                    loss = self._step(X[mine], Y[mine], optimizer, scheduler, device, weight)
                batch_loss = all_reduce_sum(loss / world, device)  # sum_r (b_r / B) L_r: the same on every rank
                if not math.isfinite(batch_loss):  # so every rank stops here together
                    bar.close()
                    self._loss_module = None
                    raise self._non_finite(batch_loss, epoch, step, steps_per_epoch, X, optimizer)
                st["loss_sum"] += batch_loss
                st["step_in_epoch"] = step + 1
                st["global_step"] += 1
                bar.update(len(rows))
                bar.set_postfix(loss=f"{st['loss_sum'] / (step + 1):.4f}", refresh=False)
                if p.checkpoint_every and st["global_step"] % p.checkpoint_every == 0 and self._writes_checkpoints():
                    self._checkpoint(st, optimizer, scheduler, best_state, device)
            bar.close()
            seconds = time.perf_counter() - started
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": st["loss_sum"] / steps_per_epoch,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": seconds,
                "examples_per_second": (n_rows - min(first_step * p.batch_size, n_rows)) / max(seconds, 1e-9),
            }
            if has_val:
                val = self._validate(X_val, Y_val, val_k, val_needs_sets)
                record.update({f"val_{k}": v for k, v in val.items()})
                value = val[p.val_metric]
                improved = st["best_metric"] is None or (
                    value > st["best_metric"] if higher_is_better else value < st["best_metric"]
                )
                if improved:
                    st["best_metric"], st["best_epoch"], st["bad_epochs"] = value, epoch + 1, 0
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                else:
                    st["bad_epochs"] += 1
                    if p.patience is not None and st["bad_epochs"] >= p.patience:
                        st["finished"] = st["stopped_early"] = True
            st["history"].append(record)
            st["epoch"], st["step_in_epoch"], st["loss_sum"] = epoch + 1, 0, 0.0
            if st["epoch"] >= p.epochs:
                st["finished"] = True
            if self.checkpoint_dir is not None and self._writes_checkpoints():
                self._checkpoint(st, optimizer, scheduler, best_state, device)
            if p.log_path and is_main():
                self._write_log()
            if talk:  # stdout carries only the caller's tables
                line = epoch_line(
                    record, p.epochs, p.val_metric if has_val else None, best=has_val and st["best_epoch"] == epoch + 1
                )
                tqdm.write(line, file=sys.stderr)

        self._loss_module = None  # drop DDP (and its gradient hooks on the parameters) once training is over
        self.best_epoch = st["best_epoch"]
        self.stopped_early = st["stopped_early"]
        self.fit_summary = fit_summary(
            self.history, self.best_epoch, p.epochs, p.patience, p.val_metric, stopped_early=self.stopped_early
        )
        if talk:
            tqdm.write(self.fit_summary["message"], file=sys.stderr)
        if has_val:
            if best_state is not None:
                model.load_state_dict(best_state)
            self.tuned = model.tune(X_val, Y_val, p.tune_metric, batch_size=p.eval_batch_size)
        model.eval()
        return self.history

    def _extend_or_stop(self, st: dict[str, Any]) -> None:
        """Reconcile a loaded checkpoint state with this run's ``epochs`` (see :meth:`fit`)."""
        epochs, done = self.params.epochs, st["epoch"]
        if st["finished"] and done < epochs:
            if st["stopped_early"]:
                if is_main():
                    warnings.warn(
                        f"resume: the run in {self.checkpoint_dir} stopped early at epoch {done} (patience: no "
                        f"gain since its best epoch {st['best_epoch']}); it is not trained on to epochs={epochs}. "
                        "Start a fresh run (resume=False) to train longer.",
                        stacklevel=3,
                    )
            else:  # it finished because epochs was reached: the larger epochs train on
                st["finished"] = False
        elif done + (st["step_in_epoch"] > 0) > epochs:  # epochs begun, a part-done one included
            if is_main():
                warnings.warn(
                    f"resume: the checkpoint in {self.checkpoint_dir} has trained {done} epoch(s)"
                    f"{' and part of the next' if st['step_in_epoch'] else ''}, more than epochs={epochs}; "
                    "nothing is trained, the model is the checkpoint's",
                    stacklevel=3,
                )

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

    # ------------------------------------------------------------------------------------------------------
    def _step(
        self,
        X_rows: sp.csr_matrix,
        Y_rows: sp.csr_matrix,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        weight: float = 1.0,
    ) -> float:
        # returns this rank's weighted loss; with S ranks the global batch loss is the mean over ranks
        model = self.model
        features = FeatureBatch.from_csr(X_rows, device)
        labels = LabelBatch.from_csr(Y_rows, device)
        optimizer.zero_grad(set_to_none=True)
        loss = self._loss_module(features, labels, weight)
        loss.backward()
        average_sparse_gradients(model)  # DDP averages the dense gradients; the sparse ones are averaged here
        norm = clip_gradients(model, self.params.grad_clip)  # clips too; sparse gradients, label shards included
        self.last_grad_norm = float(norm)
        optimizer.step()
        scheduler.step()
        return float(loss.detach())

    def _validate(self, X_val: sp.csr_matrix, Y_val: sp.csr_matrix, val_k: int, needs_sets: bool) -> dict[str, Any]:
        ks = sorted({1, 3, 5, val_k})
        bs = self.params.eval_batch_size
        topk = gathered_topk(self.model, X_val, max(ks), bs)
        sets = gathered_sets(self.model, X_val, bs) if needs_sets else None
        return evaluate(Y_val, topk, ks=ks, label_sets=sets)

    def _writes_checkpoints(self) -> bool:
        # rank 0 writes; with a label-sharded model every rank writes its shard file too
        return is_main() or self._model_parallel

    def _checkpoint(
        self,
        st: dict[str, Any],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        best_state: dict | None,
        device: torch.device,
    ) -> None:
        tensors: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if device.type == "cuda":
            tensors["cuda_rng"] = torch.cuda.get_rng_state(device)
        if best_state is not None:
            tensors["best_model"] = best_state
        state = copy.deepcopy(st)
        if has_label_shards(self.model):  # each rank's shard in its own file, never gathered
            tensors, state["label_shards"] = save_label_shards(
                self.checkpoint_dir, tensors, self.model, optimizer, st["global_step"]
            )
        if is_main():
            save_checkpoint(self.checkpoint_dir, tensors, state)
            if "label_shards" in state:
                prune_label_shards(self.checkpoint_dir, state["label_shards"])

    def _write_log(self) -> None:
        # the whole log is rewritten atomically from the history, so a resumed run never duplicates lines
        text = "".join(json.dumps(record, sort_keys=False) + "\n" for record in self.history)
        atomic_write(self.params.log_path, lambda fh: fh.write(text.encode("utf-8")))
