"""Seeing training from the CLI: the epoch lines and the end-of-training line of ``sparsexc train`` (no bar
redraws in a log file), its curves.png, and ``sparsexc report RUN`` (settings, curves table, how training
ended, test metrics, the PNG from the saved history; one error line and exit 2 for a bad RUN).
Small files, a linear model: every training run here takes a few seconds."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from sklearn.datasets import make_multilabel_classification

from sparsexc.cli import main
from sparsexc.train.curves import NO_MATPLOTLIB

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# a learning rate too small to move a weight: the validation P@1 never improves and patience 2 stops the run
# after epoch 3, keeping epoch 1
EARLY_STOP = [
    "--epochs",
    "10",
    "--patience",
    "2",
    "--optimizer",
    "sgd",
    "--lr",
    "1e-30",
]
COMMON = ["--hidden-sizes", "", "--seed", "0", "--batch-size", "32"]


def _write_xc(path: Path, X, Y) -> Path:
    lines = [f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}"]
    for i in range(X.shape[0]):
        labels = ",".join(map(str, Y[i].indices))
        lines.append(labels + " " + " ".join(f"{j}:{v:g}" for j, v in zip(X[i].indices, X[i].data)))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    """--train/--test flags of a small XC-format set: 240 + 60 rows, 30 features, 6 labels."""
    folder = tmp_path_factory.mktemp("report-data")
    X, Y = make_multilabel_classification(300, 30, n_classes=6, sparse=True, return_indicator="sparse", random_state=0)
    X, Y = X.tocsr(), Y.tocsr()
    return [
        "--train",
        str(_write_xc(folder / "train.txt", X[:240], Y[:240])),
        "--test",
        str(_write_xc(folder / "test.txt", X[240:], Y[240:])),
    ]


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()  # neither is a terminal, like a log file
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def early(tmp_path_factory, files) -> tuple[Path, str]:
    """A run folder that stopped early (after epoch 3, kept epoch 1), trained with stderr in a 'file'."""
    out = tmp_path_factory.mktemp("report-runs") / "early"
    code, _, err = _run(["train", *files, *COMMON, *EARLY_STOP, "--out", str(out)])
    assert code == 0, err
    return out, err


# ----------------------------------------------------------------------------------------- sparsexc train


def test_train_says_each_epoch_and_how_it_ended_without_bar_redraws(early):
    out, err = early
    assert "\r" not in err and len(err) < 2000  # a bar would write its redraws into the file
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/10", "2/10", "3/10"]
    assert epochs[0].endswith("* best") and "val P@1 0." in epochs[0]
    value = json.loads((out / "train_log.jsonl").read_text().splitlines()[0])["val_P@1"]
    line = f"stopped early after epoch 3: validation P@1 did not improve for 2 epochs; kept epoch 1 (P@1 {value:.4f})"
    assert line in err.splitlines()
    run = json.loads((out / "run.json").read_text())
    assert run["stopped_early"] is True and run["fit_summary"]["message"] == line
    assert run["fit_summary"]["kept_epoch"] == run["best_epoch"] == 1 and run["epochs_run"] == 3
    # the training budget, given here (sparsexc.train.budget): said on stderr and recorded
    budget = run["budget"]
    assert (budget["epochs"], budget["patience"], budget["refit"]) == (10, 2, False)
    assert budget["chosen"] == {"epochs": "given", "patience": "given"}
    assert [line for line in err.splitlines() if "budget: " in line] == [
        f"[sparsexc] budget: {budget['n_rows']} rows, up to 10 epochs of {budget['steps_per_epoch']} steps (given); "
        f"patience 2 epochs (given); {budget['validation_rows']} validation rows"
    ]


def test_train_writes_curves_png(early):
    pytest.importorskip("matplotlib")
    data = (early[0] / "curves.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"


def test_train_quiet_says_nothing(files, tmp_path):
    code, _, err = _run(
        [
            "train",
            *files,
            *COMMON,
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "q"),
            "--quiet",
        ]
    )
    assert code == 0 and err == ""


def test_train_without_matplotlib_says_so_once_and_report_draws_later(files, early, tmp_path, monkeypatch):
    shutil.copytree(early[0], tmp_path / "r")
    (tmp_path / "r" / "curves.png").write_bytes(b"an older run's plot")
    with monkeypatch.context() as patch:
        for name in (
            "matplotlib",
            "matplotlib.figure",
            "matplotlib.backends.backend_agg",
        ):
            patch.setitem(sys.modules, name, None)  # import fails as if not installed
        code, _, err = _run(
            [
                "train",
                *files,
                *COMMON,
                "--epochs",
                "2",
                "--out",
                str(tmp_path / "r"),
                "--overwrite",
            ]
        )
    assert code == 0 and "P@1" in json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert err.count(NO_MATPLOTLIB) == 1 and "pip install 'sparsexc[plots]'" in err
    assert not (tmp_path / "r" / "curves.png").exists()  # --overwrite removed the old one; none drawn
    pytest.importorskip("matplotlib")
    code, _, err = _run(["report", str(tmp_path / "r")])  # from the saved history, now that matplotlib is here
    assert code == 0 and (tmp_path / "r" / "curves.png").read_bytes()[:8] == PNG_SIGNATURE


# ---------------------------------------------------------------------------------------- sparsexc report


def test_report_prints_settings_curves_ending_and_metrics(early, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(early[0], run)
    (run / "curves.png").unlink(missing_ok=True)
    code, out, err = _run(["report", str(run)])
    assert code == 0, err
    history = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    metrics = json.loads((run / "metrics.json").read_text())
    summary = json.loads((run / "run.json").read_text())["fit_summary"]
    lines = out.splitlines()
    assert any(line.split() == ["lr", "1e-30"] for line in lines) and any(
        line.split() == ["patience", "2"] for line in lines
    )
    table = lines[lines.index("training curves") + 1 :]
    assert table[0].split() == [
        "epoch",
        "train",
        "loss",
        "val",
        "P@1",
        "seconds",
        "mark",
    ]
    for record, row in zip(history, table[2:5]):
        cells = row.split()
        assert cells[:3] == [
            str(record["epoch"]),
            f"{record['train_loss']:.4f}",
            f"{record['val_P@1']:.4f}",
        ]
    assert table[2].endswith("best, kept") and not table[3].endswith(("best", "kept"))
    assert summary["message"] in lines
    assert "test metrics" in lines and f"{metrics['P@1']:.4f}" in out and "micro-F1" in out
    pytest.importorskip("matplotlib")
    assert (run / "curves.png").read_bytes()[:8] == PNG_SIGNATURE and "curves written to" in err


def test_report_plot_options(early, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(early[0], run)
    (run / "curves.png").unlink(missing_ok=True)
    assert _run(["report", str(run), "--no-plot"])[0] == 0
    assert not (run / "curves.png").exists()
    pytest.importorskip("matplotlib")
    assert _run(["report", str(run), "--plot", str(tmp_path / "elsewhere.png")])[0] == 0
    assert (tmp_path / "elsewhere.png").read_bytes()[:8] == PNG_SIGNATURE and not (run / "curves.png").exists()


def test_report_of_an_older_run_infers_the_ending_and_reads_the_model_history(early, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(early[0], run)
    info = json.loads((run / "run.json").read_text())
    message = info.pop("fit_summary")["message"]
    (run / "run.json").write_text(json.dumps(info))
    (run / "train_log.jsonl").unlink()  # the history then comes from model/config.json
    code, out, _ = _run(["report", str(run), "--no-plot"])
    assert code == 0 and message in out.splitlines()


def test_report_without_matplotlib_prints_and_says_so(early, monkeypatch, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(early[0], run)
    (run / "curves.png").unlink(missing_ok=True)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out, err = _run(["report", str(run)])
    assert code == 0 and "training curves" in out and err.count(NO_MATPLOTLIB) == 1
    assert not (run / "curves.png").exists()


def _spoil(run: Path, name: str, text: str) -> None:
    (run / name).write_text(text)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such folder"),
    ("not-a-run", "no run.json here"),
    ("bad-json-line", "train_log.jsonl: line 2: not valid JSON"),
    ("not-an-object", "train_log.jsonl: line 1: not a JSON object"),
    ("bad-epoch", "train_log.jsonl: line 1: field 'epoch' must be an integer >= 1"),
    ("no-loss", "train_log.jsonl: line 1: field 'train_loss' must be a number"),
    ("empty-log", "train_log.jsonl: holds no epoch"),
    ("bad-run-json", "run.json: line 1: not valid JSON"),
    ("bad-metrics", "metrics.json: not a JSON object of metrics"),
])  # fmt: skip
def test_report_of_a_bad_run_is_one_line_and_exit_2(early, tmp_path, case, message):
    run = tmp_path / "run"
    if case != "missing":
        shutil.copytree(early[0], run)
    good = '{"epoch": 1, "train_loss": 0.5}\n'
    if case == "not-a-run":
        (run / "run.json").unlink()
    spoiled = {
        "bad-json-line": good + '{"epoch": 2, "train_lo\n',
        "not-an-object": "[1, 2]\n",
        "bad-epoch": '{"epoch": 0, "train_loss": 0.5}\n',
        "no-loss": '{"epoch": 1}\n',
        "empty-log": "\n",
    }
    if case in spoiled:
        _spoil(run, "train_log.jsonl", spoiled[case])
    if case == "bad-run-json":
        _spoil(run, "run.json", "{oops")
    if case == "bad-metrics":
        _spoil(run, "metrics.json", "[0.5]")
    code, out, err = _run(["report", str(run)])
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsexc: error: ") and message in lines[0], err
