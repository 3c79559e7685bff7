"""Your own model's code: the file found (never by running anything), read, checked against what a
run recorded, and imported, with every module of yours its import loads (`models.local_import`).

Importing a file runs its code, so tocha imports one only when the person chose it
(`models.code_trust`): named now (`--model`, `--model-file`, or `model=` in Python), trusted with
`--trust-code`, or recorded by a run of this user on this machine (its record signed). A recorded
file runs only as recorded: its SHA-256, and every other module of yours it loads, checked before a
line of it runs; the bytes hashed are the bytes run (read once), so nothing can change in between.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from tocha.config import DataConfig, ModelConfig
from tocha.config_fields import brief
from tocha.errors import TochaError, one_line
from tocha.models.code_trust import CodeTrust, signed_here
from tocha.models.local_import import SourceCheck, local_imports, sha256_bytes
from tocha.models.user_names import model_label, parse_spec, python_object_error

Record = ModelConfig | DataConfig  # your model's record, or your data's (`data.code`): one rule for both


def role(cfg: Record) -> tuple[str, str]:
    """What the code is, and the flag that names its file instead of the recorded one."""
    return ("data", "--data-file") if isinstance(cfg, DataConfig) else ("model", "--model-file")


# -- finding and reading the file
def source_path(cfg: Record) -> Path:
    """The file the model's code is read from: the one named (`model.file`), else the one `--model`
    names (a dotted module: the file Python would import, found without running anything)."""
    spec = parse_spec(cfg.name)
    if cfg.file:
        return Path(cfg.file).expanduser().resolve()
    if spec.is_python:
        raise python_object_error(spec.attr)
    if spec.is_file:
        return Path(spec.source).expanduser().resolve()
    found = locate_module(spec.source)
    if found is None:
        raise TochaError(
            f"--model {cfg.name}: no module {spec.source!r} can be imported from here "
            "(is its package installed, or give FILE.py:NAME)"
        )
    return found


def locate_module(dotted: str) -> Path | None:
    """The file `import dotted` would run, looked for on Python's path and then in the working
    folder (as `python -m` and uvicorn do), found by walking the packages' folders: no package's
    `__init__.py` runs to find it."""
    from importlib.machinery import PathFinder

    search: list[str] | None = [*sys.path, str(Path.cwd())]
    spec = None
    parts = dotted.split(".")
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).resolve()


def package_root(dotted: str, path: Path) -> Path:
    """The folder holding a dotted module's top package: `a.b` at ROOT/a/b.py (or ROOT/a/b/__init__.py)."""
    depth = len(dotted.split(".")) - (0 if path.name == "__init__.py" else 1)
    return path.parents[depth]


def read_source(path: Path, what: str) -> bytes:
    from tocha.files import regular_file

    try:
        return regular_file(path, what).read_bytes()
    except OSError as e:
        raise TochaError(f"cannot read the {what} file {path}: {e.strerror}") from e


def checked_source(cfg: Record, copy: Path | None = None, check: bool = True) -> tuple[Path, bytes]:
    """The code's file and its bytes, refused (`check`) when it changed since a run recorded it;
    `copy`: the run's own copy of what it trained with, to say which line changed."""
    what, flag = role(cfg)
    path = source_path(cfg)
    if not path.exists() and cfg.file_sha256:
        raise TochaError(
            f"the {what} file {path} recorded by this run is not on this machine; give the file "
            f"to use with {flag} FILE.py ({flag[2:].replace('-', '_')}= in Python)"
        )
    data = read_source(path, what)
    digest = sha256_bytes(data)
    if check and cfg.file_sha256 and digest != cfg.file_sha256:
        checked = (
            "its weights checked against the run's" if what == "model" else "its data's fingerprint checked"
        )
        raise TochaError(
            f"{path} changed since the run was trained ({what_changed(data, copy)}; SHA-256 "
            f"{cfg.file_sha256[:12]}... recorded, {digest[:12]}... now); {flag} {path} "
            f"uses it anyway, {checked}"
        )
    return path, data


def what_changed(now: bytes, copy: Path | None) -> str:
    """The first line that differs from the run's copy of the file, or that it differs at all."""
    if copy is None or not copy.is_file():
        return "its content differs"
    before = copy.read_bytes().decode("utf-8", "replace").splitlines()
    after = now.decode("utf-8", "replace").splitlines()
    for tag, i1, _i2, j1, _j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag != "equal":
            old = before[i1].strip() if i1 < len(before) else "(end of file)"
            new = after[j1].strip() if j1 < len(after) else "(end of file)"
            return f"line {j1 + 1}: {brief(new)} where it was {brief(old)}"
    return "its content differs only in line endings"


# -- the other files its import loads: "SHA256  PATH" lines, as sha256sum writes them
def sources_of(cfg: Record) -> dict[str, str]:
    """The user's modules a run recorded its model's import loading: path -> SHA-256."""
    found = {}
    for line in cfg.sources or []:
        digest, _, path = line.partition("  ")
        found[path] = digest
    return found


def sources_lines(loaded: dict[str, str], model_file: Path) -> list[str] | None:
    lines = [f"{digest}  {path}" for path, digest in sorted(loaded.items()) if path != str(model_file)]
    return lines or None


def check_recorded_sources(recorded: dict[str, str], model_file: Path, flag: str = "--model-file") -> None:
    """Every recorded module of the user's is as it was, checked before any of the code runs
    (`flag`: what names the file to use instead)."""
    check = SourceCheck(recorded, model_file)
    for path in recorded:
        if path == str(model_file):
            continue
        if not Path(path).is_file():
            raise TochaError(
                f"{path}, which {model_file.name} imports, is not on this machine; give the "
                f"code to use with {flag} {model_file}"
            )
        check.admit(Path(path), read_source(Path(path), "code"))


# -- importing it
# (path, SHA-256) -> (module, the user's modules it loaded): each version run once per process
# (file, SHA-256) -> the module its import made, the sources it loaded and the file's bytes as hashed:
# a process imports a version of a file once, and copies it into a run folder from these bytes.
_IMPORTED: dict[tuple[str, str], tuple[ModuleType, dict[str, str], bytes]] = {}


def imported_bytes(path: str, digest: str) -> bytes | None:
    """The bytes of `path` an import of this process hashed to `digest` and ran (None: none did)."""
    cached = _IMPORTED.get((path, digest))
    return cached[2] if cached is not None else None


Imported = tuple[ModuleType, Path, str, dict[str, str]]  # module, file, its SHA-256, the sources loaded


def import_source(cfg: Record, copy: Path | None = None, trust: CodeTrust = CodeTrust.RECORDED) -> Imported:
    """The module holding the model (or the data: `cfg` a DataConfig), its file, the file's SHA-256
    and every module of the user's its import loaded (path -> SHA-256). Only code the person chose
    runs (`models.code_trust`): named now, trusted with --trust-code, or a record signed here; a
    recorded one runs only as recorded."""
    spec = parse_spec(cfg.name)
    if spec.is_python and not cfg.file:
        raise python_object_error(spec.attr)
    if trust is CodeTrust.RECORDED and not signed_here(cfg):
        raise unchosen_error(cfg)
    as_recorded = trust is not CodeTrust.NAMED and bool(cfg.file_sha256)
    path, data = checked_source(cfg, copy, check=as_recorded)
    recorded = {**sources_of(cfg), str(path): cfg.file_sha256} if as_recorded else None  # type: ignore[dict-item]
    if recorded:
        check_recorded_sources(recorded, path, role(cfg)[1])
    digest = sha256_bytes(data)
    cached = _IMPORTED.get((str(path), digest))
    if cached is not None and still_as_loaded(cached[1], recorded, path):
        return cached[0], path, digest, cached[1]
    check = SourceCheck(recorded, path)
    dotted = not spec.is_file and not spec.is_python and locate_module(spec.source) in (path, None)
    if dotted:
        root = package_root(spec.source, path)
        module = import_dotted(spec.source, path, root, check)  # as its package imports it
    else:
        module = run_file(path, data, digest, check)
    _IMPORTED[(str(path), digest)] = (module, check.loaded, data)
    return module, path, digest, check.loaded


def still_as_loaded(loaded: dict[str, str], recorded: dict[str, str] | None, model_file: Path) -> bool:
    """Whether a module imported earlier in this process ran the files as they are now (and as the
    record says, where there is one: the files were just checked against it, so they are not read
    again)."""
    if recorded is not None:
        return {p: d for p, d in loaded.items() if p != str(model_file)} == {
            p: d for p, d in recorded.items() if p != str(model_file)
        }
    for path, digest in loaded.items():
        try:
            if sha256_bytes(Path(path).read_bytes()) != digest:
                return False
        except OSError:
            return False
    return True


def run_file(path: Path, data: bytes, digest: str, check: SourceCheck) -> ModuleType:
    """The file as a module of its own name (so two versions never mix), compiled from `data`; the
    helpers it imports beside it found in its folder after every installed package, each checked."""
    stem = re.sub(r"\W", "_", path.stem)
    name = f"tocha_model_{stem}_{digest[:12]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up by name
    try:
        with local_imports([path.parent], check):
            exec(compile(data, str(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    except TochaError:
        del sys.modules[name]
        raise
    except (Exception, SystemExit) as e:
        del sys.modules[name]
        raise TochaError(f"{path}: running it failed: {one_line(e)}") from e
    return module


def import_dotted(dotted: str, path: Path, root: Path, check: SourceCheck) -> ModuleType:
    try:
        with local_imports([root], check):
            module = importlib.import_module(dotted)
    except TochaError:
        raise
    except (Exception, SystemExit) as e:
        raise TochaError(f"import {dotted} failed: {one_line(e)}") from e
    if Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise TochaError(
            f"import {dotted} runs {module.__file__}, not the recorded {path}; give "
            "--model-file to use the one found now"
        )
    return module


def unchosen_error(cfg: Record) -> TochaError:
    """The refusal of code nobody named: what it would run, and the two ways to allow it."""
    what, flag = role(cfg)
    where = cfg.file or parse_spec(cfg.name).source
    return TochaError(
        f"the {what} {model_label(cfg.name)} is code ({where}) named by a file, not on this "
        "command line nor by a run trained on this machine; tocha runs only code you "
        f"choose: name it with {flag} {where} ({flag[2:].replace('-', '_')}= in Python), or give "
        "--trust-code (trust_code=True) to run it as recorded"
    )
