"""Importing a user's model code: the file named, and every module of the user's that its import
loads, each hashed (recorded, or checked against a run's record) before a line of it runs.

Python's own way (put the model's folder first on `sys.path`, then import) lets a `matplotlib.py`
beside the model replace the real library, leaves `sys.path` changed, and runs a helper module
beside the model unchecked: a run could evaluate with other code than it trained with. Here, for
the length of the import only (`local_imports`):

- `sys.path` is never changed: the model's folder (`roots`) is searched only for names that
  nothing on Python's path provides, so an installed library always wins;
- a finder placed just before Python's path finder hands every module that comes from the user's
  folders (not the standard library, not an installed package, not tocha) to a loader that reads
  the file once, hashes it (`SourceCheck`: recorded, or refused when it changed or was never
  recorded) and runs the very bytes it hashed;
- the user's modules are taken out of `sys.modules` for the import and put back after, so a second
  model with a helper of the same name gets its own, and a helper the caller had imported already
  is loaded (and hashed) again rather than reused unchecked.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import site
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tocha.errors import TochaError


def installed_folders() -> tuple[Path, ...]:
    """Where installed code lives: the standard library, site-packages (the user's too), and tocha."""
    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    folders |= set(site.getsitepackages())
    folders.add(site.getusersitepackages())
    folders.add(str(Path(__file__).resolve().parents[1]))  # tocha itself, installed or from a checkout
    return tuple(Path(f).resolve() for f in folders if f)


def is_installed(path: str | Path, folders: Sequence[Path]) -> bool:
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(folder) for folder in folders)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SourceCheck:
    """What the user's modules an import loads must be: `recorded` (path -> SHA-256, a run's record)
    or, when None, anything (named now: each is recorded in `loaded`)."""

    recorded: dict[str, str] | None
    model_file: Path  # the file the model is named by, for the messages
    loaded: dict[str, str] = field(default_factory=dict)  # path -> SHA-256 of each module run

    def admit(self, path: Path, data: bytes) -> None:
        """Record `data` as `path`'s code, or refuse it (before it runs) when the record differs."""
        digest = sha256_bytes(data)
        if self.recorded is not None:
            want = self.recorded.get(str(path))
            if want is None:
                raise TochaError(
                    f"{self.model_file} imports {path}, which the run did not record (a module "
                    "added since, or one of the same name found first on Python's path); "
                    f"--model-file {self.model_file} runs the code as it is now, its weights "
                    "checked against the run's"
                )
            if want != digest:
                raise TochaError(
                    f"{path}, which {self.model_file.name} imports, changed since the run was "
                    f"trained (SHA-256 {want[:12]}... recorded, {digest[:12]}... now); "
                    f"--model-file {self.model_file} runs the code as it is now, its weights "
                    "checked against the run's"
                )
        self.loaded[str(path)] = digest


class CheckedLoader(importlib.abc.Loader):
    """A user's module: its file read once, admitted by the check, and run from the bytes hashed (a
    compiled extension is hashed, then loaded by its own loader)."""

    def __init__(self, inner: Any, path: Path, check: SourceCheck) -> None:
        self.inner, self.path, self.check = inner, path, check
        self.data: bytes | None = None

    def __getattr__(self, name: str) -> Any:  # get_source, is_package...: what tracebacks ask of it
        return getattr(self.inner, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        try:
            self.data = self.path.read_bytes()
        except OSError as e:
            raise TochaError(f"cannot read {self.path}: {e.strerror}") from None
        self.check.admit(self.path, self.data)  # an extension module runs as it is created
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if isinstance(self.inner, importlib.machinery.SourceFileLoader):
            code = compile(self.data or b"", str(self.path), "exec", dont_inherit=True)
            exec(code, module.__dict__)  # noqa: S102 - the bytes just admitted
        else:
            self.inner.exec_module(module)


class LocalFinder(importlib.abc.MetaPathFinder):
    """Before Python's path finder: the user's modules to `CheckedLoader`, and names nothing on the
    path provides looked for in `roots` (the model's folder); installed modules left to Python."""

    def __init__(
        self, roots: Sequence[Path], check: SourceCheck, installed: Sequence[Path], later: Sequence[Any]
    ) -> None:
        self.roots, self.check, self.installed, self.later = [str(r) for r in roots], check, installed, later
        self.served: set[str] = set()  # the names this finder gave a spec for: the user's modules

    def find_spec(self, name: str, path: Sequence[str] | None, target: Any = None) -> Any:
        PathFinder = importlib.machinery.PathFinder
        spec = PathFinder.find_spec(name, path)
        if spec is None and path is None:  # not on Python's path: beside the model, unless a finder
            if any(self.provides(finder, name) for finder in self.later):  # after it has it (editable)
                return None
            spec = PathFinder.find_spec(name, self.roots)
        if spec is None:
            return None
        if spec.origin is None or not spec.has_location:  # a namespace package: no code of its own
            folders = list(spec.submodule_search_locations or [])
            if not folders or any(is_installed(f, self.installed) for f in folders):
                return None
        elif is_installed(spec.origin, self.installed):
            return None  # Python finds the same and imports it as ever
        else:
            spec.loader = CheckedLoader(spec.loader, Path(spec.origin).resolve(), self.check)
        self.served.add(name)
        return spec

    @staticmethod
    def provides(finder: Any, name: str) -> bool:
        try:
            return finder.find_spec(name, None) is not None
        except Exception:  # noqa: BLE001 - another finder's trouble is not ours to report
            return False


def is_users(module: Any, installed: Sequence[Path]) -> bool:
    """Whether a loaded module is the user's own code (a file outside every installed folder)."""
    file = getattr(module, "__file__", None)
    name = getattr(module, "__name__", "")
    return bool(file) and name != "__main__" and not is_installed(file, installed)


@contextlib.contextmanager
def local_imports(roots: Sequence[Path], check: SourceCheck) -> Iterator[None]:
    """For the block: the user's modules found and loaded through `LocalFinder` (see the module's
    docstring); `sys.meta_path` and the user's entries of `sys.modules` as they were afterwards."""
    installed = installed_folders()
    PathFinder = importlib.machinery.PathFinder
    at = sys.meta_path.index(PathFinder) if PathFinder in sys.meta_path else len(sys.meta_path)
    finder = LocalFinder(roots, check, installed, sys.meta_path[at + 1 :])
    stashed = {name: m for name, m in list(sys.modules.items()) if is_users(m, installed)}
    for name in stashed:
        del sys.modules[name]
    importlib.invalidate_caches()  # a folder's listing cached before a file was written there
    sys.meta_path.insert(at, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in finder.served:
            sys.modules.pop(name, None)
        sys.modules.update(stashed)
