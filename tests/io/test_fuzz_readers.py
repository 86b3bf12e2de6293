"""Fuzzing every reader and the CLI with a seeded mutation corpus of real files (tests/io/_fuzz_corpus.py).

For each format (XC text, svmlight, Mulan ARFF, MEKA ARFF, .mat) ``N`` mutated variants (200 in CI; 2,000
with ``--slow``) are read in child processes (tests/io/_fuzz_child.py) whose address space is limited to
3 GB, so that a segmentation fault or an unbounded allocation is a test failure, not a dead test run.
Every outcome must be data that pass the checks below or a :class:`DataFormatError` naming the file:

* no other exception, no crash, peak RSS under 1.5 GB;
* accepted data: CSR float32, consistent index arrays, finite values, sorted unique indices, 0/1 labels;
* a mutation that must be rejected (non-finite or float32-overflowing value, id >= 2**31, ``_`` in a
  number, empty file, truncated gzip, corrupt sparse arrays, complex values) is rejected;
* a mutation that must not change the data (CRLF line ends, a gzipped copy) reads as its seed does.

The counts (tried / clean error / accepted / other) are printed per format (``pytest -s`` shows them).
``sparsexc datasets convert`` and ``sparsexc train --epochs 1`` run on some variants through
``sparsexc.cli.main`` in a child too: exit code 0, or 1/2 with one ``sparsexc: error:`` line naming the file.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _fuzz_corpus as corpus
import pytest

CHILD = Path(__file__).with_name("_fuzz_child.py")
LIMIT_BYTES = 3 << 30  # the children's address space
MAX_RSS_KB = 1536 << 10  # 1.5 GB peak resident memory per child
CI_PER_FORMAT = 200
SLOW_PER_FORMAT = 2000
# mutations of one data line: a text format's error must name the line
_LINE_KINDS = ("huge_id", "bad_value", "underscore")
_READER = {"xc": "xc", "svmlight": "svmlight", "arff_mulan": "arff", "arff_meka": "arff", "mat": "mat"}


def _run_chunk(jobs: list[dict], work: Path, tag: str) -> tuple[dict[str, dict], list[int]]:
    """Run ``jobs`` in child processes; a child that dies marks its current job ``crash`` and a new child
    goes on with the rest. Returns the results by id and each child's peak RSS (kB)."""
    results: dict[str, dict] = {}
    rss: list[int] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(CHILD.parent)] + [p for p in [env.get("PYTHONPATH")] if p])
    rest, attempt = jobs, 0
    while rest:
        attempt += 1
        jobs_file, out_file = work / f"{tag}-{attempt}.json", work / f"{tag}-{attempt}.jsonl"
        jobs_file.write_text(json.dumps({"limit_bytes": LIMIT_BYTES, "jobs": rest}))
        proc = subprocess.run(
            [sys.executable, str(CHILD), str(jobs_file), str(out_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        lines = [json.loads(line) for line in out_file.read_text().splitlines()] if out_file.exists() else []
        done = {r["id"]: r for r in lines if "id" in r}
        rss += [r["maxrss_kb"] for r in lines if "maxrss_kb" in r]
        results.update(done)
        if proc.returncode == 0 and len(done) == len(rest):
            break
        crashed = next((j for j in rest if j["id"] not in done), None)
        assert crashed is not None, f"child exit {proc.returncode} after all its jobs: {proc.stderr[-400:]}"
        results[crashed["id"]] = {"status": "crash", "error": f"child exit {proc.returncode}: {proc.stderr[-400:]}"}
        rest = rest[rest.index(crashed) + 1 :]
    return results, rss


def _run_all(jobs: list[dict], work: Path) -> tuple[dict[str, dict], list[int]]:
    """Two children at a time (the CI machine has two cores)."""
    halves = [jobs[0::2], jobs[1::2]]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda k: _run_chunk(halves[k], work, f"chunk{k}"), range(2)))
    return {**done[0][0], **done[1][0]}, done[0][1] + done[1][1]


@pytest.fixture(scope="module")
def fuzz_run(request, shared_datasets_if_present, tmp_path_factory):
    """Write every variant, read them all in children; ``(variants, results, peak RSS list)``. Without
    ../shared/datasets the seeds are the bundled Bibtex's alone."""
    per_format = SLOW_PER_FORMAT if request.config.getoption("--slow", default=False) else CI_PER_FORMAT
    seeds = corpus.build_seeds(shared_datasets_if_present)
    work = tmp_path_factory.mktemp("fuzz")
    jobs, variants = [], {}
    for fmt, fmt_seeds in seeds.items():
        for k, seed in enumerate(fmt_seeds):
            seed_dir = work / f"seed-{fmt}-{k}"
            seed_dir.mkdir()
            path = seed_dir / (seed.name + seed.suffix)
            path.write_bytes(seed.data)
            seed.path = str(path)
            if seed.label_xml is not None:
                (seed_dir / "labels.xml").write_bytes(seed.label_xml)
                seed.xml_path = str(seed_dir / "labels.xml")
            for reader in (_READER[fmt], "any"):
                jobs.append(
                    {"id": f"seed-{fmt}-{k}-{reader}", "reader": reader, "path": seed.path, "label_xml": seed.xml_path}
                )
        for i in range(per_format):
            v = corpus.variant(fmt, i, seeds)
            path = work / f"{fmt}-{i:05d}{v.seed.suffix}"
            path.write_bytes(v.data)
            reader = "any" if i % 5 == 4 else _READER[fmt]  # every fifth through read_any's dispatch
            job_id = f"{fmt}-{i}"
            variants[job_id] = (v, reader, _seed_index(seeds, v))
            jobs.append({"id": job_id, "reader": reader, "path": str(path), "label_xml": v.seed.xml_path})
    results, rss = _run_all(jobs, work)
    return variants, results, rss


def _seed_index(seeds, v) -> int:
    return next(k for k, s in enumerate(seeds[v.fmt]) if s is v.seed)


def _summary(fmt: str, variants, results) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for job_id, (v, _, _) in variants.items():
        if v.fmt != fmt:
            continue
        status = results[job_id]["status"]
        counts["tried"] += 1
        counts[{"clean": "clean error", "ok": "accepted"}.get(status, "other")] += 1
    return counts


@pytest.mark.parametrize("fmt", corpus.FORMATS)
def test_reader_fails_cleanly_on_mutated_files(fuzz_run, fmt):
    variants, results, rss = fuzz_run
    counts = _summary(fmt, variants, results)
    print(
        f"\n[fuzz] {fmt}: tried {counts['tried']}, clean error {counts['clean error']}, "
        f"accepted {counts['accepted']}, other {counts['other']}"
    )
    failures = []
    for job_id, (v, reader, k) in variants.items():
        if v.fmt != fmt:
            continue
        got = results[job_id]
        what = f"{job_id} ({v.kind} of {v.seed.name}, {reader}, expect {v.expect})"
        if got["status"] not in ("ok", "clean"):
            failures.append(f"{what}: {got['status']}: {got.get('error')}")
        elif got["status"] == "ok" and got["problems"]:
            failures.append(f"{what}: accepted with problems {got['problems']}")
        elif v.expect == "reject" and got["status"] != "clean":
            failures.append(f"{what}: accepted")
        elif v.kind in _LINE_KINDS and fmt != "mat" and got["status"] == "clean" and got["line"] is None:
            failures.append(f"{what}: the error names no line: {got['error']}")
        elif v.expect == "same":
            seed = results[f"seed-{fmt}-{k}-{reader}"]
            if got["status"] != "ok" or got.get("digest") != seed.get("digest"):
                failures.append(f"{what}: not read as its seed: {got.get('error', 'different data')}")
    seeds_ok = [r for job_id, r in results.items() if job_id.startswith(f"seed-{fmt}-")]
    assert seeds_ok and all(r["status"] == "ok" and not r["problems"] for r in seeds_ok), seeds_ok
    assert not failures, f"{len(failures)} of {counts['tried']} variants:\n" + "\n".join(failures[:30])
    assert counts["clean error"] > 0 and counts["accepted"] > 0  # the corpus exercises both outcomes
    assert rss and max(rss) < MAX_RSS_KB, f"peak RSS {max(rss)} kB"


def test_cli_fails_cleanly_on_mutated_files(fuzz_run, tmp_path):
    """``datasets convert`` on 8 variants of each format and ``train --epochs 1`` on 4 XC variants, plus the
    23-byte XC file that declares 250,000 labels (refused: far more labels than its rows use)."""
    variants, _, _ = fuzz_run
    jobs = []
    for fmt in corpus.FORMATS:
        picked = [job_id for job_id, (v, _, _) in variants.items() if v.fmt == fmt][:8]
        for job_id in picked:
            path = str(Path(_path_of(variants[job_id])))
            jobs.append(
                {
                    "id": f"convert-{job_id}",
                    "reader": "cli",
                    "path": path,
                    "argv": ["datasets", "convert", path, str(tmp_path / f"{job_id}.txt")],
                }
            )
    xc = [job_id for job_id, (v, _, _) in variants.items() if v.fmt == "xc" and v.seed.name == "bibtex-40"][:4]
    for job_id in xc:
        v = variants[job_id][0]
        path = _path_of(variants[job_id])
        jobs.append(
            {
                "id": f"train-{job_id}",
                "reader": "cli",
                "path": path,
                "argv": [
                    "train",
                    "--train",
                    path,
                    "--test",
                    v.seed.path,
                    "--epochs",
                    "1",
                    "--quiet",
                    "--out",
                    str(tmp_path / f"run-{job_id}"),
                ],
            }
        )
    wide = tmp_path / "wide.txt"
    wide.write_bytes(b"2 3 250000\n0 0:1\n1 1:1\n")
    assert wide.stat().st_size == 23
    jobs.append(
        {
            "id": "train-wide",
            "reader": "cli",
            "path": str(wide),
            "argv": [
                "train",
                "--train",
                str(wide),
                "--test",
                str(wide),
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / "run-wide"),
            ],
        }
    )
    results, rss = _run_chunk(jobs, tmp_path, "cli")
    bad = [f"{j['id']}: {results[j['id']]}" for j in jobs if results[j["id"]]["status"] not in ("ok", "clean")]
    counts = collections.Counter(r["status"] for r in results.values())
    print(
        f"\n[fuzz] cli: tried {len(jobs)}, clean error {counts['clean']}, accepted {counts['ok']}, "
        f"other {len(jobs) - counts['clean'] - counts['ok']}"
    )
    assert not bad, "\n".join(bad)
    assert results["train-wide"]["status"] == "clean" and "250000 declared" in results["train-wide"]["error"]
    assert not (tmp_path / "run-wide" / "model").exists()
    assert max(rss) < MAX_RSS_KB


def _path_of(entry) -> str:
    v, _, _ = entry
    return str(Path(v.seed.path).parent.parent / f"{v.fmt}-{v.index:05d}{v.seed.suffix}")
