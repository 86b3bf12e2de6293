"""The CLI's setting options are generated from the Params fields: every field is reachable (train's model
settings and run plumbing, predict's prediction settings), every option has help, ``--print-config`` writes
every setting with its default and a config file round-trips."""

from __future__ import annotations

import inspect
import json

import click
import numpy as np
import pytest
from _settings import as_json, head_params_classes, other_value, plain

from sparsexc._params import ESTIMATOR_SETTINGS, Params, PredictParams, RunParams
from sparsexc.cli import cli, main
from sparsexc.cli._settings import ESTIMATOR_NAMES, PREDICT_OPTIONS, RUN_OPTIONS
from sparsexc.estimator import XCClassifier
from sparsexc.estimator._ridge import RidgeParams
from sparsexc.heads import get_head
from sparsexc.tree import LabelTreeParams


def _config(args: list[str], capsys) -> dict:
    assert main(["train", *args, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def test_print_config_writes_every_setting_with_the_estimators_defaults(capsys):
    config = _config([], capsys)
    signature = inspect.signature(XCClassifier).parameters
    head = get_head("softmax")
    assert config["head"] == signature["head"].default == "softmax"
    assert config["head-param"] == head.Params().to_dict()
    assert config["optimizer"] == head.default_optimizer and config["lr"] == pytest.approx(1e-3)  # resolved
    for option, name in ESTIMATOR_NAMES.items():
        if option not in ("optimizer", "lr"):
            assert config[_flag(option)[2:]] == as_json(signature[name].default), option
    # the label-tree model's settings too (issue 19: --model tree --tree-param KEY=VALUE), every field
    assert config["tree-param"] == LabelTreeParams().to_dict()
    # and the ridge model's (stop 62: --model ridge --ridge-param KEY=VALUE), every field
    assert config["ridge-param"] == RidgeParams().to_dict()
    assert set(config) == {
        "head",
        "head-param",
        "tree-param",
        "ridge-param",
        *(o.replace("_", "-") for o in ESTIMATOR_NAMES),
    }


def test_every_estimator_setting_is_an_option_but_the_run_plumbing():
    cli = set(ESTIMATOR_NAMES.values())
    fields = {
        f.metadata.get("estimator_name", f.name)
        for cls in ESTIMATOR_SETTINGS
        if cls is not RunParams
        for f, _ in cls.settings()
        if "from_estimator" not in f.metadata
    }
    assert cli == fields


@pytest.mark.parametrize("cls", [c for c in ESTIMATOR_SETTINGS if c is not RunParams], ids=lambda c: c.__name__)
def test_every_setting_is_reachable_through_its_option(cls, capsys):
    for field, hint in cls.settings():
        if "from_estimator" in field.metadata:
            continue
        option = field.metadata.get("cli_flag", field.name)
        value = other_value(cls, field, hint)
        if isinstance(value, bool):
            args = [_flag(option)] if value else [f"--{field.metadata.get('cli_off', 'no-' + option)}"]
        else:
            args = [_flag(option), ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
        extra = ["--head", "sigmoid"] if field.name == "hidden_sizes" else []
        config = _config([*extra, *args], capsys)
        assert config[option.replace("_", "-")] == pytest.approx(as_json(value)), field.name


@pytest.mark.parametrize("head", sorted(head_params_classes()))
def test_every_head_and_sampler_setting_is_reachable_through_head_param(head, capsys):
    params_cls = head_params_classes()[head]
    for field, hint in params_cls.settings():
        base = plain(hint)
        nested = isinstance(base, type) and issubclass(base, Params)
        cases = (
            [(f"{field.name}.{f.name}", other_value(base, f, h)) for f, h in base.settings()]
            if nested
            else [(field.name, other_value(params_cls, field, hint))]
        )
        for key, value in cases:
            hidden = ["--hidden-sizes", ""] if key.startswith("tree") else []
            args = ["train", "--head", head, *hidden, "--head-param", f"{key}={json.dumps(as_json(value))}"]
            if main([*args, "--print-config"]) != 0:  # only an optional package missing (ann="hnsw": hnswlib)
                assert key == "ann" and "hnswlib" in capsys.readouterr().err
                continue
            config = json.loads(capsys.readouterr().out)
            shown = config["head-param"]
            for part in key.split("."):
                shown = shown[part]
            assert shown == as_json(value), f"{head}: {key}"


def test_old_flat_sampler_keys_still_work_on_the_command_line(capsys):
    config = _config(
        ["--head", "negative-sampling", "--head-param", "tree_dim=4", "--head-param", "frequency-power=0.5"], capsys
    )
    assert config["head-param"]["tree"]["dim"] == 4 and config["head-param"]["frequency"]["power"] == 0.5
    assert "tree_dim" not in config["head-param"]


def test_print_config_round_trips_through_a_config_file(tmp_path, capsys):
    args = ["--head", "sampled-softmax", "--head-param", "tree.dim=5", "--epochs", "3", "--momentum", "0.5"]
    config = _config([*args, "--dataset", "bibtex"], capsys)
    assert config["dataset"] == "bibtex" and config["head-param"]["tree"]["dim"] == 5
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert _config(["--config", str(path)], capsys) == config
    assert _config(["--config", str(path), "--epochs", "4"], capsys) == {**config, "epochs": 4}  # a flag wins


def test_print_config_checks_the_settings(capsys, one_error_line):
    assert main(["train", "--print-config", "--head-param", "nope=1"]) == 2
    assert "unknown key 'nope'" in one_error_line()
    assert main(["train", "--print-config", "--head", "negative-sampling", "--head-param", "tree.split=x"]) == 2
    assert "split='x' is not allowed" in one_error_line()
    assert main(["train", "--print-config", "--head-param", "threshold=2", "--head-param", "threshold.x=1"]) == 2
    assert "'threshold' is set to a value and to nested settings" in one_error_line()


def _args(field, hint, params_cls) -> tuple[str, list[str], object]:
    """(option name, the flag's arguments, the value) of a non-default value of ``field``."""
    option = field.metadata.get("cli_flag", field.name)
    value = other_value(params_cls, field, hint)
    if isinstance(value, bool):
        return option, [_flag(option)] if value else [f"--{field.metadata.get('cli_off', 'no-' + option)}"], value
    return option, [_flag(option), str(value)], value


def test_every_run_setting_is_reachable_through_train(tmp_path, monkeypatch):
    import sparsexc.cli._training as training

    seen = []
    monkeypatch.setattr(training, "_run", lambda clf, run, *args: seen.append(run) or {})
    out = tmp_path / "out"

    def run(*args: str):
        seen.clear()
        assert main(["train", "--dataset", "bibtex", "--out", str(out), "--quiet", *args]) == 0
        return seen[0]

    assert run() == RunParams(log_path=str(out / "train_log.jsonl"))  # the log always, checkpoints if asked
    derived = {"checkpoint_dir": str(out / "checkpoints"), "log_path": str(out / "train_log.jsonl")}
    assert set(RUN_OPTIONS) | {f.name for f, _ in RunParams.settings() if "cli_from" in f.metadata} == set(
        RunParams.field_names()
    )
    assert {f.name for f, _ in RunParams.settings() if "cli_from" in f.metadata} == set(derived)
    for field, hint in RunParams.settings():
        if "cli_from" in field.metadata:
            continue
        option, args, value = _args(field, hint, RunParams)
        assert run(*args) == RunParams(**derived, **{field.name: value}), option


@pytest.fixture(scope="module")
def model_and_rows(tmp_path_factory):
    from sklearn.datasets import make_multilabel_classification

    from sparsexc.io import write_xc

    X, Y = make_multilabel_classification(80, 12, n_classes=9, random_state=0, sparse=True, return_indicator="sparse")
    X = X.astype(np.float32).tocsr()
    folder = tmp_path_factory.mktemp("predict")
    XCClassifier(hidden_sizes=(), epochs=1, device="cpu").fit(X, Y).save(folder / "model")
    write_xc(folder / "rows.txt", X[:20], Y[:20])
    return folder / "model", folder / "rows.txt"


def test_every_prediction_setting_is_reachable_through_predict(model_and_rows, monkeypatch, capsys, one_error_line):
    model, rows = model_and_rows
    seen = {}
    real = XCClassifier.predict_topk

    def spy(self, X, k=None, *, batch_size=None, beam=None):
        seen.update(k=k, batch_size=batch_size, beam=beam)
        return real(self, X, k, batch_size=batch_size, beam=beam)

    monkeypatch.setattr(XCClassifier, "predict_topk", spy)
    required = ["--top-k", "3"]
    assert main(["predict", str(model), "--input", str(rows), *required]) == 0
    assert seen == {**PredictParams().to_dict(), "k": 3}
    assert len(capsys.readouterr().out.splitlines()[1].split()) == 3
    assert set(PREDICT_OPTIONS) == {f.metadata.get("cli_flag", f.name) for f, _ in PredictParams.settings()}
    for field, hint in PredictParams.settings():
        option, args, value = _args(field, hint, PredictParams)
        given = args if option == "top_k" else [*required, *args]
        assert main(["predict", str(model), "--input", str(rows), *given]) == 0, option
        assert seen == {**PredictParams(k=3).to_dict(), field.name: value}, option
    assert main(["predict", str(model), "--input", str(rows)]) == 2  # --top-k stays required
    assert "--top-k" in capsys.readouterr().err
    assert main(["predict", str(model), "--input", str(rows), *required, "--batch-size", "0"]) == 2


def _commands(command: click.Command, path: str):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help():
    ctx = click.Context(cli)
    for path, command in _commands(cli, "sparsexc"):
        assert (command.help or "").strip() or isinstance(command, click.Group), path
        for param in command.get_params(ctx):  # with --help
            if isinstance(param, click.Option):
                assert (param.help or "").strip() and not param.hidden, f"{path} {param.opts}: no help"
    assert any(path == "sparsexc train" for path, _ in _commands(cli, "sparsexc"))


def test_print_config_shows_the_run_options_only_when_given(capsys):
    config = _config([], capsys)
    assert not {o.replace("_", "-") for o in RUN_OPTIONS} & set(config)
    config = _config(["--checkpoint-every", "7", "--resume"], capsys)
    assert config["checkpoint-every"] == 7 and config["resume"] is True
