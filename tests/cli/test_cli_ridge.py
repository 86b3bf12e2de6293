"""``sparsexc train --model ridge --ridge-param KEY=VALUE``: the ridge model's settings through the CLI, on the
bundled Bibtex data (stop 62); a bad ridge setting is one error line in test_cli_tree.py's test of bad settings."""

from __future__ import annotations

import json

from sparsexc.cli import main

RIDGE_ARGS = ["--model", "ridge", "--ridge-param", "kernel=rbf", "--ridge-param", "max_landmarks=50"]


def test_train_passes_the_ridge_settings_and_records_them(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "bibtex", *RIDGE_ARGS, "--ridge-param", "gamma=2", "--out", str(out), "--quiet"])
    assert code == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["family"] == "ridge"
    assert config["params"]["ridge_params"] == {"kernel": "rbf", "max_landmarks": 50, "gamma": 2}
    assert config["model"]["kernel"] == "rbf" and config["model"]["n_landmarks"] == 50 and config["model"]["gamma"] == 2
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["ridge-param"] == {"kernel": "rbf", "max_landmarks": 50, "gamma": 2}
    assert json.loads((out / "metrics.json").read_text())["P@1"] > 0.2  # far above chance on 159 labels


def test_print_config_shows_the_ridge_settings(capsys):
    assert main(["train", "--dataset", "bibtex", *RIDGE_ARGS, "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["model"] == "ridge"
    assert config["ridge-param"] == {"kernel": "rbf", "gamma": 1.0, "max_landmarks": 50, "kernel_z": 2.0}
