"""benchmarks/_harness.py: the stopwatch, the results writer, the common flags, and that the scripts use them
(no script keeps its own results folder, clock or writer, and they import sparsexc's public API only)."""

from __future__ import annotations

import argparse
import ast
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import _harness as h  # benchmarks/ is on sys.path (conftest.py)
import pytest

BENCHMARKS = Path(h.__file__).resolve().parent
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "_harness.py")

# What the scripts import from sparsexc beyond the packages' __all__ (a module below a package, or a name a
# package does not export): (script, module) -> why the benchmark needs it. None today; a new entry needs a reason
# that no public name can serve (benchmarks/README.md).
PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}
SRC = BENCHMARKS.parent / "src" / "sparsexc"
PACKAGES = {p.parent.name for p in SRC.glob("*/__init__.py")}


# -- timing --------------------------------------------------------------------------------------------------


def test_timed_returns_cpu_and_wall():
    with h.timed() as idle:
        time.sleep(0.2)
    assert idle.wall >= 0.19 and 0.0 <= idle.cpu < 0.15  # sleeping takes wall time, not CPU time
    with h.timed() as busy:
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            pass
    assert busy.wall >= 0.19 and busy.cpu > 0.0
    frozen = (busy.cpu, busy.wall)
    time.sleep(0.02)
    assert (busy.cpu, busy.wall) == frozen  # stopped at the end of the block


def test_stopwatch_reads_while_running_and_restarts():
    watch = h.Stopwatch()
    time.sleep(0.05)
    first = watch.wall
    time.sleep(0.05)
    assert watch.wall > first >= 0.04
    watch.restart()
    assert watch.wall < first


def test_children_stopwatch_counts_the_child_process_cpu():
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    with h.timed(children=True) as child, h.timed() as parent:
        subprocess.run([sys.executable, "-c", busy], check=True)
    assert child.cpu >= 0.25 > parent.cpu


def test_repeat_times_each_call_and_syncs_around_it():
    calls, syncs = [], []
    result, watches = h.repeat(lambda: calls.append(1) or len(calls), 3, sync=lambda: syncs.append(1))
    assert result == 3 and len(calls) == len(watches) == 3 and len(syncs) == 6
    assert all(w.wall >= 0.0 and w.cpu >= 0.0 for w in watches)


# -- what a result depends on --------------------------------------------------------------------------------


def test_environment_is_the_librarys_record():
    import sparsexc

    env = h.environment(extra_packages=("numpy",))
    assert set(env) == set(sparsexc.environment_info())
    assert env["cpu_count"] >= 1 and env["versions"]["numpy"] and "load_average" in env


def test_command_line_names_the_script_and_its_arguments():
    assert h.command_line("/x/benchmarks/io_speed.py", ["--quick", "--out", "d"]) == (
        "python benchmarks/io_speed.py --quick --out d"
    )


def test_git_commit_is_the_checkouts_head():
    head = subprocess.run(
        ["git", "-C", str(BENCHMARKS), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    commit = h.git_commit()
    if not head:  # not a git checkout (e.g. an unpacked sdist): nothing to record
        assert commit is None
        return
    assert commit is not None and commit.split("+")[0] == head and commit[len(head) :] in ("", "+dirty")


def test_use_shared_datasets_sets_the_variable_only_when_unset(monkeypatch, tmp_path):
    monkeypatch.setattr(h, "SHARED_DATASETS", tmp_path)
    monkeypatch.delenv("SPARSEXC_DATA", raising=False)
    h.use_shared_datasets()
    assert os.environ["SPARSEXC_DATA"] == str(tmp_path)
    monkeypatch.setenv("SPARSEXC_DATA", "elsewhere")
    h.use_shared_datasets()
    assert os.environ["SPARSEXC_DATA"] == "elsewhere"


# -- writing results ------------------------------------------------------------------------------------------


def test_write_results_writes_both_files(tmp_path):
    import numpy as np

    result = {"rows": [1, 2], "value": np.float32(0.5), "array": np.arange(3)}
    json_path, md_path = h.write_results(tmp_path / "new", "bench", result, "# page")
    assert (json_path, md_path) == (tmp_path / "new" / "bench.json", tmp_path / "new" / "bench.md")
    assert json.loads(json_path.read_text()) == {"rows": [1, 2], "value": 0.5, "array": [0, 1, 2]}
    assert json_path.read_text().endswith("}\n") and md_path.read_text() == "# page\n"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["bench.json", "bench.md"]  # no temporaries
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(json_path.stat().st_mode) == 0o666 & ~umask


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / "bench.json"
    h.write_json(path, {"old": True})
    with pytest.raises(TypeError):
        h.write_json(path, {"new": object()})  # fails while serialising: the old file stays
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_read_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "a": 1,\n}\n')
    with pytest.raises(ValueError, match=r"broken\.json: line 3"):
        h.read_json(path)


def test_page_header_says_when_how_and_on_what():
    env = h.environment()
    text = h.page_header("Speed", env, "2026-01-31T12:00:00+00:00", "python benchmarks/x.py --quick")
    assert text.startswith("# Speed\n\n2026-01-31T12:00:00+00:00, command `python benchmarks/x.py --quick`")
    assert f"Machine: {env['processor']}, {env['cpu_count']} CPUs" in text and "load average" in text
    assert not text.endswith("\n")


# -- flags ----------------------------------------------------------------------------------------------------


def test_common_flags_parse():
    parser = h.add_common_flags(
        argparse.ArgumentParser(),
        out=True,
        quick="tiny",
        timeout=60.0,
        append="keep rows",
        datasets=("bibtex", "debtags"),
    )
    args = parser.parse_args([])
    assert (args.out, args.quick, args.timeout, args.append, args.datasets) == (h.RESULTS, False, 60.0, False, None)
    args = parser.parse_args(["--out", "elsewhere", "--quick", "--timeout", "5", "--append", "--datasets", "a,b"])
    assert (args.out, args.quick, args.timeout, args.append) == (Path("elsewhere"), True, 5.0, True)
    assert h.dataset_list(args.datasets, ("bibtex",)) == ["a", "b"]
    assert h.dataset_list(None, ("bibtex", "debtags")) == ["bibtex", "debtags"]
    assert "bibtex,debtags" in parser.format_help()


def test_only_the_asked_flags_are_added():
    parser = h.add_common_flags(argparse.ArgumentParser(), quick="tiny")
    assert parser.parse_args(["--quick"]).quick
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x"])


# -- the scripts use the harness and the public API ------------------------------------------------------------


def _exported(package: str) -> set[str]:
    """The names in ``__all__`` of ``package`` (``sparsexc`` or ``sparsexc.<name>``)."""
    init = SRC.joinpath(*package.split(".")[1:], "__init__.py")
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def _private_imports(path: Path) -> set[str]:
    """What ``path`` imports from sparsexc that is not a name in a package's ``__all__``: the module imported
    from (a module that is not a package) or ``package.name`` (a name the package does not export)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sparsexc.") and not _is_package(a.name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sparsexc":
            if not _is_package(node.module):
                found.add(node.module)
            else:
                found.update(f"{node.module}.{a.name}" for a in node.names if a.name not in _exported(node.module))
    return found


def _private_uses(path: Path) -> set[str]:
    """The private members of sparsexc objects that ``path`` reaches: ``Class._name`` for a method named
    ``_name`` defined in a subclass of a class imported from sparsexc (overriding a private hook), and
    ``._name`` for an attribute ``_name`` read off anything but ``self`` / ``cls`` when sparsexc defines a
    private function, method or attribute of that name (``clf._settings()``)."""
    tree = ast.parse(path.read_text())
    imported = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sparsexc"
        for a in node.names
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) in imported for b in node.bases):
            found.update(
                f"{node.name}.{f.name}"
                for f in node.body
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_private(f.name)
            )
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in _SPARSEXC_PRIVATE_NAMES
            and getattr(node.value, "id", None) not in ("self", "cls")
        ):
            found.add(f".{node.attr}")
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_names(root: Path) -> set[str]:
    """The private names sparsexc defines: functions, methods, classes and attributes set on objects."""
    names = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {n for n in names if _is_private(n)}


_SPARSEXC_PRIVATE_NAMES = _private_names(SRC)


def _is_package(module: str) -> bool:
    # sparsexc itself, or a package (a folder with __init__) directly below it
    parts = module.split(".")
    return len(parts) == 1 or (len(parts) == 2 and parts[1] in PACKAGES)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_scripts_import_only_the_public_api(script):
    assert _private_imports(script) == {m for s, m in PRIVATE_IMPORTS if s == script.stem}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_scripts_reach_no_private_member_of_sparsexc(script):
    assert _private_uses(script) == set()


def test_the_public_api_check_finds_private_imports_and_members(tmp_path):
    script = tmp_path / "fake_benchmark.py"
    script.write_text(
        "import sparsexc.train.optim\n"
        "from sparsexc.samplers import TreeSampler, _pca\n"  # _pca: a module below a package
        "from sparsexc.heads import tune_masks\n"  # public
        "from sparsexc.datasets.synthetic import latent_hierarchy\n"  # public, but through its module
        "from sparsexc.train import Trainer\n"
        "from sparsexc import XCClassifier\n"
        "class Curve(Trainer):\n"
        "    def _write_log(self, path):\n"  # a private hook of Trainer
        "        self._mine = 1\n"
        "    def fit(self, X, Y):\n"
        "        return super().fit(X, Y)\n"
        "settings = XCClassifier()._settings()\n"
        "mine = Curve(None)._benchmark_own_attribute\n"  # not a name sparsexc defines
    )
    assert _private_imports(script) == {
        "sparsexc.train.optim",
        "sparsexc.samplers._pca",
        "sparsexc.datasets.synthetic",
    }
    assert _private_uses(script) == {"Curve._write_log", "._settings"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_scripts_keep_no_copy_of_the_harness(script):
    text = script.read_text()
    copies = ["Path(__file__)", "perf_counter", "getloadavg", "datetime", "environment_info", "cpu_model"]
    assert [c for c in copies if c in text] == []
    assert "from _harness import" in text
