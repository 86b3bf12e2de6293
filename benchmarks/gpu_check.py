"""GPU check (issue 9): every head's forward, backward, top-k and sets on CUDA in float32 and bfloat16,
a short XCClassifier fit per head and precision, and the sparsemax speed table on CUDA.

Ready to run on a machine with a CUDA GPU; nothing here has been measured on a GPU yet. On a machine
without CUDA it prints why and exits with status 2 without writing anything.

* heads: for every registered head, an XCModel (MLP encoder, 64 hidden units; and the linear model over
  the sparse features) on synthetic data (C = ``--labels``) on ``cuda``: loss forward+backward under
  ``sparsexc.train.autocast`` (float32 / bfloat16), then ``topk`` and ``predict_sets``;
  recorded: loss (finite?), its dtype, where the gradients live, milliseconds (CUDA-synchronised median),
  peak CUDA memory; errors are recorded per case, not raised;
* fit: ``XCClassifier(device="cuda", precision=...)``, 2 epochs, P@1 on the test rows;
* sparsemax: ``benchmarks/sparsemax_speed.py --device cuda`` (needs the ``entmax`` package), its table
  written to ``benchmarks/results/sparsemax_speed_cuda.{json,md}``;
* not run: a 2-rank NCCL run (DDP / label shards) needs 2 GPUs; this machine type has one. The gloo
  tests (tests/distributed) cover the collectives on CPU.

Usage::

    python benchmarks/gpu_check.py            # writes benchmarks/results/gpu_check.json
    python benchmarks/gpu_check.py --quick    # fewer labels, softmax + sampled heads, no sparsemax table
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys

import torch
from _harness import BENCHMARKS, RESULTS, environment, load_average, repeat, timed, utc_now, write_json

NO_CUDA_EXIT = 2


def _sync() -> None:
    torch.cuda.synchronize()


def _timed(fn, repeats: int) -> tuple[object, float]:
    """The last result of ``fn`` and its median wall milliseconds (CUDA synchronised around each call)."""
    out, watches = repeat(fn, repeats, sync=_sync)
    return out, 1e3 * statistics.median(w.wall for w in watches)


def _head_params(name: str, linear: bool) -> dict:
    if name in ("negative-sampling", "sampled-softmax"):
        return {"sampler": "tree" if linear else "frequency", "num_negatives": 10}
    if name == "label-embedding":
        return {"embedding_dim": 32}
    return {}


def check_heads(heads: list[str], n_labels: int, repeats: int) -> list[dict]:
    from sparsexc.datasets import synthetic
    from sparsexc.heads import get_head
    from sparsexc.models import FeatureBatch, LabelBatch, SparseEncoder, XCModel
    from sparsexc.train import autocast  # the training step's mixed precision: the heads run as in training

    device = torch.device("cuda")
    data = synthetic(2048, 5000, n_labels, labels_per_sample=3.0, nnz_per_sample=30, seed=0)
    X, Y = data.train.X, data.train.Y
    rows = []
    for name in heads:
        for linear in (False, True):
            for precision in ("float32", "bfloat16"):
                row = {"head": name, "model": "linear" if linear else "mlp-64", "precision": precision}
                try:
                    torch.manual_seed(0)
                    encoder = SparseEncoder(X.shape[1], {"hidden_sizes": () if linear else (64,)})
                    model = XCModel(encoder, get_head(name)(encoder.out_dim, n_labels, _head_params(name, linear)))
                    model.head.prepare(X, Y)
                    model.to(device).train()
                    features = FeatureBatch.from_csr(X[:256], device)
                    labels = LabelBatch.from_csr(Y[:256], device)
                    torch.cuda.reset_peak_memory_stats(device)

                    def step(model=model, features=features, labels=labels, precision=precision):
                        model.zero_grad(set_to_none=True)
                        with autocast(device, precision):
                            loss = model.head.loss(model.hidden(features), labels)
                        loss.backward()
                        return loss

                    loss, ms = _timed(step, repeats)
                    grads = {str(p.grad.device) for p in model.parameters() if p.grad is not None}
                    model.eval()
                    with torch.no_grad():
                        hidden = model.hidden(features)
                        (idx, _), topk_ms = _timed(functools.partial(model.head.topk, hidden, 5), repeats)
                        sets = model.head.predict_sets(hidden)
                    row.update(
                        loss=float(loss),
                        loss_finite=bool(torch.isfinite(loss)),
                        loss_dtype=str(loss.dtype),
                        grad_devices=sorted(grads),
                        topk_device=str(idx.device),
                        sets_device=str(sets.indices.device),
                        step_ms=ms,
                        topk_ms=topk_ms,
                        peak_cuda_mib=torch.cuda.max_memory_allocated(device) / 2**20,
                        ok=True,
                    )
                except Exception as exc:  # record and go on: the point is to see every head's state
                    row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def check_fit(heads: list[str], epochs: int) -> list[dict]:
    from sparsexc import XCClassifier
    from sparsexc.datasets import synthetic

    data = synthetic(4000, 2000, 200, labels_per_sample=2.0, nnz_per_sample=20, seed=1)
    rows = []
    for name in heads:
        for precision in ("float32", "bfloat16"):
            row = {"head": name, "precision": precision}
            try:
                clf = XCClassifier(
                    head=name,
                    head_params=_head_params(name, False),
                    hidden_sizes=(256,),
                    epochs=epochs,
                    device="cuda",
                    precision=precision,
                    random_state=0,
                )
                with timed() as fit_time:
                    clf.fit(data.train.X, data.train.Y)
                row.update(
                    seconds=fit_time.wall,
                    train_loss=[h["train_loss"] for h in clf.history_],
                    test_P1=clf.score(data.test.X, data.test.Y),
                    ok=True,
                )
            except Exception as exc:
                row.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def sparsemax_table() -> dict:
    script = BENCHMARKS / "sparsemax_speed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--device", "cuda", "--repeats", "5"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return {
        "returncode": done.returncode,
        "stdout_tail": done.stdout[-4000:],
        "stderr_tail": done.stderr[-2000:],
        "results": "benchmarks/results/sparsemax_speed_cuda.json" if done.returncode == 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="C=1000, softmax and the sampled heads, no sparsemax table"
    )
    parser.add_argument("--labels", type=int, default=None, help="C of the head checks (default 20000; quick 1000)")
    parser.add_argument("--out", default=str(RESULTS / "gpu_check.json"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            "gpu_check: CUDA is not available on this machine (torch.cuda.is_available() is False); nothing was "
            "run or written. Run it on a machine with an NVIDIA GPU and a CUDA build of torch.",
            file=sys.stderr,
        )
        return NO_CUDA_EXIT
    from sparsexc.heads import list_heads

    heads = ["softmax", "sampled-softmax", "negative-sampling"] if args.quick else list_heads()
    n_labels = args.labels or (1000 if args.quick else 20000)
    result = {
        "created": utc_now(),
        "environment": {
            **environment(),
            "gpu": torch.cuda.get_device_name(0),
            "cuda": torch.version.cuda,
            "load_average": load_average(),
        },
        "heads": check_heads(heads, n_labels, repeats=3 if args.quick else 10),
        "fit": check_fit(heads, epochs=1 if args.quick else 2),
        "sparsemax_speed": None if args.quick else sparsemax_table(),
        "not_run": {
            "nccl_two_ranks": "needs 2 GPUs (one per rank); the machine has one. tests/distributed covers "
            "DDP and label sharding with gloo on CPU."
        },
    }
    write_json(args.out, result)
    failed = [r for r in result["heads"] + result["fit"] if not r["ok"]]
    print(f"wrote {args.out}; {len(failed)} failing case(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
