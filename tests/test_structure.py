"""The package's shape: packages import without cycles, and each concept has one home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch

from tocha.config import RunConfig, config_keys, options, to_dict
from tocha.config_model import FAMILY_OPTIONS
from tocha.runs import Checkpoint, RunFolder, RunSummary, TrainingState

SRC = Path(__file__).resolve().parents[1] / "src" / "tocha"


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """tocha modules `path` imports: at its top, inside functions, and for type hints alike (an
    import inside a function hides a cycle from Python until the function runs, not from this)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tocha"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tocha"))
    return found


def import_graph(src: Path) -> dict[str, set[str]]:
    modules = {module_name(p, src): p for p in src.rglob("*.py")}
    graph = {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}
    for name in graph:  # a package's __init__ imports its modules; that is not a cycle through them
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    return graph


def test_no_import_cycles():
    graph = import_graph(SRC)
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
    """The check above can fail: two modules that import each other are a cycle, also when one of
    the imports hides inside a function."""
    (tmp_path / "tocha").mkdir()
    (tmp_path / "tocha" / "a.py").write_text("from tocha.b import x\n")
    (tmp_path / "tocha" / "b.py").write_text("def f():\n    from tocha.a import y\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path / "tocha")
    try:
        test_no_import_cycles()
    except AssertionError as e:
        assert "tocha.a" in str(e)
    else:
        raise AssertionError("a cycle went unnoticed")


ARCHITECTURE = SRC.parents[1] / "docs" / "architecture.md"


def declared_layers(doc: Path) -> list[list[str]]:
    """The layers docs/architecture.md declares, lowest first: its table between the markers, one
    row a layer, its modules and packages in backquotes."""
    text = doc.read_text()
    table = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    return [re.findall(r"`([\w.]+)`", row.split("|")[2]) for row in rows]


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The layer whose longest matching name holds `module` (`tocha.data` holds tocha.data.load)."""
    best = None
    for number, names in enumerate(layers):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[1]):
                best = (number, len(name))
    return best[0] if best else None


def upward_imports(src: Path, doc: Path) -> list[str]:
    layers = declared_layers(doc)
    graph = import_graph(src)
    found = []
    for name, targets in sorted(graph.items()):
        mine = layer_of(name, layers)
        for target in sorted(targets):
            if (theirs := layer_of(target, layers)) > mine:
                found.append(f"{name} (layer {mine + 1}) imports {target} (layer {theirs + 1})")
    return found


def test_every_module_has_its_layer():
    layers = declared_layers(ARCHITECTURE)
    assert len(layers) >= 8
    assert [m for m in import_graph(SRC) if layer_of(m, layers) is None] == []


def test_imports_run_down_the_layers():
    """No module imports one of a higher layer than its own, not even inside a function."""
    assert upward_imports(SRC, ARCHITECTURE) == []


def test_the_layer_check_finds_an_upward_import(tmp_path):
    """The check above can fail: a planted import from a lower layer to a higher one is named."""
    (tmp_path / "tocha" / "low").mkdir(parents=True)
    (tmp_path / "tocha" / "low" / "__init__.py").write_text("")
    (tmp_path / "tocha" / "low" / "a.py").write_text("def f():\n    from tocha.high import b\n")
    (tmp_path / "tocha" / "high.py").write_text("from tocha.low.a import f\n")
    doc = tmp_path / "architecture.md"
    doc.write_text("<!-- layers -->\n| layer | modules |\n|---|---|\n| 1 | `tocha.low` |\n"
                   "| 2 | `tocha`, `tocha.high` |\n<!-- /layers -->\n")  # fmt: skip
    assert upward_imports(tmp_path / "tocha", doc) == ["tocha.low.a (layer 1) imports tocha.high (layer 2)"]


def test_each_model_declares_the_options_it_takes():
    """A model's options are declared beside its factory, all of them; the keys and flags a config
    has for them (`FAMILY_OPTIONS`) match what the models declare, and a factory with an undeclared
    option is refused when it is registered."""
    import pytest

    from tocha.models.registry import check_declared_types, register_model

    check_declared_types()
    with pytest.raises(TypeError, match="declare exactly its options"):

        @register_model()
        def tiny(in_shape, num_classes, depth=2):  # noqa: ANN001, ANN202 - planted
            return None


def test_every_config_key_is_one_option_with_one_flag():
    keys = config_keys()
    assert len(keys) == len(set(keys)) and set(keys) == {o.key for o in options()}
    flags = [o.flag for o in options()]
    assert len(flags) == len(set(flags))
    nested = to_dict(RunConfig())
    family = {f"model.{name}" for name in FAMILY_OPTIONS}  # a key each, held in the model's own `args`
    assert {f"{s}.{k}" for s, v in nested.items() if isinstance(v, dict) for k in v} | {
        k for k, v in nested.items() if not isinstance(v, dict)
    } | family == set(keys)


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
                         final_test={"loss": 0.5, "accuracy": 0.75}, val={"loss": 0.4, "accuracy": 0.8},
                         train_seconds=1.0, wall_seconds=2.0, device="cpu",
                         versions={"tocha": "0", "torch": "2", "python": "3"}, threads=2,
                         selection="val_accuracy", kept_epoch=1, stopped_early=2)  # fmt: skip
    folder = RunFolder.create(tmp_path, "run")
    folder.write_summary(summary)
    written = (folder.file(folder.SUMMARY)).read_text()
    assert '"final_test_accuracy": 0.75' in written and '"val_accuracy": 0.8' in written
    assert '"kept_epoch": 1' in written and '"selection": "val_accuracy"' in written
    assert folder.read_summary() == summary


def test_no_module_is_over_330_lines():
    """Small modules with one job: a file that grows past 330 lines is split by what it does."""
    lengths = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > 330} == {}
    assert max(lengths.values()) > 200  # the count reads the files (an empty tree would pass)
