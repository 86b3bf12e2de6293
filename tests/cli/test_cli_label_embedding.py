"""``sparsexc train --head label-embedding --head-param embedding_dim=...`` end to end on Bibtex."""

from __future__ import annotations

import json

import numpy as np
import torch

from sparsexc.cli import main
from sparsexc.estimator import XCClassifier


def test_train_with_the_label_embedding_head(tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "bibtex",
            "--head",
            "label-embedding",
            "--head-param",
            "embedding_dim=64",
            "--head-param",
            "alpha=0.75",
            "--hidden-sizes",
            "",
            "--epochs",
            "2",
            "--seed",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    config = json.loads((out / "model" / "config.json").read_text())
    head = config["model"]["head"]
    assert head["name"] == "label-embedding" and head["params"]["embedding_dim"] == 64
    assert head["params"]["alpha"] == 0.75 and -1.0 <= head["tuned"]["threshold"] < 1.0
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["head-param"] == {"embedding_dim": 64, "alpha": 0.75}
    # the saved embeddings are the PMI ones (unit rows, not the placeholder basis vectors)
    E = XCClassifier.load(out / "model").model_.head.embeddings
    assert E.shape == (159, 64)
    np.testing.assert_allclose(torch.linalg.vector_norm(E, dim=1).numpy(), 1.0, atol=1e-5)
    assert int((E.abs() == 1).sum()) < 10
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["P@1"] > 0.3  # 159 labels, ~2.4 per row: far above chance after two epochs
