"""Crafted (damaged or hostile) model folders: every one must give one clean ModelFormatError, quickly and
without a large allocation.

Over a hundred folders are derived, by seeded choices, from two small saved models: huge / negative / ill-typed
sizes, deep nesting, unknown devices, missing fields, NaN / infinite settings, weights and thresholds,
truncated files, safetensors headers that lie about sizes, checksum mismatches, extra / missing / renamed
tensors, dtype and shape mismatches, pickle payloads. All are loaded in one child process whose address
space is capped at 3 GB (``RLIMIT_AS``): an allocation sized by the config would fail there (and be counted
as "other"), and the child reports its peak resident memory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from sparsexc import XCClassifier

SEED = 20261202
MAX_SECONDS = 5.0  # per load (a few ms expected; generous for loaded CI machines)
MAX_RSS_GROWTH_MB = 300  # peak RSS of the child after the loads, minus before them

Case = tuple[str, str, Callable[[Path], None]]  # name, base model, edit of the folder


# -- editing helpers ------------------------------------------------------------------------------------------
def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder: Path, config: dict) -> None:
    (folder / "config.json").write_text(json.dumps(config))


def _edit(path: tuple, value=None, delete: bool = False) -> Callable[[Path], None]:
    """Set (or delete) the config field at ``path`` (keys / list indices)."""

    def edit(folder: Path) -> None:
        config = _config(folder)
        node = config
        for key in path[:-1]:
            node = node[key]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(value)
        _write_config(folder, config)

    return edit


def _edits(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for e in edits:
            e(folder)

    return edit


def _config_text(text: str | bytes) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (folder / "config.json").write_bytes(data)

    return edit


def _replace_in_config(field_json: str, replacement: str) -> Callable[[Path], None]:
    """Replace the JSON text of one field (after re-serialising compactly) by raw text."""

    def edit(folder: Path) -> None:
        text = json.dumps(_config(folder), separators=(",", ":"))
        assert field_json in text, field_json
        (folder / "config.json").write_text(text.replace(field_json, replacement, 1))

    return edit


def _reseal(folder: Path) -> None:
    """Record the current weights' SHA-256 in the config, so the checks behind the checksum are reached."""
    config = _config(folder)
    config["weights_sha256"] = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    _write_config(folder, config)


def _tensors(edit_tensors: Callable[[dict], None]) -> Callable[[Path], None]:
    """Rewrite the weights as a valid safetensors file of edited tensors (checksum updated)."""

    def edit(folder: Path) -> None:
        tensors = dict(load_safetensors((folder / "model.safetensors").read_bytes()))
        edit_tensors(tensors)
        (folder / "model.safetensors").write_bytes(save_safetensors(tensors))
        _reseal(folder)

    return edit


def _split(blob: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _header(edit_header: Callable[[dict], None], reseal: bool = True) -> Callable[[Path], None]:
    """Edit the safetensors header (JSON) and keep the data bytes as they are."""

    def edit(folder: Path) -> None:
        header, data = _split((folder / "model.safetensors").read_bytes())
        edit_header(header)
        text = json.dumps(header).encode()
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data)
        if reseal:
            _reseal(folder)

    return edit


def _weights_bytes(make: Callable[[bytes], bytes], reseal: bool = True) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "model.safetensors"
        path.write_bytes(make(path.read_bytes()))
        if reseal:
            _reseal(folder)

    return edit


def _first_float(header: dict) -> str:
    return min(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")


# -- the crafted cases ----------------------------------------------------------------------------------------
def _config_cases(rng: np.random.Generator, base: str, hidden: bool) -> list[Case]:
    cases: list[Case] = []
    sizes = [
        ("n_features",),
        ("n_labels",),
        ("model", "encoder", "n_features"),
        ("model", "head", "n_labels"),
        ("model", "head", "in_dim"),
    ]
    if hidden:
        sizes += [("params", "hidden_sizes", 0), ("model", "encoder", "params", "hidden_sizes", 0)]
    bad_sizes = [
        40_000_000,
        10**12,
        2**31,
        2**63,
        -1,
        0,
        -(10**12),
        "40",
        4.5,
        True,
        None,
        [3],
        {"a": 1},
        int(rng.integers(2**31, 2**62)),
    ]
    for path in sizes:
        for value in bad_sizes:
            cases.append((f"{base}: {'.'.join(map(str, path))}={value!r}", base, _edit(path, value)))
    # sizes changed consistently everywhere in the config, but not in the weights
    for value in (40_000_000, int(rng.integers(10**6, 10**9))):
        both = [_edit(("n_features",), value), _edit(("model", "encoder", "n_features"), value)]
        if not hidden:
            both.append(_edit(("model", "head", "in_dim"), value))
        cases.append((f"{base}: n_features={value} everywhere", base, _edits(*both)))
        cases.append(
            (
                f"{base}: n_labels={value} everywhere",
                base,
                _edits(_edit(("n_labels",), value), _edit(("model", "head", "n_labels"), value)),
            )
        )
    for device in ("meta", "xyz", 5, "cuda:x", "CUDA", "", None, ["cpu"], "cpu ", "cuda:-1"):
        cases.append((f"{base}: device={device!r}", base, _edit(("params", "device"), device)))
    for path in [
        ("params",),
        ("model",),
        ("model", "encoder"),
        ("model", "head"),
        ("model", "head", "name"),
        ("model", "head", "in_dim"),
        ("model", "head", "n_labels"),
        ("model", "encoder", "n_features"),
        ("model", "encoder", "params"),
        ("n_features",),
        ("n_labels",),
        ("format_version",),
        ("estimator",),
    ]:
        cases.append((f"{base}: missing {'.'.join(path)}", base, _edit(path, delete=True)))
    nan, inf = float("nan"), float("inf")
    for path, value in [
        (("params", "lr"), nan),
        (("params", "weight_decay"), inf),
        (("params", "dropout"), -inf),
        (("params", "grad_clip"), nan),
        (("params", "validation_fraction"), nan),
        (("params", "head_params"), {"threshold": nan}),
        (("model", "head", "params", "threshold"), nan),
        (("model", "head", "tuned", "threshold"), inf),
        (("tuned", "threshold"), nan),
        (("model", "encoder", "params", "dropout"), nan),
    ]:
        cases.append((f"{base}: {'.'.join(path)}={value!r}", base, _edit(path, value)))
    for path, value in [
        (("params", "head"), 5),
        (("params", "head"), "nohead"),
        (("model", "head", "name"), "nohead"),
        (("model", "head", "name"), 7),
        (("model", "head", "params"), {"bogus": 1}),
        (("model", "head", "params"), {"threshold": "high"}),
        (("model", "head", "params"), []),
        (("model", "head", "tuned"), {"threshold": "x"}),
        (("model", "head", "tuned"), {"bogus": 0.5}),
        (("params", "bogus"), 1),
        (("params", "epochs"), "ten"),
        (("params", "hidden_sizes"), "16"),
        (("params", "activation"), "swish"),
        (("model", "encoder", "params", "activation"), "swish"),
        (("model", "encoder", "params"), {"bogus": 1}),
        (("history",), "x"),
        (("history",), [1]),
        (("best_epoch",), -1),
        (("best_epoch",), "3"),
        (("tuned",), []),
        (("format_version",), "1"),
        (("format_version",), 2),
        (("format_version",), 1.0),
        (("estimator",), "SparseVAE"),
        (("model", "extra"), {}),
        (("params",), []),
        (("model", "head"), "softmax"),
        (("weights_sha256",), "abc"),
        (("weights_sha256",), 5),
        (("params", "hidden_sizes"), [7] if hidden else [8]),
        (("params", "head"), "sparsemax"),
    ]:
        cases.append((f"{base}: {'.'.join(path)}={value!r}", base, _edit(path, value)))
    deep = int(rng.integers(100_000, 200_000))
    cases += [
        (
            f"{base}: history nested {deep} deep",
            base,
            _replace_in_config('"history":[', '"history":' + "[" * deep + "]" * deep + ',"x":['),
        ),
        (
            f"{base}: head params nested 65 deep",
            base,
            _edit(("model", "head", "params"), json.loads('{"a":' * 65 + "1" + "}" * 65)),
        ),
        (f"{base}: whole config nested {deep} deep", base, _config_text("[" * deep + "]" * deep)),
        (f"{base}: empty config", base, _config_text("")),
        (f"{base}: config null", base, _config_text("null")),
        (f"{base}: config list", base, _config_text("[]")),
        (f"{base}: config string", base, _config_text('"model"')),
        (f"{base}: config cut", base, _config_text('{"format_version": 1, "params": {')),
        (f"{base}: config not UTF-8", base, _config_text(b"\xff\xfe{}")),
        (f"{base}: 5000-digit integer", base, _replace_in_config('"n_labels":', '"n_labels":' + "9" * 5000 + ',"x":')),
        (f"{base}: NaN literal for n_labels", base, _replace_in_config('"n_labels":', '"n_labels":NaN,"x":')),
    ]
    return cases


def _weights_cases(rng: np.random.Generator, base: str, float_names: list[str]) -> list[Case]:
    cases: list[Case] = []

    def poison(name: str, value: float, index: int) -> Callable[[dict], None]:
        def edit(tensors: dict) -> None:
            t = tensors[name].clone()
            t.view(-1)[index % t.numel()] = value
            tensors[name] = t

        return edit

    for name in float_names:
        for value in (float("nan"), float("inf"), float("-inf")):
            where = int(rng.integers(1 << 30))
            cases.append((f"{base}: {value} in {name}", base, _tensors(poison(name, value, where))))

    def drop(tensors: dict) -> None:
        del tensors[sorted(tensors)[0]]

    def extra(tensors: dict) -> None:
        tensors["head.extra"] = torch.zeros(3)

    def rename(tensors: dict) -> None:
        name = sorted(tensors)[0]
        tensors[name + "_x"] = tensors.pop(name)

    def to_double(tensors: dict) -> None:
        tensors[float_names[0]] = tensors[float_names[0]].double()

    def to_int(tensors: dict) -> None:
        tensors[float_names[0]] = tensors[float_names[0]].long()

    def transpose(tensors: dict) -> None:
        two_d = [k for k in float_names if tensors[k].dim() == 2]
        tensors[two_d[0]] = tensors[two_d[0]].t().contiguous()

    def grow(tensors: dict) -> None:
        tensors[float_names[0]] = torch.cat([tensors[float_names[0]], tensors[float_names[0]]])

    for fn in (drop, extra, rename, to_double, to_int, transpose, grow):
        cases.append((f"{base}: tensors {fn.__name__}", base, _tensors(fn)))

    def cut(at: float) -> Callable[[bytes], bytes]:  # a byte count, negative from the end, or a fraction
        return lambda blob: blob[: int(at * len(blob)) if isinstance(at, float) else at]

    for at in [0, 4, 8, 9, -1, *(float(x) for x in rng.uniform(0.01, 0.99, size=4))]:
        cases.append((f"{base}: truncated at {at}", base, _weights_bytes(cut(at))))
    cases.append((f"{base}: padded", base, _weights_bytes(lambda b: b + b"\0" * 16)))

    def first(edit: Callable[[dict], None]) -> Callable[[dict], None]:
        return lambda header: edit(header[_first_float(header)])

    header_edits: list[tuple[str, Callable[[dict], None]]] = [
        ("shape doubled, same bytes", first(lambda e: e.update(shape=[2 * e["shape"][0], *e["shape"][1:]]))),
        (
            "huge shape and offsets",
            first(
                lambda e: e.update(
                    shape=[40_000_000, 16], data_offsets=[e["data_offsets"][0], e["data_offsets"][0] + 40_000_000 * 64]
                )
            ),
        ),
        ("10^12 shape", first(lambda e: e.update(shape=[10**12, 10**6]))),
        (
            "offsets past the end",
            first(lambda e: e.update(data_offsets=[e["data_offsets"][0] + 10**9, e["data_offsets"][1] + 10**9])),
        ),
        ("offsets reversed", first(lambda e: e.update(data_offsets=e["data_offsets"][::-1]))),
        (
            "offsets overlap",
            lambda h: [
                e.update(data_offsets=[0, e["data_offsets"][1] - e["data_offsets"][0]])
                for k, e in h.items()
                if k != "__metadata__"
            ],
        ),
        ("unknown dtype", first(lambda e: e.update(dtype="F8_E4M3"))),
        ("dtype not a string", first(lambda e: e.update(dtype=4))),
        ("negative shape", first(lambda e: e.update(shape=[-1, *e["shape"][1:]]))),
        ("boolean shape", first(lambda e: e.update(shape=[True]))),
        ("rank 9", first(lambda e: e.update(shape=[1] * 9))),
        ("offsets of length 3", first(lambda e: e.update(data_offsets=[*e["data_offsets"], 0]))),
        ("entry without shape", first(lambda e: e.pop("shape"))),
        ("entry is a list", lambda h: h.update({_first_float(h): [1, 2]})),
        ("metadata not strings", lambda h: h.update(__metadata__={"format": 1})),
        (
            "float dtype F16 same bytes",
            first(lambda e: e.update(dtype="F16", shape=[2 * e["shape"][0], *e["shape"][1:]])),
        ),
    ]
    for label, edit in header_edits:
        cases.append((f"{base}: header {label}", base, _header(edit)))

    def raw_header(text: bytes, length: int | None = None) -> Callable[[bytes], bytes]:
        return lambda blob: struct.pack("<Q", len(text) if length is None else length) + text + _split(blob)[1]

    deep = int(rng.integers(100_000, 200_000))
    cases += [
        (f"{base}: header length past the end", base, _weights_bytes(lambda b: struct.pack("<Q", len(b)) + b[8:])),
        (f"{base}: header length 2^63", base, _weights_bytes(lambda b: struct.pack("<Q", 2**63) + b[8:])),
        (f"{base}: header not JSON", base, _weights_bytes(raw_header(b"{not json}"))),
        (f"{base}: header a list", base, _weights_bytes(raw_header(b"[1, 2]  "))),
        (f"{base}: header not UTF-8", base, _weights_bytes(raw_header(b'{"\xff": 1}'))),
        (
            f"{base}: header nested {deep} deep",
            base,
            _weights_bytes(raw_header(b'{"a":' + b"[" * deep + b"]" * deep + b"}")),
        ),
        (f"{base}: pickle payload", base, _weights_bytes(lambda b: pickle.dumps({"w": [1, 2, 3]}))),
        (f"{base}: torch.save payload", base, _weights_bytes(lambda b: _torch_save_bytes())),
        (f"{base}: empty weights", base, _weights_bytes(lambda b: b"")),
        # the checksum: weights changed without updating it, and a well-formed but wrong one
        (
            f"{base}: a flipped data byte",
            base,
            _weights_bytes(lambda b: b[:-3] + bytes([b[-3] ^ 1]) + b[-2:], reseal=False),
        ),
        (f"{base}: sha of other content", base, _edit(("weights_sha256",), hashlib.sha256(b"x").hexdigest())),
        (f"{base}: config.json missing", base, lambda f: (f / "config.json").unlink()),
        (f"{base}: weights missing", base, lambda f: (f / "model.safetensors").unlink()),
        (f"{base}: config.json a folder", base, lambda f: ((f / "config.json").unlink(), (f / "config.json").mkdir())),
        (
            f"{base}: weights a folder",
            base,
            lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors").mkdir()),
        ),
        (f"{base}: config of 65 MB", base, lambda f: os.truncate(f / "config.json", 65 * 2**20)),
        (f"{base}: config.json a FIFO", base, lambda f: ((f / "config.json").unlink(), os.mkfifo(f / "config.json"))),
        (
            f"{base}: weights a FIFO",
            base,
            lambda f: ((f / "model.safetensors").unlink(), os.mkfifo(f / "model.safetensors")),
        ),
        (f"{base}: 4 GB of weights, not the config's", base, _sparse_weights(2**30)),
    ]
    return cases


def _sparse_weights(n: int) -> Callable[[Path], None]:
    """A consistent safetensors file holding one float32 tensor of n values, as a sparse file (no disk
    blocks): loading it must fail on the config / header comparison, before the data is read."""

    def edit(folder: Path) -> None:
        text = json.dumps({"big": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
        path = folder / "model.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text)
        os.truncate(path, 8 + len(text) + 4 * n)
        config = _config(folder)
        del config["weights_sha256"]  # hashing 4 GB would take long; the folder must fail before anyway
        _write_config(folder, config)

    return edit


def _torch_save_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bases(data, tmp_path_factory):
    """Two small saved models: an MLP with a sigmoid head, a linear softmax model with a fixed threshold."""
    X, Y = data
    root = tmp_path_factory.mktemp("bases")
    models = {
        "mlp": XCClassifier(head="sigmoid", hidden_sizes=(16,), epochs=1, batch_size=64, device="cpu"),
        "linear": XCClassifier(
            head="softmax", head_params={"threshold": 0.5}, hidden_sizes=(), epochs=1, batch_size=64, device="cpu"
        ),
    }
    for name, model in models.items():
        model.fit(X, Y).save(root / name)
    return root


_CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from sparsexc import XCClassifier
from sparsexc.estimator.serialization import ModelFormatError
jobs = json.loads(open(sys.argv[1]).read())
for base in jobs["bases"]:
    XCClassifier.load(base)  # warm up (imports, first model): the growth below is the crafted loads' own
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = []
for name, folder in jobs["cases"]:
    start = time.perf_counter()
    try:
        XCClassifier.load(folder)
        outcome, message = "loaded", ""
    except ModelFormatError as exc:
        outcome, message = "clean", str(exc)
    except BaseException as exc:
        outcome, message = type(exc).__name__, str(exc)[:300]
    results.append([name, folder, outcome, message, time.perf_counter() - start])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"results": results, "rss_growth_mb": (after - before) / 1024}))
"""


def _all_cases(bases: Path) -> list[Case]:
    rng = np.random.default_rng(SEED)
    cases: list[Case] = []
    for base, hidden in (("mlp", True), ("linear", False)):
        header, _ = _split((bases / base / "model.safetensors").read_bytes())
        floats = sorted(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
        cases += _config_cases(rng, base, hidden) + _weights_cases(rng, base, floats)
    return cases


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS (resource module) is POSIX only")
def test_crafted_model_folders_give_one_clean_error_quickly_without_large_allocations(bases, tmp_path):
    cases = _all_cases(bases)
    assert len(cases) >= 100
    jobs = []
    for i, (name, base, edit) in enumerate(cases):
        folder = tmp_path / f"case{i:03d}"
        shutil.copytree(bases / base, folder)
        edit(folder)
        jobs.append([name, str(folder)])
    (tmp_path / "jobs.json").write_text(
        json.dumps({"bases": [str(bases / b) for b in ("mlp", "linear")], "cases": jobs})
    )
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "jobs.json")], capture_output=True, text=True, timeout=600
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    results = report["results"]
    counts = {"tried": len(results), "clean": 0, "other": 0}
    problems = []
    for name, folder, outcome, message, seconds in results:
        named = folder in message and ("config.json" in message or "model.safetensors" in message)
        if outcome == "clean" and named and seconds < MAX_SECONDS:
            counts["clean"] += 1
        else:
            counts["other"] += 1
            problems.append(f"{name}: {outcome} after {seconds:.2f} s: {message[:200]}")
    print(f"crafted model folders: {counts}; peak RSS growth {report['rss_growth_mb']:.0f} MB")
    assert not problems, "\n".join(problems)
    assert report["rss_growth_mb"] < MAX_RSS_GROWTH_MB


def test_load_checks_its_device_argument_and_falls_back_from_an_absent_saved_device(bases, tmp_path):
    for device in ("meta", "xyz", 5, "cuda:x"):
        with pytest.raises(ValueError, match=r"device=.* is not a device; use 'auto', 'cpu', 'mps', 'cuda'"):
            XCClassifier.load(bases / "mlp", device=device)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            XCClassifier.load(bases / "mlp", device="cuda")
        folder = tmp_path / "m"
        shutil.copytree(bases / "mlp", folder)
        _edit(("params", "device"), "cuda:3")(folder)  # saved on a GPU machine: loads on the CPU here
        loaded = XCClassifier.load(folder)
        assert loaded.device == "cuda:3" and loaded.model_.device == torch.device("cpu")


def test_the_bases_and_harmless_edits_load(bases, tmp_path):
    """The harness can tell a clean load from an error: untouched folders and harmless edits load."""
    for base in ("mlp", "linear"):
        folder = tmp_path / base
        shutil.copytree(bases / base, folder)
        _edit(("history",), [{"epoch": 1, "val_P@1": float("nan")}])(folder)  # informational: not checked
        loaded = XCClassifier.load(folder)
        assert loaded.n_labels_ == 8 and loaded.history_[0]["epoch"] == 1
        _edit(("weights_sha256",), delete=True)(folder)  # folders written before the checksum was recorded
        XCClassifier.load(folder)
