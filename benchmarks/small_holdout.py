"""Candidates for the default model on small data sets, compared on repeated hold-outs of TRAINING rows (issue 20).

For every set and seed, ``--holdout`` of the set's training rows (seeded) are held out, each candidate is fitted on
the rest and ranks the held-out rows; the test splits are never read. Candidates are compared with the first one
(the library's default, ``XCClassifier()``) by paired differences over the seeds: per set the mean difference
and its standard error, and the mean over the sets. P@1 first; P@3, P@5 and PSP@5 (inverse propensities of the
fitting rows) beside; CPU s = ``time.process_time()`` of the fit (all threads of this process)::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/small_holdout.py --datasets flags,emotions --seeds 5 \
        --candidates default,no-holdout

prints the tables and writes ``--out/small_holdout.json``. The cross-validation variant of
``benchmarks/results/small_holdout.md`` (P@1 only, C_0 x 0.01..10) patched the tree's internals; it ran with this
script as of commit 5586c46 (``cv-p1-wide``) and is not kept. ``rbf``, ``rbf-only`` and ``pick-rbf`` try RBF kernel
features (scikit-learn's ``Nystroem``) before the tree on the dense real-valued sets (stop 51: not adopted;
``docs/getting-started.md``, "Also measured and not adopted")::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/small_holdout.py --datasets flags,emotions,birds,cal500,yeast,scene \
        --seeds 8 --candidates default,rbf,pick-rbf

``keep-norms``, ``keep-norms-logistic`` and ``pick-keep-norms`` keep each row's length, which the tree's per-row L2
normalisation throws away (stop 57: not adopted; ``benchmarks/results/small_holdout_s57_norms.md``)::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/small_holdout.py --datasets emotions,scene,birds,flags,yeast,cal500 \
        --seeds 8 --candidates default,keep-norms,keep-norms-logistic,pick-keep-norms

``ridge`` (one-vs-rest ridge regression, its penalty by closed-form leave-one-out) and ``ridge-C``/``ridge-C-x3``
(the tree with C from that penalty instead of its cross-validation) price a cheaper small-data path (stop 60:
not adopted yet, ``benchmarks/results/small_holdout_s60_ridge.md``)::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/small_holdout.py \
        --datasets flags,emotions,birds,cal500,yeast,scene,medical,enron --seeds 20 \
        --candidates default,ridge,ridge-C,ridge-C-x3

Since stop 61 ``default`` (``XCClassifier()``) fits the library's ridge family on at most 600 training rows (since
stop 62 also on dense features of at most 2,000, with its RBF kernel where it wins); ``tree`` is the label tree the
default was before. The rules' evidence (``benchmarks/results/small_holdout_s61_ridge.md``,
``benchmarks/results/small_holdout_s62_kernel.md``)::

    SPARSEXC_DATA=<shared>/datasets python benchmarks/small_holdout.py \
        --datasets flags,emotions,birds,cal500,yeast,scene,medical,enron --seeds 20 --candidates tree,default
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _harness import add_common_flags, dataset_list, load_average, use_shared_datasets, write_json

SETS = ("flags", "emotions", "birds", "cal500", "yeast", "scene", "medical", "enron", "rcv1-subset1", "bibtex")
METRICS = ("P@1", "P@3", "P@5", "PSP@5")
RIDGE_ALPHAS = np.logspace(-3, 3, 13)


def _estimator(**kw: Any) -> Callable[[Any, Any], Any]:
    def fit(X: Any, Y: Any) -> Any:
        from sparsexc import XCClassifier

        return XCClassifier(verbose=0, **kw).fit(X, Y)

    return fit


class _Mean:
    """The mean of several fitted models' scores over every label (their node probabilities: both in (0, 1])."""

    def __init__(self, models: list[Any]) -> None:
        self.models = models

    def predict_topk(self, X: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        n_labels = self.models[0].n_labels_
        total = np.zeros((X.shape[0], n_labels))
        for model in self.models:
            idx, scores = model.predict_topk(X, k=min(n_labels, 100))
            np.add.at(total, (np.arange(X.shape[0])[:, None], idx), scores)
        order = np.argsort(-total, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(total, order, axis=1)


def _both_losses(X: Any, Y: Any) -> Any:
    return _Mean([_estimator()(X, Y), _estimator(tree_params={"loss": "logistic"})(X, Y)])


def _dense(X: Any) -> np.ndarray:
    import scipy.sparse as sp

    return X.toarray() if sp.issparse(X) else np.asarray(X)


class _OnStandardised:
    """The tree (``preprocess="none"``, ``tree_params`` as given) on features mapped from the standardised rows
    (scikit-learn's ``StandardScaler``, fitted on the training rows); subclasses give the map."""

    tree_params: dict[str, Any] | None = None

    def _standard(self, X: Any) -> np.ndarray:
        """The rows standardised by the scaler fitted on the training rows."""
        return self.scaler.transform(_dense(X))

    @staticmethod
    def _scaled(Z: np.ndarray) -> np.ndarray:
        """Standardised rows ``Z`` divided by sqrt(d): a typical row has norm 1."""
        return Z / np.sqrt(Z.shape[1])

    def _fit_map(self, Z: np.ndarray) -> None:
        """Fit what the map needs from the standardised training rows ``Z`` (nothing by default)."""

    def _map(self, X: Any) -> Any:
        raise NotImplementedError

    def fit(self, X: Any, Y: Any) -> _OnStandardised:
        from sklearn.preprocessing import StandardScaler

        from sparsexc import XCClassifier

        rows = _dense(X)
        self.scaler = StandardScaler().fit(rows)
        self._fit_map(self._standard(rows))
        params = {"tree_params": self.tree_params} if self.tree_params else {}
        self.model = XCClassifier(verbose=0, preprocess="none", **params).fit(self._map(X), Y)
        return self

    def predict_topk(self, X: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.model.predict_topk(self._map(X), k=k)


class _KernelFeatures(_OnStandardised):
    """The tree on RBF kernel features: the rows standardised, mapped by scikit-learn's ``Nystroem`` (gamma = g / d,
    at most 1,000 landmarks: on these sets every training row, i.e. the exact kernel's feature map), optionally
    beside the standardised features themselves (scaled by 1/sqrt(d))."""

    def __init__(self, g: float = 1.0, concat: bool = True) -> None:
        self.g, self.concat = g, concat

    def _fit_map(self, Z: np.ndarray) -> None:
        from sklearn.kernel_approximation import Nystroem

        self.kernel = Nystroem(gamma=self.g / Z.shape[1], n_components=min(1000, Z.shape[0]), random_state=0).fit(Z)

    def _map(self, X: Any) -> Any:
        import scipy.sparse as sp

        Z = self._standard(X)  # once, for the kernel map and the features beside it
        F = self.kernel.transform(Z)
        if self.concat:
            F = np.hstack([self._scaled(Z), F])
        return sp.csr_matrix(F.astype(np.float32))


class _KeepNorms(_OnStandardised):
    """The tree on the standardised rows scaled by one factor, 1/sqrt(d), without the tree's per-row L2
    normalisation (``normalize_rows=False``): a row's length stays information."""

    def __init__(self, **tree: Any) -> None:
        self.tree_params = {"normalize_rows": False, **tree}

    def _map(self, X: Any) -> Any:
        import scipy.sparse as sp

        return sp.csr_matrix(self._scaled(self._standard(X)).astype(np.float32))


def _ridge_features(scaler: Any, X: Any) -> Any:
    """The rows as the tree sees them: transformed by ``scaler`` (:func:`_scaler`'s; None: as given), then scaled to
    unit L2 norm (the tree's ``normalize_rows``)."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    if scaler is not None:
        X = scaler.transform(X if sp.issparse(X) and not scaler.with_mean else _dense(X))
    return normalize(X)


def _loo_alpha(Z: Any, Y: Any) -> float:
    """Ridge's penalty alpha of least leave-one-out squared error over the labels' 0/1 columns, chosen by
    scikit-learn's ``RidgeCV`` (closed form from one SVD or eigendecomposition, no refits) on alpha in 10^-3..10^3."""
    from sklearn.linear_model import RidgeCV

    return float(RidgeCV(alphas=RIDGE_ALPHAS).fit(Z, Y.toarray()).alpha_)


def _scaler(X: Any) -> Any:
    """What the default's preprocessing chose on the small sets (``defaults.md``, its last column), fitted on ``X``:
    dense rows (at least half the entries non-zero) or any negative value: a ``StandardScaler``; sparse
    non-negative integer codes (flags): scaled only (``with_mean=False``); sparse binary rows (medical, enron):
    None, as given. A stand-in written for stop 60, before the library had a ridge model: flags' scaling is not the
    library's own (``sparsexc._preprocess``), so the library's ridge family (``default`` since stop 61) differs from
    this candidate on flags by about 3 top-ranked hold-out rows in 20 x 26 (``small_holdout_s61_ridge.md``)."""
    import scipy.sparse as sp
    from sklearn.preprocessing import StandardScaler

    if not sp.issparse(X) or X.nnz >= 0.5 * X.shape[0] * X.shape[1] or X.data.min() < 0:
        return StandardScaler().fit(_dense(X))
    return None if np.all(X.data == 1) else StandardScaler(with_mean=False).fit(X)


class _RidgeLOO:
    """One-vs-rest ridge regression on the 0/1 label columns (another model family than the default's tree),
    ``alpha`` by leave-one-out (:func:`_loo_alpha`): scores ``w_l . z + b_l``, ranked."""

    def fit(self, X: Any, Y: Any) -> _RidgeLOO:
        from sklearn.linear_model import Ridge

        self.scaler = _scaler(X)
        Z = _ridge_features(self.scaler, X)
        self.model = Ridge(alpha=_loo_alpha(Z, Y)).fit(Z, Y.toarray())
        return self

    def predict_topk(self, X: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.model.predict(_ridge_features(self.scaler, X))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(scores, order, axis=1)


def _tree_C_from_ridge(scale: float) -> Callable[[Any, Any], Any]:
    """The default tree without its cross-validation of C: C = scale / (2 alpha), alpha :func:`_loo_alpha`'s (the
    squared hinge's 1/2 |w|^2 + C sum xi^2 against ridge's alpha |w|^2 + sum r^2), snapped to the nearest (in log)
    of the Cs the cross-validation tries, trained once on all the rows it is given (``validation_fraction=0``:
    P@k does not read the set threshold)."""

    def fit(X: Any, Y: Any) -> Any:
        from sparsexc.tree import C_FACTORS, DEFAULT_C

        grid = np.array([DEFAULT_C["squared_hinge"] * f for f in C_FACTORS])
        C = scale / (2 * _loo_alpha(_ridge_features(_scaler(X), X), Y))
        C = float(grid[np.argmin(np.abs(np.log(grid) - np.log(C)))])
        return _estimator(tree_params={"C": C}, validation_fraction=0.0)(X, Y)

    return fit


def _p1(model: Any, X: Any, Y: Any) -> float:
    from sparsexc.metrics import evaluate

    return float(evaluate(Y, model.predict_topk(X, k=1), ks=(1,))["P@1"])


def _pick(other: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The default or ``other``, whichever has the higher P@1 on a 3-fold cross-validation of the rows it is
    given (ties: the default), refitted on all of them."""

    def fit(X: Any, Y: Any) -> Any:
        fits = {"default": _estimator(), "other": other}
        folds = np.random.default_rng(7).permutation(X.shape[0]) % 3
        score = {
            name: sum(_p1(f(X[folds != i], Y[folds != i]), X[folds == i], Y[folds == i]) for i in range(3))
            for name, f in fits.items()
        }
        return fits["other" if score["other"] > score["default"] else "default"](X, Y)

    return fit


# name -> fit(X, Y) returning an object with predict_topk(X, k)
CANDIDATES: dict[str, Callable[[Any, Any], Any]] = {
    "default": _estimator(),
    "tree": _estimator(model="tree"),  # the label tree, the default before stop 61's ridge-small rule
    "no-holdout": _estimator(validation_fraction=0.0),
    "logistic": _estimator(tree_params={"loss": "logistic"}),
    "logistic-no-holdout": _estimator(tree_params={"loss": "logistic"}, validation_fraction=0.0),
    "C=1": _estimator(tree_params={"C": 1.0}),  # the squared hinge's C_0, as PECOS's default
    # C_0 x 0.25 .. 4 without cross-validation: the C of the sets above cv_max_rows (tmc2007-500)
    **{f"C={c:g}": _estimator(tree_params={"C": c}) for c in (0.25, 0.5, 2.0, 4.0)},
    "logistic-C=10": _estimator(tree_params={"loss": "logistic", "C": 10.0}),  # napkinXC's PLT default
    "both-losses": _both_losses,
    "newton": _estimator(tree_params={"solver": "newton"}),  # the squared hinge by Newton whatever the data size
    "dcd": _estimator(tree_params={"solver": "dcd"}),  # ... by dual coordinate descent
    "rbf": lambda X, Y: _KernelFeatures().fit(X, Y),  # RBF kernel features beside the standardised ones
    "rbf-only": lambda X, Y: _KernelFeatures(concat=False).fit(X, Y),
    "pick-rbf": _pick(lambda X, Y: _KernelFeatures().fit(X, Y)),  # the default or "rbf", per fit by 3-fold CV of P@1
    "keep-norms": lambda X, Y: _KeepNorms().fit(X, Y),  # standardised / sqrt(d), no per-row L2
    "keep-norms-logistic": lambda X, Y: _KeepNorms(loss="logistic").fit(X, Y),
    "pick-keep-norms": _pick(lambda X, Y: _KeepNorms().fit(X, Y)),  # the default or "keep-norms", likewise
    "ridge": lambda X, Y: _RidgeLOO().fit(X, Y),  # one-vs-rest ridge, alpha by leave-one-out
    "ridge-C": _tree_C_from_ridge(1.0),  # the tree with C from ridge's leave-one-out alpha, no cross-validation
    "ridge-C-x3": _tree_C_from_ridge(3.0),
}


def run_one(name: str, X: Any, Y: Any, train: np.ndarray, held: np.ndarray) -> dict[str, float]:
    from sparsexc.metrics import evaluate, inverse_propensity

    start = time.process_time()
    model = CANDIDATES[name](X[train], Y[train])
    cpu = time.process_time() - start
    k = min(5, Y.shape[1])
    found = evaluate(
        Y[held],
        model.predict_topk(X[held], k=k),
        ks=tuple(j for j in (1, 3, 5) if j <= k),
        inv_propensity=inverse_propensity(Y[train], n_labels=Y.shape[1]),
    )
    row = {m: 100 * float(found[m]) for m in METRICS if m in found}
    row["cpu"] = cpu
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=None, help=f"comma-separated (default: {','.join(SETS)})")
    parser.add_argument("--candidates", default="default,no-holdout", help=f"of {', '.join(CANDIDATES)}")
    parser.add_argument("--seeds", type=int, default=5, help="hold-outs per set (seeds 123, 124, ...)")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of the training rows held out")
    add_common_flags(parser, out=True)
    args = parser.parse_args()
    from sparsexc.datasets import load

    use_shared_datasets()
    names = args.candidates.split(",")
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    warm = load(dataset_list(args.datasets, SETS)[0]).train  # the first fit loads numba's kernels: not timed
    CANDIDATES["default"](warm.X[:60], warm.Y[:60])
    for dataset in dataset_list(args.datasets, SETS):
        train_split = load(dataset).train
        X, Y = train_split.X, train_split.Y
        results[dataset] = {n: [] for n in names}
        for seed in range(123, 123 + args.seeds):
            order = np.random.default_rng(seed).permutation(X.shape[0])
            n_held = round(args.holdout * len(order))
            held, train = np.sort(order[:n_held]), np.sort(order[n_held:])
            for name in names:
                results[dataset][name].append(run_one(name, X, Y, train, held))
        line = "  ".join(
            f"{n} {np.mean([r['P@1'] for r in results[dataset][n]]):.2f} ({np.mean([r['cpu'] for r in results[dataset][n]]):.2f} s)"
            for n in names
        )
        print(f"{dataset}: {line}", flush=True)
    print(report(results, names))
    write_json(
        args.out / "small_holdout.json",
        {"seeds": args.seeds, "holdout": args.holdout, "results": results, "load_average": load_average()},
        indent=1,
    )


def report(results: dict[str, dict[str, list[dict[str, float]]]], names: list[str]) -> str:
    """Markdown: per set the base's mean and each candidate's paired difference +- its standard error."""
    base = names[0]
    lines = []
    for metric in (*METRICS, "cpu"):
        lines += [f"\n{metric}: {base} mean, then each candidate - {base} (mean +- s.e. over the seeds)\n"]
        lines += ["| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        means: dict[str, list[float]] = {n: [] for n in names}
        for dataset, by_name in results.items():
            if metric not in by_name[base][0]:
                continue
            b = np.array([r[metric] for r in by_name[base]])
            cells = [f"{b.mean():.2f}"]
            means[base].append(float(b.mean()))
            for n in names[1:]:
                diff = np.array([r[metric] for r in by_name[n]]) - b
                se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
                cells.append(f"{diff.mean():+.2f} +- {se:.2f}")
                means[n].append(float(diff.mean()))
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
        lines.append("| mean | " + " | ".join(f"{np.mean(means[n]):+.2f}" for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
