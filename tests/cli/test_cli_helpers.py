"""Unit tests of the CLI's helpers: tables, parameter types, config files and their precedence over defaults.

The precedence tests replace the training step with a recorder, so they check the option merge alone.
"""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from _shared_data import SHARED_DATASETS

from sparsexc.cli import main
from sparsexc.cli._config import read_config_file
from sparsexc.cli._table import format_metrics_table, format_table
from sparsexc.cli._types import INT_LIST, KEY_VALUE
from sparsexc.cli.predict_cmd import format_predictions


def test_format_table_aligns_columns():
    text = format_table(["name", "value"], [["a", 0.5], ["longer", 12]])
    # first column left-aligned, the others right-aligned, two spaces between columns
    assert text.splitlines() == [
        "name     value",
        "------  ------",
        "a       0.5000",
        "longer      12",
    ]
    with pytest.raises(ValueError, match="more cells"):
        format_table(["a"], [[1, 2]])


def test_format_metrics_table_grid_and_others():
    metrics = {"P@1": 0.5, "P@3": 0.25, "nDCG@1": 0.5, "micro-F1": 0.125, "note": "text", "flag": True}
    text = format_metrics_table(metrics)
    rows = [line.split() for line in text.splitlines()]
    assert rows[0] == ["metric", "@1", "@3"]
    assert rows[2] == ["P", "0.5000", "0.2500"]
    assert rows[3] == ["nDCG", "0.5000"]
    assert ["micro-F1", "0.1250"] in rows
    assert "note" not in text and "flag" not in text
    chosen = format_metrics_table(metrics, keys=["micro-F1", "absent"])
    assert "P" not in chosen.split() and "micro-F1" in chosen


def test_int_list_and_key_value_types():
    assert INT_LIST.convert("512,256", None, None) == (512, 256)
    assert INT_LIST.convert([64], None, None) == (64,)
    assert INT_LIST.convert("", None, None) == ()
    for bad in ("5,x", "0", [1.5], "-3"):
        with pytest.raises(click.BadParameter):
            INT_LIST.convert(bad, None, None)
    assert KEY_VALUE.convert("threshold=0.5", None, None) == ("threshold", 0.5)
    assert KEY_VALUE.convert("name=abc", None, None) == ("name", "abc")
    assert KEY_VALUE.convert("num-negatives=[1,2]", None, None) == ("num_negatives", [1, 2])
    with pytest.raises(click.BadParameter):
        KEY_VALUE.convert("novalue", None, None)


def test_read_config_file_json_and_toml(tmp_path):
    (tmp_path / "c.json").write_text('{"epochs": 3, "hidden-sizes": [8]}')
    (tmp_path / "c.toml").write_text("epochs = 3\nhidden_sizes = [8]\n[head_param]\nthreshold = 0.5\n")
    assert read_config_file(tmp_path / "c.json") == {"epochs": 3, "hidden-sizes": [8]}
    assert read_config_file(tmp_path / "c.toml") == {"epochs": 3, "hidden_sizes": [8], "head_param": {"threshold": 0.5}}
    (tmp_path / "bad.json").write_text('{"epochs": 3,\n oops}')
    with pytest.raises(ValueError, match=r"bad\.json: line 2"):
        read_config_file(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping"):
        read_config_file(tmp_path / "list.json")


def test_format_predictions_xc_and_jsonl():
    indices = np.array([[3, 1], [0, 2]])
    scores = np.array([[0.75, 0.125], [2.5, -1.0]], dtype=np.float32)
    assert "".join(format_predictions(indices, scores, 4, "xc")) == "2 4\n3:0.75 1:0.125\n0:2.5 2:-1\n"
    rows = [json.loads(line) for line in format_predictions(indices, scores, 4, "jsonl")]
    assert rows == [{"labels": [3, 1], "scores": [0.75, 0.125]}, {"labels": [0, 2], "scores": [2.5, -1.0]}]


@pytest.fixture
def recorded(monkeypatch):
    """Replace the training step by a recorder of what ``sparsexc train`` would run."""
    calls: list[dict] = []

    def fake(source, options, out, *, verbose=True, recorded_options=None, overwrite=False):
        calls.append(
            {
                "source": source,
                "options": options,
                "out": out,
                "verbose": verbose,
                "recorded": recorded_options,
                "overwrite": overwrite,
            }
        )
        return {}

    monkeypatch.setattr("sparsexc.cli._training.train_and_evaluate", fake)
    return calls


def test_config_file_precedence(tmp_path, recorded):
    config = tmp_path / "run.toml"
    config.write_text(
        'dataset = "bibtex"\nepochs = 7\nlr = 0.01\nhidden-sizes = "64,32"\nout = "runs/a"\n'
        "[head-param]\nthreshold = 0.25\n"
    )
    assert main(["train", "--config", str(config), "--epochs", "2", "--dropout", "0.1"]) == 0
    (call,) = recorded
    options = call["options"]
    assert options["epochs"] == 2  # the flag beats the file
    assert options["lr"] == 0.01  # the file beats the default
    assert options["hidden_sizes"] == (64, 32)  # converted by the option's own type
    assert options["dropout"] == 0.1
    assert dict(options["head_param"]) == {"threshold": 0.25}
    assert options["batch_size"] is None  # neither: the estimator's default applies
    # the data folder the tests set SPARSEXC_DATA to (tests/conftest.py), recorded whether it exists or not
    assert call["source"] == {
        "dataset": "bibtex",
        "split": None,
        "data_dir": str(SHARED_DATASETS.resolve()),
        "data_dir_from": "the SPARSEXC_DATA environment variable",
    }
    assert call["out"] == (tmp_path / "runs" / "a").resolve()  # relative to the config file's folder


def test_config_file_head_param_flag_replaces_file(tmp_path, recorded):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "bibtex", "head_param": {"threshold": 0.25}, "out": "o"}))
    assert main(["train", "--config", str(config), "--head-param", "threshold=0.5"]) == 0
    assert dict(recorded[0]["options"]["head_param"]) == {"threshold": 0.5}


def test_config_file_unknown_key(tmp_path, recorded, one_error_line):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "bibtex", "epoch": 3}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "o")]) != 0
    line = one_error_line()
    assert "unknown key 'epoch'" in line and "allowed keys:" in line and "epochs" in line
    assert not recorded


def test_config_file_bad_value(tmp_path, recorded, one_error_line):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": "bibtex", "lr": "fast", "out": "o"}))
    assert main(["train", "--config", str(config)]) != 0
    assert "key 'lr'" in one_error_line()
    assert not recorded


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--dataset", "bibtex"], "--out"),  # no output folder
        (["--out", "o"], "--dataset"),  # no data
        (["--dataset", "bibtex", "--train", __file__, "--out", "o"], "not both"),
        (["--train", __file__, "--out", "o"], "--test"),
    ],
)
def test_train_usage_errors(args, expected, recorded, one_error_line):
    assert main(["train", *args]) == 2
    assert expected in one_error_line()
    assert not recorded


def test_recorded_options_work_as_a_config_file(tmp_path, recorded):
    # run.json's "options" (what _as_config makes of the recorded options) reproduce the run as --config
    from sparsexc.cli._training import _as_config

    args = ["train", "--dataset", "bibtex", "--split", "2", "--hidden-sizes", "32,16", "--lr", "0.003",
            "--head-param", "threshold=0.5", "--resume", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(args) == 0
    config = tmp_path / "again.json"
    config.write_text(json.dumps(_as_config(recorded[0]["recorded"])))
    assert main(["train", "--config", str(config)]) == 0
    first, second = recorded
    data_dir = str(SHARED_DATASETS.resolve())
    assert (
        second["source"]
        == first["source"]
        == {
            "dataset": "bibtex",
            "split": 2,
            "data_dir": data_dir,
            "data_dir_from": "the SPARSEXC_DATA environment variable",
        }
    )
    assert second["out"] == first["out"]
    assert {k: (dict(v) if k == "head_param" else v) for k, v in second["options"].items()} == {
        k: (dict(v) if k == "head_param" else v) for k, v in first["options"].items()
    }
