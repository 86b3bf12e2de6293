"""A label-tree or ridge model goes through ``XCClassifier`` without torch (issue 19's memory: torch's import is about
175 MiB of resident memory that a numpy/scipy/numba model does not need), and the settings check that lets it
(``_check_settings``: the default head's settings are not built) finds every error the full one does."""

from __future__ import annotations

import pytest
from _no_torch import run_without_torch

from sparsexc.errors import ConfigurationError
from sparsexc.estimator import XCClassifier

# fit, predict, decision_function, save and load a default model (ridge on these 300 rows), a model="tree" and a
# model="ridge" one with torch's import made to fail: any import of torch on that path is an ImportError naming the
# line that made it
SCRIPT = """
    import tempfile

    import numpy as np
    import scipy.sparse as sp
    from sparsexc import XCClassifier

    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.1, format="csr", random_state=0, dtype=np.float32)
    Y = sp.csr_matrix((rng.random((300, 8)) < 0.25).astype(np.float32))
    names = [f"tag{j}" for j in range(8)]
    for model, family in (("auto", "ridge"), ("tree", "tree"), ("ridge", "ridge")):
        clf = XCClassifier(model=model, verbose=0).fit(X, Y, label_names=names)
        assert clf.resolved_model().family == family
        clf.predict_topk(X, k=3), clf.decision_function(X[:5]), clf.predict_labels(X[:5])
        with tempfile.TemporaryDirectory() as folder:
            clf.save(folder + "/m")
            loaded = XCClassifier.load(folder + "/m")
        assert (loaded.predict(X) != clf.predict(X)).nnz == 0
        assert list(loaded.classes_) == names
    print("torch" in sys.modules)
"""


def test_tree_and_ridge_models_fit_predict_save_and_load_without_importing_torch():
    run_without_torch(SCRIPT)


CASES = [
    {},
    {"hidden_sizes": ()},
    {"hidden_sizes": (64, 32), "dropout": 0.0},
    {"optimizer": "sgd"},
    {"optimizer": "sgd", "lr": 0.5, "momentum": 0.9},
    {"optimizer": "nadam"},
    {"optimizer": ""},
    {"optimizer": 3},
    {"lr": -1.0},
    {"lr": 0.0},
    {"batch_size": 0},
    {"epochs": 0},
    {"patience": -1},
    {"dropout": 1.5},
    {"activation": "swish!"},
    {"validation_fraction": 2.0},
    {"random_state": "a"},
    {"random_state": True},
    {"verbose": "loud"},
    {"tree_params": {"n_trees": 0}},
    {"tree_params": [1]},
    {"model": "forest"},
    {"precision": "int4"},
    {"lr_schedule": "sometimes"},
    {"val_metric": "P@0"},
    {"tune_metric": "nonsense"},
    {"head": "no-such-head"},
    {"head_params": {"no_such_field": 1}},
    {"head_params": "temperature=1"},
    {"head": "sparsemax", "lr": 1e-2},
]


def _outcome(check):
    try:
        check()
    except Exception as exc:  # the error type and message are compared
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("settings", CASES, ids=[repr(c) for c in CASES])
def test_the_check_without_the_default_head_finds_what_the_full_check_finds(settings):
    clf = XCClassifier(**settings)
    full, check = _outcome(clf._settings), _outcome(clf._check_settings)
    assert check == full
    if full is not None:
        assert issubclass(full[0], (ConfigurationError, ValueError, TypeError))


def test_a_ridge_model_never_imports_the_tree_or_numba() -> None:
    """The tree's settings are checked in every fit (as the head's are); without ``tree_params`` they are the
    defaults and are not built, so a ridge fit does not import the tree and numba (about 0.25 s of a small fit)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys, tempfile
        import numpy as np, scipy.sparse as sp
        from sparsexc import XCClassifier

        rng = np.random.default_rng(0)
        X = sp.random(300, 40, density=0.1, format="csr", random_state=0, dtype=np.float32)
        Y = sp.csr_matrix((rng.random((300, 8)) < 0.25).astype(np.float32))
        clf = XCClassifier(verbose=0).fit(X, Y)
        assert clf.resolved_model().family == "ridge"
        clf.predict(X), clf.predict_proba(X)
        with tempfile.TemporaryDirectory() as folder:
            clf.save(folder + "/m")
            XCClassifier.load(folder + "/m").predict_topk(X, 3)
        print(sorted(m for m in ("numba", "sparsexc.tree") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    with pytest.raises(ConfigurationError, match="tree_params"):  # given tree_params are still checked
        XCClassifier(tree_params={"n_trees": 0}).fit(*_tiny())


def _tiny():
    import numpy as np
    import scipy.sparse as sp

    return sp.csr_matrix(np.eye(4, dtype=np.float32)), sp.csr_matrix(np.eye(4, dtype=np.float32))
