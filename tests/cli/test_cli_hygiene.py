"""CLI and error hygiene (issue 17): optional packages checked with the settings, before any data are read; no
torch sparse-invariant warning; bare ``sparsexc`` is the help; one exit code (2) for user mistakes; where the
data folder came from, in the CLI's words; help texts with the real defaults; predict's input and output
formats said. Tiny XC files, one epoch."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sparsexc.cli import main

FAST = ["--epochs", "1", "--hidden-sizes", "", "--seed", "0", "--quiet"]
INSTALL_ANN = 'pip install "sparsexc[ann]"'


def _xc(path: Path, n_rows: int = 40, n_features: int = 12, n_labels: int = 5, seed: int = 0) -> Path:
    """An XC text file: each row 3 random features (ids >= 1, so that a headerless copy looks 1-based) and one
    label."""
    rng = np.random.default_rng(seed)
    lines = [f"{n_rows} {n_features} {n_labels}"]
    for i in range(n_rows):
        features = sorted(rng.choice(np.arange(1, n_features), 3, replace=False).tolist())
        lines.append(f"{i % n_labels} " + " ".join(f"{j}:{rng.uniform(0.1, 1):.3f}" for j in features))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def data(tmp_path) -> Path:
    return _xc(tmp_path / "data.txt")


# ------------------------------------------------------------------------------------ optional packages


@pytest.fixture
def no_hnswlib(monkeypatch):
    """hnswlib made unimportable (it is installed here): ``import hnswlib`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "hnswlib", None)


def _no_data_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the data were read before the settings were checked")

    import sparsexc.cli._training  # imported first: it binds _data.load_source at its import

    monkeypatch.setattr(sparsexc.cli._training, "load_source", refuse)
    monkeypatch.setattr("sparsexc.cli._data.load_source", refuse)


@pytest.mark.parametrize("extra", [[], ["--nproc-per-node", "2"]])
def test_ann_hnsw_without_hnswlib_is_one_line_before_the_data(
    data, tmp_path, monkeypatch, no_hnswlib, extra, one_error_line
):
    _no_data_reads(monkeypatch)
    monkeypatch.setattr(
        "sparsexc.distributed.launch.relaunch_with_torchrun", lambda *a, **k: pytest.fail("torchrun started")
    )
    args = [
        "train",
        "--train",
        str(data),
        "--test",
        str(data),
        "--head",
        "label-embedding",
        "--head-param",
        "ann=hnsw",
        "--out",
        str(tmp_path / "o"),
        *FAST,
        *extra,
    ]
    assert main(args) == 2
    line = one_error_line()
    assert "ann='hnsw' needs the package hnswlib, which is not installed" in line and INSTALL_ANN in line
    assert not (tmp_path / "o").exists()  # refused before the run folder was claimed


def test_a_saved_hnsw_model_without_hnswlib_is_one_line(data, tmp_path, monkeypatch, one_error_line):
    pytest.importorskip("hnswlib")
    out = tmp_path / "o"
    assert (
        main(
            [
                "train",
                "--train",
                str(data),
                "--test",
                str(data),
                "--head",
                "label-embedding",
                "--head-param",
                "ann=hnsw",
                "--head-param",
                "embedding_dim=4",
                "--out",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    assert main(["predict", str(out), "--input", str(data), "--top-k", "2"]) == 2
    assert INSTALL_ANN in one_error_line()


def test_every_optional_dependency_is_an_extra_with_an_install_line():
    # each module sparsexc imports optionally belongs to an extra of pyproject.toml, named in its message
    import tomllib

    from sparsexc._optional import EXTRAS, MissingDependencyError, import_optional

    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for module, (extra, distribution) in EXTRAS.items():
        assert any(r.startswith(distribution) for r in extras[extra]), (module, extra)
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, module, None)
            with pytest.raises(MissingDependencyError, match=rf'pip install "sparsexc\[{extra}\]"'):
                import_optional(module, "this feature")


# ------------------------------------------------------------------------ torch's sparse-invariant warning


def test_negative_sampling_runs_without_the_sparse_invariant_warning(data, tmp_path):
    # torch warns once per process, so the run gets a fresh one; without --quiet its stderr holds log lines
    # only, and no "sparsexc: warning:" line (the CLI's form of a Python warning)
    code = textwrap.dedent(f"""
        import sys
        from sparsexc.cli import main
        sys.exit(main(["train", "--train", {str(data)!r}, "--test", {str(data)!r}, "--head", "negative-sampling",
                       "--epochs", "1", "--hidden-sizes", "", "--out", {str(tmp_path / "o")!r}]))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "Sparse invariant" not in result.stderr and "warning" not in result.stderr, result.stderr


# ------------------------------------------------------------------------------------ bare commands, exits


@pytest.mark.parametrize("args", [[], ["datasets"]])
def test_a_group_without_a_command_prints_its_help_and_exits_0(args, capsys):
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"Usage: sparsexc {' '.join(args)}".rstrip() + " [OPTIONS] COMMAND")
    assert "Commands:" in captured.out and captured.err == ""


@pytest.mark.parametrize(
    "args",
    [
        ["datasets", "convert", "no-such-set", "OUT"],
        ["datasets", "info", "no-such-set"],
        ["train", "--dataset", "no-such-set", "--out", "OUT"],
        ["train", "--dataset", "bibtex", "--head", "no-such-head", "--out", "OUT"],
    ],
)
def test_unknown_data_sets_and_heads_exit_2(args, tmp_path, one_error_line):
    assert main([str(tmp_path / "o") if a == "OUT" else a for a in args]) == 2
    assert "no-such-" in one_error_line()


# -------------------------------------------------------------------------------------- data folder words


@pytest.mark.parametrize("how", ["default", "env", "flag"])
def test_missing_data_says_where_the_folder_came_from(how, tmp_path, monkeypatch, one_error_line):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SPARSEXC_DATA", raising=False)
    folder = tmp_path / "somewhere"
    flag = []
    if how == "env":
        monkeypatch.setenv("SPARSEXC_DATA", str(folder))
    elif how == "flag":
        flag = ["--data-dir", str(folder)]
    assert main(["train", "--dataset", "scene", *flag, "--out", str(tmp_path / "o"), *FAST]) == 2
    line = one_error_line()
    origin = {
        "default": "(from the default ~/sparsexc_data, as SPARSEXC_DATA is not set)",
        "env": "(from the SPARSEXC_DATA environment variable)",
        "flag": "(from --data-dir)",
    }[how]
    assert origin in line and "data_dir" not in line, line
    download = "'sparsexc datasets download scene" + (f" --data-dir {folder}'" if how == "flag" else "'")
    assert download in line and "give --data-dir (or set SPARSEXC_DATA)" in line


def test_evaluate_names_the_run_file_as_the_folders_origin(tmp_path, monkeypatch, one_error_line):
    # a run.json that records a data folder which has gone since
    run = tmp_path / "run"
    run.mkdir()
    gone = tmp_path / "gone"
    (run / "run.json").write_text(
        json.dumps({"data": {"dataset": "scene", "split": None, "data_dir": str(gone), "data_dir_from": "--data-dir"}})
    )
    monkeypatch.setattr("sparsexc.cli._rundir.load_model", lambda run_dir: None)
    assert main(["evaluate", str(run)]) == 2
    line = one_error_line()
    assert f"(from {run / 'run.json'}; at training time from --data-dir)" in line, line


def test_python_callers_get_python_words(tmp_path):
    from sparsexc.datasets import load

    with pytest.raises(FileNotFoundError) as excinfo:
        load("scene", tmp_path / "x")
    message = str(excinfo.value)
    assert "(from the data_dir= argument)" in message and "--data-dir" not in message
    assert f"sparsexc.datasets.download('scene', data_dir={str(tmp_path / 'x')!r})" in message


# ---------------------------------------------------------------------------------------------- help texts


def _help(args: list[str], capsys) -> str:
    assert main([*args, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_train_help_shows_the_estimators_defaults(capsys):
    from sparsexc.cli._defaults import CHOSEN_FROM_DATA
    from sparsexc.estimator import XCClassifier
    from sparsexc.estimator.classifier import DEFAULT_LR
    from sparsexc.heads import get_head, list_heads

    text = _help(["train"], capsys)
    assert "default: the estimator's" not in text
    signature = inspect.signature(XCClassifier).parameters
    for flag, param, shown in [
        ("--epochs", "epochs", CHOSEN_FROM_DATA),
        ("--batch-size", "batch_size", None),
        ("--dropout", "dropout", None),
        ("--patience", "patience", CHOSEN_FROM_DATA),
        ("--head", "head", None),
        ("--seed", "random_state", None),
        ("--validation-fraction", "validation_fraction", None),
        ("--hidden-sizes", "hidden_sizes", ",".join(map(str, signature["hidden_sizes"].default))),
        ("--val-metric", "val_metric", None),
        ("--device", "device", None),
    ]:
        value = signature[param].default if shown is None else shown
        value = f"{value:g}" if isinstance(value, float) else value
        assert f"[default: {value}]" in text.split(flag, 1)[1].split(" --", 1)[0], flag
    assert f"adagrad {DEFAULT_LR['adagrad']:g}" in text  # lr: per optimiser
    adagrad_heads = ", ".join(n for n in list_heads() if get_head(n).default_optimizer == "adagrad")
    assert adagrad_heads and f"adagrad for {adagrad_heads}" in " ".join(text.split())  # the help wraps lines
    assert "[default: --dense-gradients]" in text


def test_quickstart_help_shows_the_epochs(capsys):
    from sparsexc.cli._defaults import CHOSEN_FROM_DATA
    from sparsexc.estimator import XCClassifier

    text = _help(["quickstart"], capsys)
    assert inspect.signature(XCClassifier).parameters["epochs"].default is None  # chosen from the data
    assert f"[default: {CHOSEN_FROM_DATA}]" in text


def test_predict_help_lists_the_formats_and_the_id_bases(capsys):
    text = _help(["predict"], capsys)
    fmt = text.split("--format", 1)[1]
    assert "xc: a line 'n_rows n_labels', then per row 'label:score" in fmt and "jsonl: per row" in fmt
    assert "predict --help" not in fmt
    assert "headerless svmlight/LibSVM" in text and "1-based unless a row uses feature 0" in text


def test_predict_notes_a_headerless_input_read_as_1_based(data, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["train", "--train", str(data), "--test", str(data), "--out", str(out), *FAST]) == 0
    headerless = tmp_path / "rows.svm"
    headerless.write_text("".join(line + "\n" for line in data.read_text().splitlines()[1:]))
    capsys.readouterr()
    assert main(["predict", str(out), "--input", str(headerless), "--top-k", "2"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("sparsexc: note: ") and "taken as 1-based" in err and err.count("\n") == 1
    # a file with a header says what it is: no note
    assert main(["predict", str(out), "--input", str(data), "--top-k", "2"]) == 0
    assert capsys.readouterr().err == ""


def test_report_plot_without_matplotlib_is_one_line_before_the_run_is_read(tmp_path, monkeypatch, one_error_line):
    # a PNG asked for by name needs matplotlib; said first (the run folder here does not even exist)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(tmp_path / "no-run"), "--plot", str(tmp_path / "curves.png")]) == 2
    line = one_error_line()
    assert line.startswith("sparsexc: error: --plot needs the package matplotlib") and 'sparsexc[plots]"' in line
