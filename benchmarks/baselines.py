"""Baselines: linear and one-hidden-layer models with every registered head on small real data sets.

Each configuration (data set x model x head) runs in its own subprocess, so its peak memory (the RSS
high-water mark, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own. Reported per configuration:
P@1/3/5, nDCG@5, PSP@5 (inverse propensities from the training labels), micro-F1 of the predicted label
sets, training seconds and epochs run, peak RSS of the process at the end of training and the RSS growth
during training (peak after ``fit`` minus peak before it, i.e. what training added on top of the loaded data).

Writes ``benchmarks/results/baselines.json`` (rows + machine, versions, date, settings) and
``benchmarks/results/baselines.md`` (a Markdown table), and prints the table.

Usage::

    python benchmarks/baselines.py                                   # the full set (a few minutes, 2 cores)
    python benchmarks/baselines.py --quick                           # bibtex only, 3 epochs
    python benchmarks/baselines.py --datasets bibtex --heads softmax --models mlp512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import (
    Stopwatch,
    add_common_flags,
    command_line,
    dataset_list,
    environment,
    page_header,
    peak_rss_mib,
    read_json,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)

DATASETS = ("bibtex", "delicious", "debtags", "tmc2007-500")
# model name -> hidden layer sizes; "default" (not run unless asked for) = the estimator's default encoder
MODELS: dict[str, tuple[int, ...] | None] = {"linear": (), "mlp512": (512,), "default": None}
DEFAULT_MODELS = ("linear", "mlp512")
# The estimator's defaults (early stopping on validation P@1 over a held-out share of the training rows, best
# weights restored), so the table shows what a user gets; only the seed is pinned. --quick: 3 epochs.
TRAIN_SETTINGS: dict[str, Any] = {"random_state": 0}
QUICK_SETTINGS: dict[str, Any] = {"random_state": 0, "epochs": 3}
COLUMNS = ("P@1", "P@3", "P@5", "nDCG@5", "PSP@5", "micro-F1")


def run_one(config: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one configuration in this process; return its result row."""
    from sparsexc import XCClassifier
    from sparsexc.cli import test_metrics  # what `sparsexc train` reports
    from sparsexc.datasets import load

    train, test = load(config["dataset"])
    settings = {k: v for k, v in config["settings"].items() if v is not None}
    if config["hidden_sizes"] is not None:
        settings["hidden_sizes"] = tuple(config["hidden_sizes"])
    clf = XCClassifier(head=config["head"], **settings)
    rss_before = peak_rss_mib()
    with timed() as fit_time:
        clf.fit(train.X, train.Y)
    train_seconds = fit_time.wall
    rss_after = peak_rss_mib()
    metrics = test_metrics(clf, test.X, test.Y, train.Y)
    return {
        "dataset": config["dataset"],
        "model": config["model"],
        "head": config["head"],
        "hidden_sizes": list(clf.hidden_sizes),
        "n_train": train.n_samples,
        "n_test": test.n_samples,
        "n_features": train.n_features,
        "n_labels": train.n_labels,
        "epochs_run": len(clf.history_),
        "best_epoch": clf.best_epoch_,
        "train_seconds": round(train_seconds, 2),
        "peak_rss_mib": round(rss_after, 1),
        "train_rss_growth_mib": round(rss_after - rss_before, 1),
        "estimator_params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in clf.get_params().items()},
        "metrics": metrics,
    }


def _run_in_subprocess(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", json.dumps(config)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**_identity(config), "error": f"timed out after {timeout:.0f} s"}
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return {**_identity(config), "error": f"exit {result.returncode}: {tail[0]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in ("dataset", "model", "head")}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The result rows as a Markdown table (a failed row shows its error)."""
    head = [
        "dataset",
        "model",
        "head",
        *COLUMNS,
        "epochs (best)",
        "train s",
        "peak RSS MiB",
        "train RSS +MiB",
        "settings",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
    for row in rows:
        model = row["model"]
        if model == "default" and "hidden_sizes" in row:
            model = f"default {row['hidden_sizes']}"
        ident = [row["dataset"], model, row["head"]]
        if "error" in row:
            lines.append("| " + " | ".join(ident + [f"error: {row['error']}"] + [""] * (len(head) - 4)) + " |")
            continue
        values = [f"{row['metrics'][c]:.4f}" for c in COLUMNS]
        extra = [f"{row['epochs_run']} ({row.get('best_epoch')})", f"{row['train_seconds']:.1f}",
                 f"{row['peak_rss_mib']:.0f}", f"{row['train_rss_growth_mib']:.0f}",
                 json.dumps({k: v for k, v in row.get("settings", {}).items() if k != "random_state"})]  # fmt: skip
        lines.append("| " + " | ".join(ident + values + extra) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(
        parser,
        datasets=DATASETS,
        quick="bibtex only (unless --datasets), 3 epochs",
        timeout=600.0,
        timeout_per="configuration",
        out=True,
        append="keep the rows already in baselines.json (rows of the same configuration are replaced)",
    )
    parser.add_argument("--heads", default=None, help="comma-separated (default: every registered head)")
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated from {', '.join(MODELS)} (default: {','.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an XCClassifier setting for every run (VALUE as JSON), e.g. --set lr=0.0005; repeatable",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(run_one(json.loads(args.worker))))
        return 0

    use_shared_datasets()  # the workers inherit it
    from sparsexc.heads import list_heads

    datasets = dataset_list(args.datasets, ["bibtex"] if args.quick else DATASETS)
    heads = args.heads.split(",") if args.heads else sorted(list_heads())
    models = args.models.split(",")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    settings = dict(QUICK_SETTINGS if args.quick else TRAIN_SETTINGS)
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE; got {item!r}")
        try:
            settings[key.strip()] = json.loads(text)
        except ValueError:
            settings[key.strip()] = text

    json_path = args.out / "baselines.json"
    previous: list[dict[str, Any]] = []
    if args.append and json_path.is_file():
        previous = read_json(json_path)["rows"]
    rows: list[dict[str, Any]] = []
    started = Stopwatch()
    command = command_line(__file__, argv)
    for dataset in datasets:
        for model in models:
            for head in heads:
                config = {"dataset": dataset, "model": model, "head": head,
                          "hidden_sizes": None if MODELS[model] is None else list(MODELS[model]),
                          "settings": settings}  # fmt: skip
                row = {**_run_in_subprocess(config, args.timeout), "settings": settings}
                rows.append(row)
                summary = row.get("error") or (
                    f"P@1 {row['metrics']['P@1']:.4f}  {row['train_seconds']:.1f} s  {row['peak_rss_mib']:.0f} MiB"
                )
                print(f"{dataset:12s} {model:7s} {head:18s} {summary}", file=sys.stderr, flush=True)
                # written after every configuration, so a long run that is stopped keeps what it measured
                _write_report(args.out, _merge(previous, rows), command, started)
    print(markdown_table(_merge(previous, rows)))
    return 0 if all("error" not in row for row in rows) else 1


def _merge(previous: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # new rows replace earlier rows of the same (dataset, model, head); order: datasets, models, heads
    merged = {(r["dataset"], r["model"], r["head"]): r for r in previous}
    merged.update({(r["dataset"], r["model"], r["head"]): r for r in rows})
    order = {name: i for i, name in enumerate(DATASETS)}
    return sorted(
        merged.values(), key=lambda r: (order.get(r["dataset"], len(order)), r["dataset"], r["model"], r["head"])
    )


def _write_report(out: Path, rows: list[dict[str, Any]], command: str, started: Stopwatch) -> None:
    machine = environment()
    report = {
        "benchmark": "baselines",
        "date": utc_now(),
        "command": command,
        "models": {m: ("the estimator's default" if v is None else list(v)) for m, v in MODELS.items()},
        "machine": machine,
        "seconds_this_invocation": round(started.wall, 1),
        "rows": rows,
    }
    settings_seen = sorted({json.dumps(r.get("settings", {}), sort_keys=True) for r in rows})
    md = (
        f"{page_header('Baselines', machine, report['date'], command)}\n\n"
        f"Models: {json.dumps(report['models'])} (hidden sizes); settings per row in the JSON (the estimator's "
        f"defaults except those listed: {'; '.join(settings_seen)}). Metrics on the test split "
        f"(PSP with inverse propensities of the training labels, A=0.55, B=1.5; micro-F1 of the predicted "
        f"label sets). Peak RSS is the training process's high-water mark at the end of training; "
        f"'train RSS +' is how much training raised it above the high-water mark after loading the data. "
        f"The machine was shared with other jobs while measured.\n\n"
        f"{markdown_table(rows)}\n"
    )
    write_results(out, "baselines", report, md)


if __name__ == "__main__":
    sys.exit(main())
