"""The package's shape: packages import without cycles, and each concept has one home."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

from tocha.config import RunConfig, config_keys, options, to_dict
from tocha.runs import Checkpoint, RunFolder, RunSummary, TrainingState

SRC = Path(__file__).resolve().parents[1] / "src" / "tocha"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """tocha modules imported when `path` is imported (not those imported inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tocha"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tocha"))
    return found


def test_no_import_cycles():
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: {m for m in top_level_imports(path) if m in modules and m != name}
             for name, path in modules.items()}  # fmt: skip
    for name in graph:  # a package's __init__ imports its modules; that is not a cycle through them
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    visiting, done, cycles = set(), set(), []

    def visit(node: str, path: list[str]) -> None:
        if node in visiting:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        visiting.add(node)
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        visiting.discard(node)
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert not cycles, cycles


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: two modules that import each other are a cycle."""
    (tmp_path / "tocha").mkdir()
    (tmp_path / "tocha" / "a.py").write_text("from tocha.b import x\n")
    (tmp_path / "tocha" / "b.py").write_text("from tocha.a import y\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path / "tocha")
    try:
        test_no_import_cycles()
    except AssertionError as e:
        assert "tocha.a" in str(e)
    else:
        raise AssertionError("a cycle went unnoticed")


def test_every_config_key_is_one_option_with_one_flag():
    keys = config_keys()
    assert len(keys) == len(set(keys)) and set(keys) == {o.key for o in options()}
    flags = [o.flag for o in options()]
    assert len(flags) == len(set(flags))
    nested = to_dict(RunConfig())
    assert {f"{s}.{k}" for s, v in nested.items() if isinstance(v, dict) for k in v} | {
        k for k, v in nested.items() if not isinstance(v, dict)
    } == set(keys)


def test_a_checkpoint_survives_its_round_trip(tmp_path):
    state = TrainingState(trained_weights=None, averaged=None, scheduler=None,
                          shuffle_generator=torch.Generator().get_state(), augment_generator=None,
                          torch_rng=torch.get_rng_state(), cuda_rng=None, device_type="cpu", train_size=10,
                          wall_seconds=1.5, epoch=None)  # fmt: skip
    ckpt = Checkpoint(config=to_dict(RunConfig()), classes=["a", "b"], image_shape=[1, 2, 2],
                      normalization={"mean": [0.5], "std": [0.2]}, weights={"w": torch.ones(2)},
                      optimizer=None, epoch=1, finished=False, history=[{"epoch": 1.0}],
                      training=state)  # fmt: skip
    folder = RunFolder.create(tmp_path, "run")
    folder.write_checkpoint(ckpt)
    again = folder.read_checkpoint()
    assert again.classes == ckpt.classes and again.epoch == 1
    assert torch.equal(again.weights["w"], torch.ones(2))
    assert again.training is not None and again.training.wall_seconds == 1.5
    assert torch.equal(again.training.shuffle_generator, state.shuffle_generator)


def test_a_summary_reads_back_what_was_written(tmp_path):
    summary = RunSummary(dataset="d", data_source="s", model="m", parameters=3, epochs=2,
                         final_test={"loss": 0.5, "accuracy": 0.75}, best_test={"accuracy": 0.8},
                         train_seconds=1.0, wall_seconds=2.0, device="cpu",
                         versions={"tocha": "0", "torch": "2", "python": "3"}, threads=2)  # fmt: skip
    folder = RunFolder.create(tmp_path, "run")
    folder.write_summary(summary)
    written = (folder.file(folder.SUMMARY)).read_text()
    assert '"final_test_accuracy": 0.75' in written and '"best_test_accuracy": 0.8' in written
    assert folder.read_summary() == summary
