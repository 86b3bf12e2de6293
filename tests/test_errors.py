"""The error hierarchy (sparsexc.errors): what each class also is, the old import paths, exit codes, pickling;
where the library raises it; and the one atomic file writer (sparsexc._atomic.atomic_file) and its wrappers."""

from __future__ import annotations

import gzip
import os
import pickle
from operator import attrgetter
from pathlib import Path

import pytest

from sparsexc import errors
from sparsexc._atomic import atomic_file, atomic_write
from sparsexc.cli._files import atomic_open, write_json
from sparsexc.errors import (
    ConfigurationError,
    DataFormatError,
    ModelFormatError,
    NonFiniteLossError,
    OptionalDependencyError,
    RunFailedError,
    SparsexcError,
    UnknownNameError,
)
from sparsexc.io._files import atomic_writer

# ------------------------------------------------------------------------------------------- the hierarchy

# class -> the built-in exceptions it must still be (what the code raised before the hierarchy)
BUILTINS: dict[type[SparsexcError], tuple[type[BaseException], ...]] = {
    ConfigurationError: (ValueError,),
    UnknownNameError: (ValueError, KeyError),
    DataFormatError: (ValueError,),
    ModelFormatError: (ValueError,),
    OptionalDependencyError: (ImportError,),
    RunFailedError: (RuntimeError,),
    NonFiniteLossError: (RuntimeError,),
}


def _instance(cls: type[SparsexcError]) -> SparsexcError:
    if cls is DataFormatError:
        return DataFormatError("f.txt", "a number", line=3, field="label id", found="x")
    if cls is NonFiniteLossError:
        return NonFiniteLossError("loss is nan", epoch=2, step=5, loss=float("nan"))
    return cls("a message")


@pytest.mark.parametrize("cls", sorted(BUILTINS, key=attrgetter("__name__")))
def test_each_error_is_a_sparsexc_error_and_what_it_was_before(cls):
    exc = _instance(cls)
    assert isinstance(exc, SparsexcError)
    for builtin in BUILTINS[cls]:
        assert isinstance(exc, builtin), builtin
        with pytest.raises(builtin):  # an `except ValueError` written against older versions still catches it
            raise exc


def test_every_public_class_is_covered_here():
    public = {getattr(errors, name) for name in errors.__all__}
    assert public == {SparsexcError, *BUILTINS}


@pytest.mark.parametrize(
    ("cls", "code"),
    [(ConfigurationError, 2), (UnknownNameError, 2), (DataFormatError, 2), (ModelFormatError, 2),
     (OptionalDependencyError, 2), (RunFailedError, 1), (NonFiniteLossError, 1)],
)  # fmt: skip
def test_exit_codes(cls, code):
    assert cls.exit_code == code


def test_unknown_name_error_reads_without_quotes():
    assert str(UnknownNameError("unknown head 'x'")) == "unknown head 'x'"
    assert str(KeyError("unknown head 'x'")) != "unknown head 'x'"  # what a plain KeyError would print


def test_data_format_error_keeps_its_attributes_and_message():
    exc = DataFormatError("f.txt", "a number", line=3, field="label id", found="y" * 100)
    assert (exc.path, exc.line, exc.field, exc.expected) == ("f.txt", 3, "label id", "a number")
    assert exc.found == "y" * 77 + "..."
    assert str(exc) == f"f.txt, line 3: label id: expected a number, found {exc.found!r}"
    assert str(DataFormatError(Path("g"), "a file", found="no such file")) == "g: expected a file, found 'no such file'"


def test_non_finite_loss_error_pickles_with_its_attributes():
    exc = pickle.loads(pickle.dumps(_instance(NonFiniteLossError)))
    assert isinstance(exc, NonFiniteLossError)
    assert (str(exc), exc.epoch, exc.step) == ("loss is nan", 2, 5)


def test_old_import_paths_give_the_same_classes():
    from sparsexc._optional import MissingDependencyError
    from sparsexc.datasets import UnknownDatasetError
    from sparsexc.estimator._safetensors import ModelFormatError as safetensors_error
    from sparsexc.io import DataFormatError as io_error
    from sparsexc.io.errors import DataFormatError as io_errors_error
    from sparsexc.train.trainer import NonFiniteLossError as trainer_error

    assert io_error is io_errors_error is DataFormatError
    assert safetensors_error is ModelFormatError
    assert MissingDependencyError is OptionalDependencyError
    assert trainer_error is NonFiniteLossError
    assert issubclass(UnknownDatasetError, UnknownNameError)


# ------------------------------------------------------------------------------- where the library raises it


def test_a_bad_setting_is_a_configuration_error():
    from sparsexc._params import TrainParams

    with pytest.raises(ConfigurationError, match="lr"):
        TrainParams(lr=-1.0).validate()
    with pytest.raises(ConfigurationError, match="optimizer"):
        TrainParams(optimizer="nope").validate()


def test_unknown_names_are_unknown_name_errors():
    from sparsexc.datasets import get_spec
    from sparsexc.heads import get_head
    from sparsexc.samplers import get_sampler

    for lookup, name in ((get_head, "no-such-head"), (get_sampler, "no-such-sampler"), (get_spec, "no-such-set")):
        with pytest.raises(UnknownNameError, match=name):
            lookup(name)


def test_a_malformed_file_is_a_data_format_error(tmp_path):
    from sparsexc.io import read_xc

    bad = tmp_path / "bad.txt"
    bad.write_text("2 4 3\n0 1:1\n1 2:x\n")
    with pytest.raises(DataFormatError) as info:
        read_xc(bad)
    assert info.value.path == str(bad) and info.value.line == 3


def test_a_folder_that_is_no_model_is_a_model_format_error(tmp_path):
    from sparsexc.estimator import XCClassifier

    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelFormatError):
        XCClassifier.load(tmp_path)


def test_a_missing_optional_package_is_an_optional_dependency_error():
    from sparsexc._optional import EXTRAS, import_optional

    EXTRAS["sparsexc_no_such_module"] = ("extra", "no-such-dist")
    try:
        with pytest.raises(OptionalDependencyError, match="pip install"):
            import_optional("sparsexc_no_such_module", "a test")
    finally:
        del EXTRAS["sparsexc_no_such_module"]


# ---------------------------------------------------------------------------------------- the atomic writer
_WRITERS = {
    "atomic_file": lambda path, data: _write_with(atomic_file(path), data),
    "atomic_write": lambda path, data: atomic_write(path, lambda fh: fh.write(data)),
    "atomic_open": lambda path, data: _write_with(atomic_open(path), data.decode()),
    "atomic_writer": lambda path, data: _write_with(atomic_writer(path, compress=False), data),
}


def _write_with(context, data) -> None:
    with context as fh:
        fh.write(data)


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("writer", sorted(_WRITERS))
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_users_umask(tmp_path, writer, umask):
    old = os.umask(umask)
    try:
        _WRITERS[writer](tmp_path / "f.txt", b"new\n")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").read_bytes() == b"new\n"
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert _temporaries(tmp_path) == []


class _Failure(Exception):
    pass


def _fail_writing(writer: str, path: Path) -> None:
    data = b"x" * 100_000

    def write(fh) -> None:
        fh.write(data)
        raise _Failure

    if writer == "atomic_write":
        atomic_write(path, write)
    opener = {"atomic_file": atomic_file, "atomic_open": atomic_open, "atomic_writer": atomic_writer}[writer]
    with opener(path) as fh:
        fh.write(data.decode() if writer == "atomic_open" else data)
        raise _Failure


@pytest.mark.parametrize("writer", sorted(_WRITERS))
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, writer):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old\n")
    with pytest.raises(_Failure):
        _fail_writing(writer, target)
    assert target.read_bytes() == b"old\n"
    assert _temporaries(tmp_path) == []


@pytest.mark.parametrize("writer", sorted(_WRITERS))
def test_the_file_and_its_folder_are_fsynced_before_and_after_the_rename(tmp_path, writer, monkeypatch):
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real_fsync(fd)

    def replace(src, dst) -> None:
        synced.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _WRITERS[writer](tmp_path / "f.txt", b"new\n")
    assert len(synced) == 3 and synced[1] == "replace", synced
    if os.path.exists("/proc/self/fd"):  # the temporary file first, then the folder
        assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.startswith(".f.txt.")
        assert Path(synced[2]) == tmp_path


def test_the_gzip_writer_and_the_json_writer_write_what_they_say(tmp_path):
    with atomic_writer(tmp_path / "a.txt.gz") as fh:
        fh.write(b"hello\n")
    assert gzip.decompress((tmp_path / "a.txt.gz").read_bytes()) == b"hello\n"
    write_json(tmp_path / "sub" / "b.json", {"k": [1, 2]})  # makes the folder
    assert (tmp_path / "sub" / "b.json").read_text() == '{\n  "k": [\n    1,\n    2\n  ]\n}\n'


def test_the_io_writer_does_not_make_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_writer(tmp_path / "missing" / "a.txt") as fh:
        fh.write(b"x")
    assert not (tmp_path / "missing").exists()
