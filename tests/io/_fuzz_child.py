"""Child process of the reader fuzz test: reads files (or runs CLI commands) and reports each outcome.

Usage: ``python _fuzz_child.py JOBS.json RESULTS.jsonl``. It limits its own address space first
(``RLIMIT_AS``, from the jobs file), so a reader that allocates without bound fails here, and it appends one
JSON line per finished job, flushed, so that when a reader kills the process (a segmentation fault) the
parent knows which job did it: the first one without a line.

Job: ``{"id", "reader": "xc"|"svmlight"|"arff"|"mat"|"any"|"cli", "path", "label_xml", "argv"}``.
Result line: ``{"id", "status": "ok"|"clean"|"other", "error", "line", "problems", "digest"}`` where
``clean`` is a :class:`DataFormatError` naming the file (``line``: its line), or for the CLI exit code 1 or 2
with one ``sparsexc: error:`` line naming the file and no traceback; ``problems`` lists what is wrong with
data a reader accepted, and ``digest`` hashes the data read. The last line is ``{"maxrss_kb": ...}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import resource
import sys

import numpy as np


def _check(X, Y) -> list[str]:
    import scipy.sparse as sp

    problems = []
    for name, M in (("X", X), ("Y", Y)):
        if not sp.isspmatrix_csr(M) or M.dtype != np.float32:
            problems.append(f"{name} is {type(M).__name__} {M.dtype}, not CSR float32")
            continue
        try:
            M.check_format(full_check=True)
        except ValueError as exc:
            problems.append(f"{name} inconsistent: {exc}")
            continue
        if not np.isfinite(M.data).all():  # float32 data: 1e39 would be inf here
            problems.append(f"{name} holds a non-finite value")
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        if M.nnz > 1 and not np.all((np.diff(M.indices) > 0) | (np.diff(rows) > 0)):
            problems.append(f"{name} has unsorted or repeated indices")
    if X.shape[0] != Y.shape[0]:
        problems.append(f"X has {X.shape[0]} rows, Y {Y.shape[0]}")
    if Y.nnz and not np.all(Y.data == 1):
        problems.append("Y is not 0/1")
    return problems


def _digest(parts) -> str:
    h = hashlib.sha256()
    for X, Y in parts:
        for M in (X, Y):
            h.update(repr(M.shape).encode())
            for a in (M.indptr, M.indices, M.data):
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def _read(job: dict) -> list:
    from sparsexc import io as sio

    reader, path = job["reader"], job["path"]
    if reader == "xc":
        return [sio.read_xc(path)]
    if reader == "svmlight":
        return [(d.X, d.Y) for d in sio.read_svmlight(path)]
    if reader == "arff":
        d = sio.read_arff(path, job.get("label_xml"))
        return [(d.X, d.Y)]
    if reader == "mat":
        return [(d.X, d.Y) for d in sio.read_mat(path).values()]
    d = sio.read_any(path, label_xml=job.get("label_xml"))
    return [(d.X, d.Y)]


def _run_reader(job: dict) -> dict:
    from sparsexc.io import DataFormatError

    try:
        parts = _read(job)
    except DataFormatError as exc:
        named = exc.path in (job["path"], job.get("label_xml"))
        return {"status": "clean" if named else "other", "error": f"DataFormatError: {exc}", "line": exc.line}
    except BaseException as exc:
        return {"status": "other", "error": f"{type(exc).__name__}: {exc}"[:500]}
    problems = [p for X, Y in parts for p in _check(X, Y)]
    return {"status": "ok", "problems": problems, "digest": _digest(parts)}


def _run_cli(job: dict) -> dict:
    from sparsexc.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(job["argv"])
    except BaseException as exc:
        return {"status": "other", "error": f"{type(exc).__name__} escaped main: {exc}"[:500]}
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.startswith("sparsexc: error")]
    if code == 0:
        return {"status": "ok", "problems": [], "stderr": text[-300:]}
    clean = code in (1, 2) and len(lines) == 1 and "Traceback" not in text and job["path"] in lines[0]
    return {"status": "clean" if clean else "other", "error": f"exit {code}: {text[-500:]}"}


def main() -> None:
    jobs_file, results_file = sys.argv[1], sys.argv[2]
    with open(jobs_file) as fh:
        spec = json.load(fh)
    limit = int(spec["limit_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import sparsexc.io  # noqa: F401 -- imported before the first job, so a job's time is its own

    with open(results_file, "w") as out:
        for job in spec["jobs"]:
            result = _run_cli(job) if job["reader"] == "cli" else _run_reader(job)
            out.write(json.dumps({"id": job["id"], **result}) + "\n")
            out.flush()
        out.write(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}) + "\n")


if __name__ == "__main__":
    main()
