"""CPU cost and optima of the label tree's node solvers (issue 19): many L2-regularised linear classifiers at once.

Each problem is one tree node: rows ``X`` (n x d, CSR float32, L2-normalised rows) and K target columns. Solvers,
side by side in one process, CPU seconds (``time.process_time``, all threads):

- ``newton``: :func:`sparsexc.tree.solver.fit_linear`, LIBLINEAR's primal Newton-CG vectorised over the K columns;
- ``dcd`` (squared hinge): ``fit_linear(..., solver="dcd")``, the tree's default node solver: LIBLINEAR's dual
  coordinate descent compiled by numba (:mod:`sparsexc.tree._dcd`), one column after the other, at ``--tol``
  (its kernels are compiled before the timing);
- ``liblinear``: scikit-learn's liblinear, one call per column, dual coordinate descent as the peers run it
  (``LinearSVC(loss="squared_hinge", dual=True)`` = LIBLINEAR ``-s 1``; ``LogisticRegression(solver="liblinear",
  dual=True)`` = ``-s 7``), with the same ``C``, ``tol`` and bias (``intercept_scaling``). Columns with one class
  (scikit-learn refuses them) are left out of its time and of the comparison.

Problems: ``root`` (50,000 x 40,000 synthetic, ~50 nnz per row, power-law feature frequencies, K = 16 children
= label groups), ``leaves`` (100 leaf clusters of 100 labels each, the rows having one of them, features
restricted to the used columns) and the same two shapes cut from ``debian-deps`` (root: all training rows,
K = 16 random label groups; leaves: 100 random clusters of 100 labels with 300-3,000 rows). Reported per problem
and loss: CPU s of each solver, the relative objective gap ``(f_newton - f_liblinear) / f_liblinear`` (mean,
max, min over the columns), how far each is above the optimum (``(f - f*) / f*``, ``f*`` from ``fit_linear``
with ``tol=1e-8``), and the worst ``||grad f|| / (tol' ||grad f(0)||)`` of each (<= 1: LIBLINEAR's
primal stopping rule is met). Writes ``benchmarks/results/tree_solver_speed.{json,md}`` (``--quick``: small
problems, nothing written).

    python benchmarks/tree_solver_speed.py
    python benchmarks/tree_solver_speed.py --quick
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from _harness import (
    add_common_flags,
    command_line,
    environment,
    page_header,
    use_shared_datasets,
    utc_now,
    write_results,
)

# the routine being measured is internal to the tree package (the model calls it)
from sparsexc.tree import drop_empty_columns, fit_linear, objective

LOSSES = ("squared_hinge", "logistic")


# -- problems -------------------------------------------------------------------------------------------------
def _root_problem(X: sp.csr_matrix, Y: sp.csr_matrix, K: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """All rows; child k is positive for a row with a label in random label group k."""
    group = np.random.default_rng(seed).integers(0, K, size=Y.shape[1])
    member = sp.csr_matrix((np.ones(Y.shape[1]), (np.arange(Y.shape[1]), group)), shape=(Y.shape[1], K))
    return X, np.asarray((Y @ member).todense()) > 0


def _leaf_problems(
    X: sp.csr_matrix, Y: sp.csr_matrix, count: int, size: int, rows: tuple[int, int], seed: int
) -> list[tuple[sp.csr_matrix, np.ndarray]]:
    """``count`` clusters of ``size`` random labels whose rows (those with one of them) number within ``rows``."""
    rng = np.random.default_rng(seed)
    Yc = Y.tocsc()
    frequency = np.diff(Yc.indptr)
    problems: list[tuple[sp.csr_matrix, np.ndarray]] = []
    for _ in range(50 * count):
        if len(problems) == count:
            break
        # labels of similar frequency, so that a cluster lands in the wanted row range
        target = rng.uniform(*rows) / size
        candidates = np.flatnonzero((frequency >= 1) & (frequency <= 3 * target))
        if candidates.size < size:
            continue
        labels = np.sort(rng.choice(candidates, size=size, replace=False))
        Ysub = Yc[:, labels].tocsr()
        reached = np.flatnonzero(np.diff(Ysub.indptr) > 0)
        if not rows[0] <= reached.size <= rows[1]:
            continue
        X_used, _ = drop_empty_columns(X[reached])
        problems.append((X_used, Ysub[reached].toarray() > 0))
    return problems


def _synthetic(n: int, d: int, labels: int, nnz: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    from sparsexc.datasets import synthetic

    data = synthetic(n, d, labels, nnz_per_sample=nnz, prototype_size=40, labels_per_sample=2.0, seed=seed)
    return data.train.X, data.train.Y


# -- solvers --------------------------------------------------------------------------------------------------
def _liblinear(X: sp.csr_matrix, Y: np.ndarray, loss: str, C: float, tol: float, bias: float) -> np.ndarray:
    """scikit-learn's liblinear (dual CD), one column per call; NaN columns where it refuses (one class)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    # a full copy: scikit-learn sorts the indices in place, and a dtype-only copy would share them with X
    X64 = sp.csr_matrix(X, dtype=np.float64, copy=True)
    W = np.full((X.shape[1] + 1, Y.shape[1]), np.nan)
    for k in range(Y.shape[1]):
        y = np.where(Y[:, k], 1, -1)
        if y.min() == y.max():
            continue
        if loss == "squared_hinge":
            model: Any = LinearSVC(
                loss="squared_hinge", dual=True, C=C, tol=tol, intercept_scaling=bias, max_iter=1000, random_state=0
            )
        else:
            model = LogisticRegression(
                solver="liblinear", dual=True, C=C, tol=tol, intercept_scaling=bias, max_iter=1000, random_state=0
            )
        model.fit(X64, y)
        W[:-1, k] = model.coef_[0]
        W[-1, k] = model.intercept_[0] / bias  # scikit-learn reports intercept_scaling * w_bias
    return W


def _gradient_ratio(X: sp.csr_matrix, Y: np.ndarray, W: np.ndarray, loss: str, C: float, tol: float, bias: float):
    """Per column ``||grad f(w)|| / (tol * max(min(n+, n-), 1) / n * ||grad f(0)||)`` (<= 1: stopping rule met)."""
    n = X.shape[0]
    Xb = sp.hstack([X, np.full((n, 1), bias)], format="csr", dtype=np.float64)
    Ys = np.where(Y, 1.0, -1.0)

    def grad(Wk: np.ndarray) -> np.ndarray:
        M = Ys * (Xb @ Wk)
        d = -2.0 * np.maximum(0.0, 1.0 - M) if loss == "squared_hinge" else -1.0 / (1.0 + np.exp(M))
        return Wk + C * (Xb.T @ (Ys * d))

    positives = Y.sum(axis=0)
    scale = tol * np.maximum(np.minimum(positives, n - positives), 1) / n
    return np.linalg.norm(grad(W), axis=0) / (scale * np.linalg.norm(grad(np.zeros_like(W)), axis=0))


def _solvers(newton_tols: list[float], tol: float, loss: str) -> list[tuple[str, Any]]:
    """(name, solve(X, Y, loss, C, bias)) of every solver measured for ``loss``; liblinear last (the reference)."""
    out: list[tuple[str, Any]] = [
        (f"newton tol={t:g}", lambda X, Y, loss, C, bias, t=t: fit_linear(X, Y, loss=loss, C=C, tol=t, bias=bias))
        for t in newton_tols
    ]
    if loss == "squared_hinge":
        out.append(
            (
                f"dcd tol={tol:g}",
                lambda X, Y, loss, C, bias: fit_linear(X, Y, loss=loss, C=C, tol=tol, bias=bias, solver="dcd"),
            )
        )
    out.append((f"liblinear tol={tol:g}", lambda X, Y, loss, C, bias: _liblinear(X, Y, loss, C, tol, bias)))
    return out


def _compare(problems, loss: str, C: float, tol: float, bias: float, newton_tols: list[float]) -> dict[str, Any]:
    """Every solver on every problem of the list: CPU seconds, distance to the optimum, gaps between them."""
    solvers = _solvers(newton_tols, tol, loss)
    cpu = dict.fromkeys((name for name, _ in solvers), 0.0)
    values: dict[str, list[np.ndarray]] = {name: [] for name, _ in solvers}
    ratios: dict[str, list[np.ndarray]] = {name: [] for name, _ in solvers}
    optimum: list[np.ndarray] = []
    columns = skipped = 0
    for X, Y in problems:
        weights = {}
        for name, solve in solvers:
            start = time.process_time()
            weights[name] = np.asarray(solve(X, Y, loss, C, bias), dtype=np.float64)
            cpu[name] += time.process_time() - start
        both = ~np.isnan(weights[solvers[-1][0]]).any(axis=0)  # scikit-learn refuses one-class columns
        columns += Y.shape[1]
        skipped += int((~both).sum())
        Yb = Y[:, both]
        # the optimum itself: Newton run to a tight tolerance (not timed)
        W_star = fit_linear(X, Yb, loss=loss, C=C, tol=1e-8, max_iter=1000, bias=bias)
        f_star = objective(X, Yb, W_star, loss=loss, C=C, bias=bias)
        for name, W in weights.items():
            values[name].append(objective(X, Yb, W[:, both], loss=loss, C=C, bias=bias))
            ratios[name].append(_gradient_ratio(X, Yb, W[:, both], loss, C, tol, bias))
            f_star = np.minimum(f_star, values[name][-1])
        optimum.append(f_star)
    f_star = np.concatenate(optimum)
    reference = solvers[-1][0]
    per_solver = {}
    for name, _ in solvers:
        f = np.concatenate(values[name])
        excess = (f - f_star) / f_star
        gap = (f - np.concatenate(values[reference])) / np.concatenate(values[reference])
        per_solver[name] = {
            "cpu_s": round(cpu[name], 3),
            "excess_over_optimum": {"mean": float(excess.mean()), "max": float(excess.max())},
            "gap_to_liblinear": {"mean": float(gap.mean()), "max": float(gap.max()), "min": float(gap.min())},
            "worst_gradient_ratio_at_tol": float(np.concatenate(ratios[name]).max()),
        }
    return {"solvers": per_solver, "columns": columns, "one_class_columns_left_out": skipped}


def _compile_dcd() -> None:
    """numba's first call compiles (or loads) the kernels: not part of any problem's time."""
    X = sp.csr_matrix(np.eye(4, dtype=np.float32))
    fit_linear(X, np.eye(4, dtype=bool)[:, :2], solver="dcd")


# -- the run --------------------------------------------------------------------------------------------------
def _problems(quick: bool, datasets: list[str]) -> dict[str, list[tuple[sp.csr_matrix, np.ndarray]]]:
    out: dict[str, list[tuple[sp.csr_matrix, np.ndarray]]] = {}
    if quick:
        X, Y = _synthetic(3000, 4000, 400, 30, seed=0)
        out["synthetic root 2.4k x 4k, K=16"] = [_root_problem(X, Y, 16, seed=0)]
        out["synthetic leaves 5 x (100-600 rows, K=20)"] = _leaf_problems(X, Y, 5, 20, (100, 600), seed=0)
        return out
    X, Y = _synthetic(62_500, 40_000, 20_000, 60, seed=0)  # 50,000 training rows
    out["synthetic root 50k x 40k, K=16"] = [_root_problem(X, Y, 16, seed=0)]
    out["synthetic leaves 100 x (300-3000 rows, K=100)"] = _leaf_problems(X, Y, 100, 100, (300, 3000), seed=0)
    for name in datasets:
        from sparsexc.datasets import load

        data = load(name).train
        out[f"{name} root {data.X.shape[0]} x {data.X.shape[1]}, K=16"] = [_root_problem(data.X, data.Y, 16, 0)]
        out[f"{name} leaves 100 x (300-3000 rows, K=100)"] = _leaf_problems(data.X, data.Y, 100, 100, (300, 3000), 0)
    return out


def _describe(problems) -> dict[str, Any]:
    return {
        "problems": len(problems),
        "rows": [int(min(X.shape[0] for X, _ in problems)), int(max(X.shape[0] for X, _ in problems))],
        "features": [int(min(X.shape[1] for X, _ in problems)), int(max(X.shape[1] for X, _ in problems))],
        "nnz_per_row": round(sum(X.nnz for X, _ in problems) / sum(X.shape[0] for X, _ in problems), 1),
        "positives_per_column": round(
            float(np.mean(np.concatenate([Y.sum(axis=0) for _, Y in problems]))),
            1,
        ),
    }


def _markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        page_header(
            "Node solvers of the label tree: CPU seconds and optima", result["environment"], result["date"], command
        ),
        "",
        f"C = {result['C']}, bias = {result['bias']}; CPU seconds of one process, all threads. `newton`: "
        "`sparsexc.tree.solver.fit_linear` (primal Newton-CG over all K columns at once, LIBLINEAR's primal stopping "
        "rule at that tol). `liblinear`: scikit-learn's liblinear, dual coordinate descent (its own dual stopping "
        "rule), one call per column. `dcd`: `fit_linear(solver='dcd')`, the tree's node solver (the same dual "
        "coordinate descent and rule, compiled by numba, one column after the other). Excess: (f - f*) / f* per "
        "column, f* the optimum (fit_linear, tol = 1e-8). "
        "Gap: (f - f_liblinear) / f_liblinear per column. Gradient ratio: worst ||grad f|| over LIBLINEAR's primal "
        f"bound at tol = {result['tol']} (<= 1: met).",
        "",
        "| problem | loss | solver | CPU s | excess mean | excess max | gap to liblinear min / mean / max | grad ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        for name, r in row["solvers"].items():
            g = r["gap_to_liblinear"]
            lines.append(
                f"| {row['problem']} | {row['loss']} | {name} | {r['cpu_s']:.2f} | "
                f"{r['excess_over_optimum']['mean']:.1e} | {r['excess_over_optimum']['max']:.1e} | "
                f"{g['min']:.1e} / {g['mean']:.1e} / {g['max']:.1e} | {r['worst_gradient_ratio_at_tol']:.2f} |"
            )
    lines += ["", "Problems:", ""]
    for name, shape in result["problems"].items():
        lines.append(f"- {name}: {shape}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, out=True, quick="small problems, nothing written", datasets=["debian-deps"])
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--tol", type=float, default=0.1)
    parser.add_argument("--bias", type=float, default=1.0)
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument(
        "--newton-tols", default="0.1,0.01,0.001", help="tolerances of fit_linear's Newton to measure ('' for none)"
    )
    args = parser.parse_args(argv)
    use_shared_datasets()
    datasets = [] if args.quick else [s for s in (args.datasets or "debian-deps").split(",") if s]
    problems = _problems(args.quick, datasets)
    _compile_dcd()
    rows = []
    for name, batch in problems.items():
        for loss in args.losses.split(","):
            tols = [float(t) for t in args.newton_tols.split(",") if t]
            row = {"problem": name, "loss": loss, **_compare(batch, loss, args.C, args.tol, args.bias, tols)}
            for solver, r in row["solvers"].items():
                print(
                    f"{name:48s} {loss:14s} {solver:22s} {r['cpu_s']:8.2f} s  excess mean "
                    f"{r['excess_over_optimum']['mean']:.1e} max {r['excess_over_optimum']['max']:.1e}  "
                    f"grad ratio {r['worst_gradient_ratio_at_tol']:.2f}",
                    flush=True,
                )
            rows.append(row)
    result = {
        "date": utc_now(),
        "environment": environment(extra_packages=("scikit-learn",)),
        "C": args.C,
        "tol": args.tol,
        "bias": args.bias,
        "problems": {name: _describe(batch) for name, batch in problems.items()},
        "rows": rows,
    }
    if not args.quick:
        command = command_line(__file__, argv)
        write_results(args.out, "tree_solver_speed", result, _markdown(result, command))


if __name__ == "__main__":
    main()
