"""benchmarks/sdlgm.py: SDLGM against other models (issue 21): the comparison cells, the verdict rule, the rows."""

from __future__ import annotations

import numpy as np
import pytest

SIZES = {"mean": 2.0, "exact_size_rate": 0.5, "histogram": {"1": 1}}


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("sdlgm")


def _metrics(f1, p1):
    return {"example-F1": f1, "micro-F1": f1, "P@1": p1, "P@3": p1, "P@5": p1}


def _sdlgm(f1, p1, data="toy"):
    """The ablation's learned-level test rows, seeds 0..2 (spread ± 0.01 around the given means)."""
    return [
        {"phase": "test", "dataset": data, "level": "learned", "L0": 3, "L": None, "seed": s,
         "metrics": _metrics(f1 + 0.01 * (s - 1), p1 + 0.01 * (s - 1)), "pred_sizes": SIZES, "true_sizes": SIZES,
         "epochs_run": 5, "cpu_seconds": 1.0}
        for s in range(3)
    ]  # fmt: skip


def _other(model, f1, p1, data="toy", family="neural"):
    return [
        {"phase": "test", "dataset": data, "model": model, "family": family, "seed": s, "commit": "abc1234",
         "metrics": _metrics(f1 + 0.01 * (s - 1), p1 + 0.01 * (s - 1)), "pred_sizes": SIZES, "true_sizes": SIZES,
         "epochs_run": 5, "cpu_seconds": 1.0}
        for s in range(3)
    ]  # fmt: skip


def _sup(sdlgm, *others):
    return {"supervised": sdlgm, "versus": [r for o in others for r in o]}


def _verdict(bench, ablation):
    return bench.versus_verdict(bench.versus_cells(ablation))


def test_cells_orient_the_differences_and_keep_the_reference_out_of_the_comparisons(bench):
    ablation = _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.85), _other("default", 0.7, 0.9, family="tree"))
    f1, p1 = bench.versus_cells(ablation)
    assert f1["metric"] == "example-F1" and f1["primary"] and p1["metric"] == "P@1" and not p1["primary"]
    diff, se = f1["comparisons"]["sigmoid"]
    assert diff == pytest.approx(0.1) and se == pytest.approx(np.sqrt(2 * 0.0001 / 3))  # std 0.01 on both sides
    assert p1["comparisons"]["sigmoid"][0] == pytest.approx(-0.05)
    assert set(f1["comparisons"]) == {"sigmoid"} and f1["references"]["default"][0] == pytest.approx(-0.1)
    # unsupervised: a lower test MSE favours SDLGM
    uns = {
        "unsupervised": [{"data": "digits", "level": "learned", "seed": s, "test_mse": 0.04, "probe": 0.8} for s in range(2)],
        "versus_unsupervised": [{"data": "digits", "model": "PCA", "seed": s, "test_mse": 0.05 + 0.001 * s, "probe": 0.9} for s in range(2)],
    }  # fmt: skip
    mse, probe = bench.versus_cells(uns)
    assert mse["comparisons"]["PCA"][0] == pytest.approx(0.0105) and mse["primary"] and probe["primary"]
    assert probe["comparisons"]["PCA"][0] == pytest.approx(-0.1)


def test_each_verdict_is_reachable(bench):
    # example-F1 beats both by 0.1 (SE 0.008), P@1 equal: a primary cell won, none worse
    assert (
        _verdict(bench, _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8), _other("sparsemax", 0.5, 0.8)))
        == "reproduced"
    )
    # beats sigmoid, ties sparsemax on example-F1: some beaten, nothing worse
    assert (
        _verdict(bench, _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8), _other("sparsemax", 0.6, 0.8)))
        == "partially"
    )
    # P@1 won against all but it is not the primary metric, and example-F1 is tied: partially, not reproduced
    assert _verdict(bench, _sup(_sdlgm(0.6, 0.9), _other("sigmoid", 0.6, 0.8))) == "partially"
    # worse on example-F1 only
    mixed = _verdict(bench, _sup(_sdlgm(0.6, 0.9), _other("sigmoid", 0.7, 0.8), _other("sparsemax", 0.5, 0.8)))
    assert mixed == (
        "mixed (another model better by more than 2 SE: toy example-F1; "
        "SDLGM better than every other model by more than 2 SE: toy P@1)"
    )
    assert _verdict(bench, _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.7, 0.9))).startswith("contradicted")
    assert _verdict(bench, _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.6, 0.8))).startswith("not reproduced")
    # worse than a model everywhere, even though another one is beaten everywhere
    worst = _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.7, 0.9), _other("sparsemax", 0.1, 0.1))
    assert _verdict(bench, worst).startswith("contradicted")


def test_the_reference_model_does_not_change_the_verdict(bench):
    base = _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8))
    with_tree = _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8), _other("default", 0.9, 0.95, family="tree"))
    assert _verdict(bench, base) == _verdict(bench, with_tree) == "reproduced"


def test_untested_without_seeds_or_comparisons(bench):
    assert bench.versus_verdict([]) == "untested"
    one_seed = _sup(_sdlgm(0.6, 0.8)[:1], _other("sigmoid", 0.5, 0.8)[:1])
    assert _verdict(bench, one_seed) == "untested (fewer than 2 seeds)"
    no_sdlgm = _sup([], _other("sigmoid", 0.5, 0.8))
    assert _verdict(bench, no_sdlgm) == "untested (fewer than 2 seeds)"
    only_reference = _sup(_sdlgm(0.6, 0.8), _other("default", 0.5, 0.8, family="tree"))
    assert _verdict(bench, only_reference) == "untested"


def test_versus_rows_one_per_part_measured_else_the_untested_row(bench):
    (untested,) = bench.versus_rows({"supervised": _sdlgm(0.6, 0.8)})
    assert untested.endswith("| untested |") and "not measured at this commit" in untested
    (row,) = bench.versus_rows(_sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8), _other("default", 0.7, 0.8)))
    assert row.startswith("| SDLGM is useful for supervised") and row.endswith("| reproduced |")
    assert "toy example-F1: SDLGM 0.6000 ± 0.0100 (3 seeds); vs sigmoid: +0.1000 ± 0.0082" in row
    assert "vs default (reference, not judged): -0.1000 ± 0.0082" in row
    assert "against other models: the sigmoid heads" in row  # the reference is not named among the judged models
    (two,) = bench.versus_rows(_sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8), _other("sparsemax", 0.5, 0.8)))
    assert "against other models: the sigmoid and sparsemax heads on the same encoder" in two


def test_versus_tables_put_sdlgm_beside_the_other_models_with_their_commits(bench):
    text = bench.versus_tables(
        _sup(_sdlgm(0.6, 0.8), _other("sigmoid", 0.5, 0.8), _other("default", 0.7, 0.8, family="tree"))
    )
    lines = [line for line in text.splitlines() if line.startswith("| toy")]
    assert [line.split(" | ")[1] for line in lines] == ["SDLGM (learned L ≤ L0 = 3)", "sigmoid", "default"]
    assert lines[0].split(" | ")[4] == "0.6000 ± 0.0100" and lines[2].split(" | ")[2] == "tree"
    assert "Commits of the other models' rows: abc1234." in text


def test_rows_of_other_models_merge_by_model_and_seed(bench):
    a, b = _other("sigmoid", 0.5, 0.8)[:2]
    c = _other("sparsemax", 0.5, 0.8)[0]
    assert bench._row_key(a) != bench._row_key(b) and bench._row_key(a) != bench._row_key(c)
    assert bench._row_key(a) == bench._row_key({**a, "metrics": {}})


def test_versus_tables_name_each_data_sets_own_l0(bench):
    other = [{**r, "L0": 7, "dataset": "big"} for r in _sdlgm(0.6, 0.8)]
    text = bench.versus_tables(
        _sup(_sdlgm(0.6, 0.8) + other, _other("sigmoid", 0.5, 0.8), _other("sigmoid", 0.5, 0.8, "big"))
    )
    assert "| toy | SDLGM (learned L ≤ L0 = 3) |" in text and "| big | SDLGM (learned L ≤ L0 = 7) |" in text


def test_model_list_checks_the_models_of_each_part(bench):
    assert bench.model_list(None, "versus") == ("sigmoid", "sparsemax", "softmax", "default")
    assert bench.model_list("sigmoid,default", "versus") == ("sigmoid", "default")
    assert bench.model_list("PCA", "versus_unsupervised") == ("PCA",)
    with pytest.raises(ValueError, match=r"--models 'foo': allowed values for this --part are GaussianVAE, PCA"):
        bench.model_list("foo", "versus_unsupervised")
    with pytest.raises(ValueError, match="allowed values for this --part are sigmoid, sparsemax, softmax, default"):
        bench.model_list("PCA", "versus")
    with pytest.raises(ValueError, match="none"):
        bench.model_list("sigmoid", "supervised")
