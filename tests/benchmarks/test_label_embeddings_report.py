"""benchmarks/label_embeddings.py: the metrics it reports (against scikit-learn) and the claim bookkeeping."""

from __future__ import annotations

import contextlib
import types

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score, label_ranking_average_precision_score


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("label_embeddings")


def test_map_and_lrap_agree_with_scikit_learn(bench):
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 9)) < 0.3).astype(np.float32)
    Y[np.arange(60), rng.integers(0, 9, 60)] = 1
    S = rng.random((60, 9)).astype(np.float32)
    out = bench.ranking_metrics(sp.csr_matrix(Y), S, np.ones(9))
    assert out["MAP"] == pytest.approx(np.mean([average_precision_score(Y[:, j], S[:, j]) for j in range(9)]))
    assert out["LRAP"] == pytest.approx(label_ranking_average_precision_score(Y, S))
    assert set(bench.COLUMNS) <= set(out)


def _run(head, maps, seconds, encoder="linear"):
    curve = [{"epoch": i + 1, "train_seconds": s, "MAP": m} for i, (m, s) in enumerate(zip(maps, seconds))]
    final = {"MAP": maps[-1], "LRAP": 0.5, "P@1": 0.6}
    return {"dataset": "toy", "encoder": encoder, "head": head, "curve": curve, "final": final}


def test_comparisons_and_verdict_follow_the_numbers(bench):
    runs = [_run("sigmoid", [0.1, 0.3, 0.4], [1, 2, 3]), _run("emb-64", [0.41, 0.42, 0.44], [2, 4, 6]),
            _run("emb-128", [0.2, 0.3, 0.41], [0.5, 1.0, 1.5]), {"dataset": "toy", "encoder": "mlp", "head": "sigmoid",
                                                                  "skipped": "too big"}]  # fmt: skip
    comps = {c["head"]: c for c in bench.comparisons(runs)}
    assert comps["emb-64"]["MAP_ratio"] == pytest.approx(1.1)
    # target = 0.9 * 0.4 = 0.36: emb-64 reaches it at epoch 1 (2 s), sigmoid at epoch 3 (3 s), emb-128 at epoch 3
    assert (comps["emb-64"]["epochs_to_target"], comps["emb-64"]["seconds_to_target"]) == (1, 2)
    assert (comps["emb-64"]["epochs_to_target_sigmoid"], comps["emb-64"]["seconds_to_target_sigmoid"]) == (3, 3)
    assert comps["emb-128"]["epochs_to_target"] == 3 and comps["emb-128"]["seconds_to_target"] == 1.5
    lines = bench.verdict(list(comps.values()), ["toy"])
    # sigmoid went 0.3 -> 0.4 in its last epoch: a gain over an unconverged baseline decides nothing
    assert "+10.0%" in lines[0] and "claim is undecided" in lines[0] and "emb-64, emb-128" in lines[0]
    assert "still rising" in lines[0] and "holds" not in lines[0]
    assert "sigmoid's best MAP (0.4000): emb-64." in lines[0]  # 0.38 after epoch 1 is not above 0.4
    assert "no sigmoid reference" in lines[1]
    runs[1] = _run("emb-64", [0.3, 0.35, 0.42], [2, 4, 6])
    runs.pop(2)
    lines = bench.verdict(bench.comparisons(runs), ["toy"])
    assert "+5.0%" in lines[0] and "is undecided" in lines[0]
    runs[0] = _run("sigmoid", [0.1, 0.4, 0.4], [1, 2, 3])  # sigmoid flat at its last epoch: converged
    lines = bench.verdict(bench.comparisons(runs), ["toy"])
    assert "+5.0%" in lines[0] and "partly holds" in lines[0] and "flat or falling" in lines[0]
    runs[1] = _run("emb-64", [0.3, 0.35, 0.44], [2, 4, 6])
    lines = bench.verdict(bench.comparisons(runs), ["toy"])
    assert "+10.0%" in lines[0] and "claim holds" in lines[0]
    runs[1] = _run("emb-64", [0.3, 0.35, 0.38], [2, 4, 6])
    lines = bench.verdict(bench.comparisons(runs), ["toy"])
    assert "-5.0%" in lines[0] and "does not hold" in lines[0]


class _FakeClock:
    """A clock the test advances by hand, for the harness's Stopwatch and timed() (CPU time = wall time)."""

    def __init__(self):
        self.now = 0.0

    def Stopwatch(self):  # stands in for the class
        clock = self

        class Watch:
            def restart(self):
                self.start = clock.now

            wall = cpu = property(lambda self: clock.now - self.start)

        watch = Watch()
        watch.restart()
        return watch

    @contextlib.contextmanager
    def timed(self):
        start, block = self.now, types.SimpleNamespace()
        yield block
        block.wall = block.cpu = self.now - start


def test_epoch_curve_times_training_apart_from_the_evaluations(bench, monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(bench, "Stopwatch", clock.Stopwatch)
    monkeypatch.setattr(bench, "timed", clock.timed)
    Y_val = sp.csr_matrix(np.eye(3, dtype=np.float32))
    good, bad = np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32)[::-1].copy()

    class Model:
        scores = bad

        def predict_scores(self, X, batch_size):
            clock.now += 3.0  # evaluating takes time, which must not count as training
            return self.scores

    class Trainer:
        model = Model()

    def evaluate_model(model):
        clock.now += 10.0
        return {"MAP": 0.5}

    curve = bench.EpochCurve(evaluate_model, None, Y_val, np.ones(3))
    clock.now = 100.0
    curve.start()
    for epoch, (train_time, scores) in enumerate([(5.0, bad), (7.0, good), (1.0, good)], start=1):
        clock.now += train_time
        Trainer.model.scores = scores
        curve(Trainer(), {"epoch": epoch})
    assert [p["epoch"] for p in curve.points] == [1, 2, 3]
    assert [p["train_seconds"] for p in curve.points] == [5.0, 12.0, 13.0]
    assert [p["train_cpu_seconds"] for p in curve.points] == [5.0, 12.0, 13.0]
    assert curve.points[0]["val_MAP"] < curve.points[1]["val_MAP"] == curve.points[2]["val_MAP"] == 1.0
    assert curve.best_epoch == 2  # the first epoch of highest validation MAP
