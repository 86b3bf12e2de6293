"""One system, one data set, one process: the worker half of ``benchmarks/peers.py``.

Run as ``PYTHON benchmarks/peers_worker.py SPEC.json``. The peer systems (napkinXC, omikuji, PECOS,
LibMultiLabel) run under the peers' virtual environment (numpy<2, scipy<1.14), the sparsexc heads under the
library's own; so this module imports only the standard library, numpy and scipy at the top, and each
system imports its package when it runs. It computes **no metric**: it writes the test set's top-k
predictions (and predicted label sets where the system has a set rule) to ``predictions.npz`` and its
timings, model size and memory to ``result.json``; the parent computes every metric with
``sparsexc.metrics``, one implementation for all systems.

Spec keys: ``system`` (a key of :data:`SYSTEMS` or ``sparsexc-<head>``), ``data_dir`` (from
``peers.export_dataset``: ``{train,test}_{X,Y}.npz`` as plain CSR arrays, and ``train.txt`` in XC format),
``out_dir``, ``k``, ``threads``, ``settings`` (the system's keyword settings).

Measured: training seconds (wall clock of the fit call, index building and file reading included, and
the CPU seconds of all the process's threads during it, less sensitive to a shared machine's load; the
system's package is imported before, timed apart as ``import_seconds``, since a one-off import is not training),
prediction milliseconds per 1,000 test rows (wall clock of the top-k call over the whole test set, and its CPU
milliseconds, all threads), the
model's size on disk (bytes of the folder the system saves to), and the peak RSS of this process
(its own high-water mark, see :func:`max_rss_mib`: loading + training + prediction) and its value before
training.
"""

from __future__ import annotations

import importlib
import json
import pickle
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from _harness import timed  # stdlib only: it runs in the peers' venv too

PREDICTIONS = "predictions.npz"
RESULT = "result.json"


def save_csr(path: Path, M: sp.csr_matrix) -> None:
    """``M`` as plain arrays (readable by any numpy/scipy pair, unlike version-tagged formats)."""
    M = sp.csr_matrix(M)
    np.savez(path, data=M.data, indices=M.indices, indptr=M.indptr, shape=np.asarray(M.shape, dtype=np.int64))


def load_csr(path: Path) -> sp.csr_matrix:
    """The CSR matrix :func:`save_csr` wrote, with sorted indices (napkinXC crashes on unsorted label ids)."""
    with np.load(path) as f:
        M = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(int(s) for s in f["shape"]))
    M.sort_indices()
    return M


def proc_status_mib(field: str, pid: int | str = "self") -> float | None:
    """A memory field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``) in MiB; None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def max_rss_mib() -> float:
    """This process's RSS high-water mark in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, because ``getrusage``'s ``ru_maxrss`` survives ``fork`` +
    ``exec`` and would report the (larger) parent's peak for a small worker. Elsewhere ``ru_maxrss`` (macOS
    reports bytes, the BSDs KiB).
    """
    hwm = proc_status_mib("VmHWM")
    if hwm is not None:
        return hwm
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def folder_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (or of the file ``path``)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def topk_from_pairs(rows: list[list[tuple[int, float]]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, scores)`` of shape (n, k) from per-row ``(label, score)`` lists; -1 pads short rows."""
    indices = np.full((len(rows), k), -1, dtype=np.int64)
    scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for i, row in enumerate(rows):
        row = sorted(row, key=lambda p: (-p[1], p[0]))[:k]  # best first, ties to the lower id
        for j, (label, score) in enumerate(row):
            indices[i, j], scores[i, j] = int(label), float(score)
    return indices, scores


def topk_from_dense(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row of a dense score matrix, best first (ties to the lower id)."""
    S = np.asarray(S)
    k = min(k, S.shape[1])
    # the k-th largest value per row; keep everything above it, then the lowest ids among the ties at it
    kth = -np.partition(-S, k - 1, axis=1)[:, k - 1 : k]
    above = kth < S
    ties = kth == S
    need = k - above.sum(axis=1, keepdims=True)
    keep = above | (ties & (np.cumsum(ties, axis=1) <= need))
    idx = np.nonzero(keep)[1].reshape(S.shape[0], k)  # row-major: k ids per row, ascending
    vals = np.take_along_axis(S, idx, axis=1)
    order = np.lexsort((idx, -vals), axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    return idx.astype(np.int64), np.take_along_axis(S, idx, axis=1).astype(np.float32)


def sets_from_lists(rows: list[list[int]], n_labels: int) -> sp.csr_matrix:
    """A 0/1 CSR indicator from per-row label-id lists."""
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    indices = np.fromiter((int(j) for r in rows for j in r), dtype=np.int64, count=int(indptr[-1]))
    M = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), n_labels))
    M.sum_duplicates()
    M.data[:] = 1.0  # a label listed twice is still one label
    return M


class System:
    """A system under test: ``fit``, ``predict_topk``, optional ``predict_sets``, ``save``."""

    predicts_sets = False
    # modules imported (and timed) before the timed fit: a package's one-off import cost is not training
    imports: tuple[str, ...] = ()

    def __init__(self, settings: dict[str, Any], threads: int, work: Path) -> None:
        self.settings = dict(settings)
        self.threads = threads
        self.work = work

    def prepare(self) -> None:
        """Import the system's package (the worker times this apart from training)."""
        for module in self.imports:
            importlib.import_module(module)

    def fit(self, X: sp.csr_matrix, Y: sp.csr_matrix, xc_train_file: Path) -> None:  # pragma: no cover
        raise NotImplementedError

    def predict_topk(self, X: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def predict_sets(self, X: sp.csr_matrix) -> sp.csr_matrix:  # pragma: no cover
        raise NotImplementedError

    def save(self, folder: Path) -> None:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the system chose from the data by itself (recorded in the row; empty when it chooses nothing)."""
        return {}


class NapkinPLT(System):
    """napkinXC probabilistic label tree; sets = labels with probability >= ``set_threshold``."""

    predicts_sets = True
    imports = ("napkinxc.models",)

    def fit(self, X, Y, xc_train_file):
        from napkinxc.models import PLT

        params = {k: v for k, v in self.settings.items() if k != "set_threshold"}
        self.model_dir = self.work / "napkinxc-model"  # napkinXC writes its model here while training
        self.model = PLT(str(self.model_dir), threads=self.threads, **params)
        self.n_labels = Y.shape[1]
        self.model.fit(X, Y)  # CSR label matrix with sorted indices (see load_csr)

    def predict_topk(self, X, k):
        return topk_from_pairs(self.model.predict_proba(X, top_k=k), k)

    def predict_sets(self, X):
        rows = self.model.predict(X, threshold=float(self.settings.get("set_threshold", 0.5)))
        return sets_from_lists(rows, self.n_labels)

    def save(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "source").write_text(str(self.model_dir))  # the model already lives in model_dir

    def model_folder(self) -> Path:
        return self.model_dir


class Omikuji(System):
    """omikuji (Parabel-like or Bonsai-like by its hyper-parameters); trains only from an XC file and
    predicts one row per call, which is what its Python API offers."""

    imports = ("omikuji",)

    def fit(self, X, Y, xc_train_file):
        import omikuji

        hp = omikuji.Model.default_hyper_param()
        for key, value in self.settings.items():
            if key in ("beam_size",):
                continue
            if not hasattr(hp, key):
                raise ValueError(f"omikuji has no hyper-parameter {key!r}")
            setattr(hp, key, value)
        self.model = omikuji.Model.train_on_data(str(xc_train_file), hp, n_threads=self.threads)

    def predict_topk(self, X, k):
        beam = int(self.settings.get("beam_size", 10))
        rows = []
        for i in range(X.shape[0]):
            lo, hi = X.indptr[i], X.indptr[i + 1]
            pairs = list(zip(X.indices[lo:hi].tolist(), X.data[lo:hi].tolist()))
            rows.append(self.model.predict(pairs, beam_size=beam, top_k=k))
        return topk_from_pairs(rows, k)

    def save(self, folder):
        self.model.save(str(folder))


class PecosXRLinear(System):
    """PECOS XR-Linear: PIFA label embeddings, hierarchical k-means label tree, linear rankers (indexing is
    part of the training time)."""

    imports = ("pecos.xmc", "pecos.xmc.xlinear.model")

    def fit(self, X, Y, xc_train_file):
        from pecos.xmc import Indexer, LabelEmbeddingFactory
        from pecos.xmc.xlinear.model import XLinearModel

        s = self.settings
        X = X.astype(np.float32)
        Y = Y.astype(np.float32)
        label_feat = LabelEmbeddingFactory.create(Y, X, method="pifa")
        chain = Indexer.gen(
            label_feat,
            indexer_type="hierarchicalkmeans",
            nr_splits=int(s.get("nr_splits", 16)),
            max_leaf_size=int(s.get("max_leaf_size", 100)),
            seed=0,
            threads=self.threads,
        )
        self.model = XLinearModel.train(X, Y.tocsc(), C=chain, threads=self.threads)
        self.beam = int(s.get("beam_size", 10))

    def predict_topk(self, X, k):
        P = self.model.predict(X.astype(np.float32), only_topk=k, beam_size=max(self.beam, k), threads=self.threads)
        P = sp.csr_matrix(P)
        rows = [list(zip(P.indices[P.indptr[i]:P.indptr[i + 1]].tolist(), P.data[P.indptr[i]:P.indptr[i + 1]].tolist()))
                for i in range(P.shape[0])]  # fmt: skip
        return topk_from_pairs(rows, k)

    def save(self, folder):
        self.model.save(str(folder))


class LibMultiLabelOVR(System):
    """LibMultiLabel one-vs-rest linear (liblinear options string; ``-B 1`` adds the bias, ``-m`` threads);
    sets = labels with a positive decision value, liblinear's own rule."""

    predicts_sets = True
    imports = ("libmultilabel.linear",)

    def fit(self, X, Y, xc_train_file):
        import libmultilabel.linear as linear

        self.linear = linear
        options = f"{self.settings.get('options', '-s 2 -B 1')} -m {self.threads}"
        self.model = linear.train_1vsrest(Y, X, options=options, verbose=False)  # liblinear order: y first

    def _values(self, X) -> np.ndarray:
        return np.asarray(self.linear.predict_values(self.model, X))

    def predict_topk(self, X, k):
        return topk_from_dense(self._values(X), k)

    def predict_sets(self, X):
        return sp.csr_matrix((self._values(X) > 0).astype(np.float32))

    def save(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "model.pickle", "wb") as handle:  # LibMultiLabel's own save_pipeline pickles too
            pickle.dump(self.model, handle, protocol=pickle.HIGHEST_PROTOCOL)


class SparsexcHead(System):
    """A sparsexc head through ``XCClassifier`` (settings = its constructor arguments, as a user types them)."""

    predicts_sets = True
    # torch.optim's first Optimizer imports torch._dynamo (about 2.5 s, once per process); the heads' modules are
    # imported by the first lookup of a head (prepare)
    imports = ("torch", "torch._dynamo", "sparsexc.estimator.classifier")

    def __init__(self, head: str | None, settings: dict[str, Any], threads: int, work: Path) -> None:
        super().__init__(settings, threads, work)
        self.head = head

    def fit(self, X, Y, xc_train_file):
        from sparsexc.estimator import XCClassifier

        self.set_threads()
        s = dict(self.settings)
        if "hidden_sizes" in s:
            s["hidden_sizes"] = tuple(s["hidden_sizes"])
        if self.head is not None:
            s.update(head=self.head, device="cpu")
        self.model = XCClassifier(**s).fit(X, Y)

    def prepare(self) -> None:
        super().prepare()
        if self.head is not None:  # a head asked for: its modules are imported by the first lookup of a head
            from sparsexc.heads import list_heads

            list_heads()

    def set_threads(self) -> None:
        """torch's intra-op threads: the worker's, where torch is imported (every head's ``imports``); else
        torch's own default, the process's cores, if a fit imports it."""
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(self.threads)

    def predict_topk(self, X, k):
        idx, scores = self.model.predict_topk(X, k=k)
        return np.asarray(idx, dtype=np.int64), np.asarray(scores, dtype=np.float32)

    def predict_sets(self, X):
        return sp.csr_matrix(self.model.predict(X))

    def save(self, folder):
        self.model.save(str(folder))


class SparsexcDefault(SparsexcHead):
    """``XCClassifier()`` with the library's defaults: no model setting at all (``verbose=0`` only, which does
    not change the model), on the features as loaded (its ``preprocess="auto"`` chooses the transform)."""

    # not torch: XCClassifier() imports it only for a model that needs it (a neural one; its import then counts
    # in training, as in a user's first fit), and the label tree or ridge model it chooses on every set measured
    # never does, so torch's memory is not in its peak RSS; the tree's threads are its n_jobs=-1 (the process's
    # cores); ridge's fit runs on one BLAS thread on its small data and imports neither the tree nor numba (since
    # stop 62); the tree's numba kernels load from numba's cache at their first call, inside the timed fit
    imports = ("sparsexc.estimator.classifier", "sparsexc.tree")

    def __init__(self, settings: dict[str, Any], threads: int, work: Path) -> None:
        super().__init__(None, {**settings, "verbose": 0}, threads, work)

    def describe(self) -> dict[str, Any]:
        """What the library chose from the data, for the row's JSON: the preprocessing, the model family fitted
        and why (``resolved_model()``, the public record of ``model="auto"``'s choice), how training ended."""
        m = self.model
        chosen = {
            "preprocess": m.preprocess_.describe(),
            "model": m.resolved_model().to_dict(),
            # where it trained: the fitted network's device (a tree model has none: the setting, "auto")
            "device": str(getattr(m.model_, "device", m.device)),
            "fit_summary": m.fit_summary_,
        }
        return json.loads(json.dumps(chosen, default=repr))  # JSON-safe whatever the attributes hold


class SparsexcTree(System):
    """sparsexc's label-tree linear model (``sparsexc.tree.LabelTreeModel``; settings = its ``LabelTreeParams``
    fields plus the prediction ``beam``), trained with ``n_jobs`` = the worker's threads."""

    imports = ("sparsexc.tree",)

    def fit(self, X, Y, xc_train_file):
        from sparsexc.tree import LabelTreeModel, LabelTreeParams

        params = {k: v for k, v in self.settings.items() if k != "beam"}
        self.model = LabelTreeModel(LabelTreeParams(n_jobs=self.threads, **params)).fit(X, Y)

    def predict_topk(self, X, k):
        return self.model.predict_topk(X, k, beam=int(self.settings.get("beam", 10)))

    def save(self, folder):
        self.model.save(folder)


SYSTEMS: dict[str, type[System]] = {
    "napkinxc-plt": NapkinPLT,
    "omikuji-parabel": Omikuji,
    "omikuji-bonsai": Omikuji,
    "pecos-xrlinear": PecosXRLinear,
    "libmultilabel-ovr": LibMultiLabelOVR,
}
SPARSEXC_PREFIX = "sparsexc-"
DEFAULT_SYSTEM = "sparsexc-default"  # XCClassifier() as shipped, on the features as loaded
# sparsexc systems that are not a head of XCClassifier: name -> (class, its settings)
SPARSEXC_MODELS: dict[str, tuple[type[System], dict[str, Any]]] = {
    "sparsexc-tree": (SparsexcTree, {"loss": "squared_hinge"}),
    "sparsexc-tree-logistic": (SparsexcTree, {"loss": "logistic"}),
    "sparsexc-tree-3trees": (SparsexcTree, {"loss": "squared_hinge", "n_trees": 3}),
    DEFAULT_SYSTEM: (SparsexcDefault, {}),
}


def make_system(name: str, settings: dict[str, Any], threads: int, work: Path) -> System:
    """The :class:`System` for ``name`` (a key of :data:`SYSTEMS` or ``sparsexc-<head>``)."""
    if name in SPARSEXC_MODELS:
        return SPARSEXC_MODELS[name][0](settings, threads, work)
    if name.startswith(SPARSEXC_PREFIX):
        return SparsexcHead(name[len(SPARSEXC_PREFIX) :], settings, threads, work)
    if name not in SYSTEMS:
        raise ValueError(f"system={name!r} is unknown; choose one of {', '.join(SYSTEMS)} or sparsexc-<head>")
    return SYSTEMS[name](settings, threads, work)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall-clock seconds and the CPU seconds of this process (all threads) it used."""
    with timed() as watch:
        out = fn()
    return out, watch.wall, watch.cpu


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Train, predict and save one system as ``spec`` says; write ``predictions.npz`` and ``result.json``."""
    data_dir, out_dir = Path(spec["data_dir"]), Path(spec["out_dir"])
    k, threads = int(spec["k"]), int(spec["threads"])
    out_dir.mkdir(parents=True, exist_ok=True)
    X_train, Y_train = load_csr(data_dir / "train_X.npz"), load_csr(data_dir / "train_Y.npz")
    X_test = load_csr(data_dir / "test_X.npz")
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        work = Path(tmp)
        system = make_system(spec["system"], spec.get("settings", {}), threads, work)
        _, import_seconds, _ = _timed(system.prepare)
        rss_before = max_rss_mib()
        _, train_seconds, train_cpu = _timed(lambda: system.fit(X_train, Y_train, data_dir / "train.txt"))
        (indices, scores), predict_seconds, predict_cpu = _timed(lambda: system.predict_topk(X_test, k))
        arrays = {"indices": indices, "scores": scores}
        if system.predicts_sets:
            sets = sp.csr_matrix(system.predict_sets(X_test))
            arrays.update(set_indptr=sets.indptr.astype(np.int64), set_indices=sets.indices.astype(np.int64))
        model_dir = work / "saved-model"
        system.save(model_dir)
        model_folder = system.model_folder() if hasattr(system, "model_folder") else model_dir
        model_bytes = folder_bytes(model_folder)
        chosen = system.describe()
    np.savez(out_dir / PREDICTIONS, **arrays)
    result = {
        "system": spec["system"],
        "train_seconds": round(train_seconds, 3),
        "train_cpu_seconds": round(train_cpu, 3),
        "import_seconds": round(import_seconds, 3),
        "predict_ms_per_1000": round(1000.0 * predict_seconds / max(1, X_test.shape[0]) * 1000.0, 3),
        # CPU of all threads: comparable between runs on a loaded machine, where the wall clock is not
        "predict_cpu_ms_per_1000": round(1000.0 * predict_cpu / max(1, X_test.shape[0]) * 1000.0, 3),
        "model_bytes": int(model_bytes),
        "peak_rss_mib": round(max_rss_mib(), 1),
        "rss_before_fit_mib": round(rss_before, 1),
        "python": sys.executable,
        "numpy": np.__version__,
        "chosen": chosen,
    }
    (out_dir / RESULT).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(f"usage: peers_worker.py SPEC.json\n\n{__doc__}")
        return 0
    if len(args) != 1:
        print("usage: peers_worker.py SPEC.json", file=sys.stderr)
        return 2
    run(json.loads(Path(args[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
