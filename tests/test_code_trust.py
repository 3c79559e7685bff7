"""No file chooses the code that runs: a checkpoint, an export, a config or a run folder that names
model code never makes it run; only code named on the command line (or in the Python call), code
trusted with `--trust-code`, or a record signed by a run trained on this machine. And what runs is
what was recorded: every module of the user's the model's import loads is hashed and checked, the
model's folder never shadows an installed library, and `sys.path` is left as it was."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA, run_cli, run_main

import tocha
from tocha.errors import TochaError
from tocha.runs.checkpoint import load_checkpoint

DIGIT = SHARED_DATA / "samples" / "mnist_00_7.png"
QUIET = {"log": lambda _line: None, "progress": False}
FAST = {"data": "mnist-sample", "epochs": 1, "train_limit": 256, "val_fraction": 0}

NET = """\
from torch import nn
from {helper} import width


class Net(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, width()), nn.ReLU(),
                                    nn.Linear(width(), classes))

    def forward(self, x):
        return self.layers(x)
"""


def write_model(folder: Path, helper: str = "trust_helper", helper_code: str = "") -> Path:
    """FOLDER/net.py, whose Net imports `width` from a helper module beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{helper}.py").write_text(helper_code or "def width():\n    return 16\n")
    (folder / "net.py").write_text(NET.format(helper=helper))
    return folder / "net.py"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def other_machine(tmp_path: Path) -> dict[str, str]:
    """The environment of another user or machine: another trust key."""
    return {**os.environ, "TOCHA_TRUST_KEY": str(tmp_path / "elsewhere" / "trust.key")}


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of net.py's Net, named in the call: its record signed with this session's key."""
    folder = tmp_path_factory.mktemp("signed")
    model = write_model(folder / "code")
    return tocha.train(model=f"{model}:Net", out_dir=str(folder / "runs"), **FAST, **QUIET).run_dir


def hostile_config(run: Path, marker: Path) -> dict:
    """The run's config, its model replaced by the standard library's os.system with the real
    SHA-256 of os.py and a shell command as its argument."""
    config = load_checkpoint(run)["config"]
    os_file = Path(os.__file__).resolve()
    config["model"] = {**config["model"], "name": f"{os_file}:system", "file": str(os_file),
                       "file_sha256": sha256(os_file), "sources": None, "signature": None,
                       "args": {"command": f"touch {marker}"}, "flatten": None}  # fmt: skip
    return config


def test_a_trained_file_never_chooses_the_code_it_runs(signed_run, tmp_path):
    """A checkpoint and a safetensors export whose config names os.py:system (with os.py's real
    SHA-256 and a shell command): predict, evaluate, export, serve, tocha.load and train --init-from
    refuse it in one line and the command never runs; --trust-code still refuses, as `system` is not
    a class or function defined in os.py (a builtin it imports)."""
    marker = tmp_path / "ran"
    ckpt = load_checkpoint(signed_run)
    ckpt["config"] = hostile_config(signed_run, marker)
    hostile = tmp_path / "hostile.pt"
    torch.save(ckpt, hostile)

    from safetensors import safe_open
    from safetensors.torch import save_file

    exported = tmp_path / "clean.safetensors"
    assert run_main("export", signed_run, "--format", "safetensors", "--out", exported).returncode == 0
    with safe_open(str(exported), framework="pt") as f:
        meta, weights = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta["config"] = json.dumps(hostile_config(signed_run, marker))
    hostile_export = tmp_path / "hostile.safetensors"
    save_file(weights, str(hostile_export), metadata=meta)

    for trained in (hostile, hostile_export):
        for command in (["predict", str(trained), str(DIGIT)], ["evaluate", str(trained)],
                        ["export", str(trained), "--format", "onnx", "--out", str(tmp_path / "x.onnx")],
                        ["serve", str(trained), "--port", "0"],
                        ["train", "--init-from", str(trained), "--data", "mnist-sample", "--out",
                         str(tmp_path / "runs")]):  # fmt: skip
            # One in a process of its own; the others in this one (no 2 s of torch to import each).
            done = (run_cli if command[0] == "predict" and trained == hostile else run_main)(*command)
            assert done.returncode == 2 and "named by a file" in done.stderr, (command, done.stderr)
            assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        with pytest.raises(TochaError, match="named by a file"):
            tocha.load(trained)
        trusted = run_cli("predict", str(trained), str(DIGIT), "--trust-code")
        assert trusted.returncode == 2 and "system in" in trusted.stderr, trusted.stderr
        assert "not an nn.Module class, a function returning one" in trusted.stderr  # a builtin os imports
    assert not marker.exists()
    assert not (tmp_path / "runs").exists()


def test_a_run_trained_here_needs_no_flag_and_one_from_elsewhere_asks(
    signed_run, tmp_path, monkeypatch, shared_data
):  # its PNGs
    """The run's record is signed with this user's key: evaluate and predict follow it without a
    flag. Under another key (another user or machine) they refuse it naming the two ways; each way
    works. A signed record whose arguments were edited is refused, signature and all."""
    assert run_main("predict", signed_run, DIGIT).returncode == 0
    elsewhere = other_machine(tmp_path)
    refused = run_cli("predict", str(signed_run), str(DIGIT), env=elsewhere)
    assert refused.returncode == 2 and "--trust-code" in refused.stderr and "--model-file" in refused.stderr
    model_file = load_checkpoint(signed_run)["config"]["model"]["file"]
    monkeypatch.setenv("TOCHA_TRUST_KEY", elsewhere["TOCHA_TRUST_KEY"])
    for way in (["--trust-code"], ["--model-file", model_file]):
        done = run_main("predict", signed_run, DIGIT, *way)
        assert done.returncode == 0, (way, done.stderr)
    monkeypatch.undo()
    key = Path(elsewhere["TOCHA_TRUST_KEY"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # readable by its owner only

    edited = load_checkpoint(signed_run)
    assert edited["config"]["model"]["signature"]
    edited["config"]["model"]["args"] = {"classes": 10, "extra": 1}  # the signature kept as it was
    torch.save(edited, tmp_path / "edited.pt")
    done = run_main("predict", tmp_path / "edited.pt", DIGIT)
    assert done.returncode == 2 and "named by a file" in done.stderr


def test_a_changed_helper_module_is_refused_naming_it_before_it_runs(tmp_path, monkeypatch):
    """A helper beside the model file, a package's __init__, and a same-named package in the
    working folder: each is recorded at training, and evaluate refuses the changed or unrecorded one,
    naming it, before a line of it runs."""
    marker = tmp_path / "ran"
    model = write_model(tmp_path / "code", helper="changed_helper")
    run = tocha.train(model=f"{model}:Net", out_dir=str(tmp_path / "runs"), **FAST, **QUIET).run_dir
    sources = load_checkpoint(run)["config"]["model"]["sources"]
    helper = tmp_path / "code" / "changed_helper.py"
    assert sources == [f"{sha256(helper)}  {helper}"]  # as sha256sum writes it
    assert run_main("evaluate", run).returncode == 0
    helper.write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef width():\n    return 16\n")
    done = run_main("evaluate", run)
    assert done.returncode == 2 and "changed_helper.py, which net.py imports, changed" in done.stderr
    assert not marker.exists()

    # A package: `pkg.net:Net`, trained from the folder that holds it; its __init__ changed later.
    project = tmp_path / "project"
    write_model(project / "pkg", helper="pkg.parts")
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "parts.py").write_text("def width():\n    return 16\n")
    with monkeypatch.context() as here:
        here.chdir(project)
        done = run_main("train", "--model", "pkg.net:Net", "--data", "mnist-sample", "--epochs", "1",
                        "--train-limit", "256", "--val-fraction", "0", "--out", tmp_path / "runs",
                        "--name", "pkg", "--no-progress")  # fmt: skip
    assert done.returncode == 0, done.stderr
    recorded = load_checkpoint(tmp_path / "runs" / "pkg")["config"]["model"]["sources"]
    assert {line.split("  ")[1] for line in recorded} == {
        str(project / "pkg" / "__init__.py"), str(project / "pkg" / "parts.py")}  # fmt: skip
    elsewhere = tmp_path / "elsewhere"  # a same-named package where evaluate runs: never used
    write_model(elsewhere / "pkg", helper="pkg.parts")
    (elsewhere / "pkg" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (elsewhere / "pkg" / "parts.py").write_text("def width():\n    return 16\n")
    done = run_cli("evaluate", str(tmp_path / "runs" / "pkg"), cwd=elsewhere)
    assert done.returncode == 2 and "did not record" in done.stderr and str(elsewhere / "pkg") in done.stderr
    assert run_main("evaluate", tmp_path / "runs" / "pkg").returncode == 0  # from anywhere else
    (project / "pkg" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    done = run_main("evaluate", tmp_path / "runs" / "pkg")
    assert done.returncode == 2 and "__init__.py, which net.py imports, changed" in done.stderr
    assert not marker.exists()


def test_the_models_folder_never_shadows_an_installed_library_nor_changes_sys_path(tmp_path):
    """`matplotlib.py` and `safetensors.py` beside the model are never imported (the installed
    libraries are); `sys.path` and the user's entries of `sys.modules` are as they were."""
    marker = tmp_path / "ran"
    model = write_model(tmp_path / "code", helper="shadow_helper")
    for name in ("matplotlib", "safetensors"):
        (tmp_path / "code" / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    with open(model, "a") as f:
        f.write("import matplotlib\nimport safetensors\nassert hasattr(matplotlib, 'pyplot') or True\n")
    path_before = list(sys.path)
    run = tocha.train(model=f"{model}:Net", out_dir=str(tmp_path / "runs"), **FAST, **QUIET)
    assert sys.path == path_before and "shadow_helper" not in sys.modules
    for name in ("matplotlib", "safetensors"):  # the installed ones, imported by the model and tocha
        assert not Path(sys.modules[name].__file__).is_relative_to(tmp_path)
    done = run_main("export", run.run_dir, "--format", "safetensors")  # the real library writes it
    assert done.returncode == 0, done.stderr
    assert not marker.exists()


def test_a_named_callable_is_defined_in_the_file_never_imported_there(tmp_path):
    """`--model FILE.py:Linear` where the file only imports torch's Linear: refused, naming it."""
    (tmp_path / "imports.py").write_text("from torch.nn import Linear\n")
    with pytest.raises(TochaError, match="imported there .*not defined in it"):
        tocha.train(model=f"{tmp_path / 'imports.py'}:Linear", model_args={"in_features": 784,
                    "out_features": 10}, out_dir=str(tmp_path / "runs"), **FAST, **QUIET)  # fmt: skip


def test_resume_with_a_model_file_records_it_and_its_copy(tmp_path):
    """`--resume RUN --model-file NEW.py` records NEW.py (signed) and its copy in the run folder, so
    a later change to it is told against the right line."""
    model = write_model(tmp_path / "code", helper="resume_helper")
    run = tocha.train(model=f"{model}:Net", out_dir=str(tmp_path / "runs"), **FAST, **QUIET).run_dir
    new = tmp_path / "code" / "net_v2.py"
    new.write_text("# the same network, kept under another name\n" + model.read_text())
    done = run_main("train", "--resume", run, "--epochs", "2", "--model-file", new, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert (run / "model_source.py").read_bytes() == new.read_bytes()
    assert load_checkpoint(run)["config"]["model"]["file"] == str(new)
    new.write_text(new.read_text().replace("# the same network", "# another network"))
    done = run_main("evaluate", run)
    assert done.returncode == 2 and "line 1: '# another network, kept" in done.stderr, done.stderr
