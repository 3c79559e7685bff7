"""tocha lesson: every lesson runs and checks its own claims, in English and in Portuguese;
list, find, export and the language choice."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SHARED_DATA

import tocha.lessons
from tocha.cli_lesson import add_lesson_commands
from tocha.errors import TochaError
from tocha.lessons import export_lesson, find_lesson, list_lessons, run_lesson
from tocha.lessons.text import say

# What each lesson prints from its code (not its prose): a string, the same in both languages (code
# as written); a pair, a label in English and in Portuguese.
EXPECTED = {
    "tensors": ["torch.dot([1, 2, 3], [4, 5, 6]) = 32", "a @ a.T = [[14.0, 32.0], [32.0, 77.0]]"],
    "autograd": ["x.grad = 4.0", "dz/dx = 42.0", "v.grad = [2.0, 4.0, 6.0]"],
    "modules": [("parameters: 11", "parâmetros: 11"), "model(batch).shape = (4, 1)"],
    "loss": ["nn.MSELoss()(tensor([2.]), tensor([3.])) = 1.0", "MSE (mean) = 1.6667", "L1 = 1.0"],
    "optimizer": [
        ("weight via SGD.step:", "peso via SGD.step:"),
        ("after zero_grad: model.weight.grad = None", "após zero_grad: model.weight.grad = None"),
    ],
    "regression_loop": [
        ("Epoch [10/100], Loss: ", "Época [10/100], Perda: "),
        ("Epoch [100/100], Loss: ", "Época [100/100], Perda: "),
        ("largest weight error", "maior erro de peso"),
    ],
    "squeeze": ["x.unsqueeze(0).shape = (1, 4)", "x.unsqueeze(1).shape = (4, 1)", "squeeze().shape = (3, 2)"],
    "softmax": ["sums = [1.0, 1.0]", "F.cross_entropy(logits)     = 0.285104"],
    "devices": ["device = ", "cpu: 512x512 @ 512x512"],
    "conv_shapes": [
        ("H=28 k=5 s=2 p=2: formula 14, Conv2d 14", "H=28 k=5 s=2 p=2: fórmula 14, Conv2d 14"),
        "flatten    (1, 10, 7, 7) -> (1, 490)",
    ],
    "activations": ["f'(x) [0.0, 0.0, 0.0, 1.0, 1.0]", ("Sigmoid: first layer", "Sigmoid: primeira camada")],
    "to_tensor": [
        "x: (3, 32, 48) torch.float32",
        ("per-channel mean after:  [0.0, 0.0, 0.0]", "média por canal depois:  [0.0, 0.0, 0.0]"),
    ],
    "fine_tuning": [
        ("trainable parameters: 99 of 1443", "parâmetros treináveis: 99 de 1443"),
        ("backbone unchanged: True | head changed: True", "backbone inalterado: True | cabeça mudou: True"),
    ],
    "own_model": [
        ("parameters: 7740", "parâmetros: 7740"),
        ("output for a batch of 2 images: (2, 10)", "saída para um lote de 2 imagens: (2, 10)"),
        ("test accuracy after one epoch", "acurácia de teste após uma época"),
        "name: my_models.py:FashionMNISTModelV2\n  args:\n    input_shape: 1",  # the model's section alone
        "file_sha256:",
        "FashionMNISTModelV2 returned Bx5",
    ],
    "why_validation": [
        (
            "chosen on test: test 85.8%, fresh data 80.0%",
            "escolhido no teste: teste 85.8%, dados novos 80.0%",
        ),
        ("chosen on validation: test 80.2%", "escolhido na validação: teste 80.2%"),
    ],
    "own_data": [
        ("items: 6000 + 1000", "itens: 6000 + 1000"),
        ("one item: (1, 28, 28) torch.uint8 label 9", "um item: (1, 28, 28) torch.uint8 rótulo 9"),
        "python:FashionMNIST: given in Python: 6,000 train, 1,000 test items of (1, 28, 28) uint8",
        ("on python:FashionMNIST", "em python:FashionMNIST"),
        "data=: train item 7's input is (1, 20, 28) torch.uint8",
    ],
    "pretrained": [
        (
            "mobilenet_v2-b0353104.pth tensors: 314 sha256: b0353104",
            "mobilenet_v2-b0353104.pth tensores: 314 sha256: b0353104",
        ),
        ("features per image: (8, 1280)", "atributos por imagem: (8, 1280)"),
        ("trainable parameters: 3843", "parâmetros treináveis: 3843"),
        ("batch norm statistics unchanged: True", "estatísticas da batch norm inalteradas: True"),
        ("rates per group: [0.001, 0.0001]", "taxas por grupo: [0.001, 0.0001]"),
    ],
    "embeddings_rnn": [
        (
            "vocabulary: ['<pad>', ' ', 'a', 'c', 'e', 'h', 's', 't']",
            "vocabulário: ['<pad>', ' ', 'a', 'c', 'e', 'h', 's', 't']",
        ),
        "ids: [7, 5, 4, 1, 3, 2, 7, 1, 6, 2, 7]",
        ("the loop gives nn.RNN's outputs: True", "o laço dá as saídas do nn.RNN: True"),
        ("steps whose state changed: 11 of 11", "passos cujo estado mudou: 11 de 11"),
        ("GRU parameters: 81 RNN parameters: 27", "parâmetros da GRU: 81 parâmetros da RNN: 27"),
    ],
    "padding": [
        (
            "batch: [[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 8]] lengths: [3, 6]",
            "lote: [[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 8]] tamanhos: [3, 6]",
        ),
        ("last position == alone: False", "última posição == sozinho: False"),
        ("its own last position == alone: True", "sua própria última posição == sozinho: True"),
        ("backward direction, padded == alone: False", "direção de trás, com padding == sozinho: False"),
    ],
    "generating": [
        (
            "vocabulary size: 9 perplexity after training: 1.0",
            "tamanho do vocabulário: 9 perplexidade depois do treino: 1.0",
        ),
        ("temperature 0: 'hello world. hell'", "temperatura 0: 'hello world. hell'"),
    ],
}


NEEDS_TOCHA = {
    "own_model",
    "own_data",
    "pretrained",
}  # train with tocha itself: their exported copies need tocha


def run_file(path: Path, lang: str, python: str = sys.executable) -> subprocess.Popen:
    """The lesson as `run_lesson` runs it, with its output captured."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" or python == sys.executable}
    env.update({"TOCHA_LESSON_LANG": lang, "PYTHONIOENCODING": "utf-8"})
    return subprocess.Popen([python, str(path)], env=env, stdout=subprocess.PIPE, cwd=path.parent,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8")  # fmt: skip


@pytest.fixture(scope="module")
def without_tocha(tmp_path_factory) -> str:
    """A fresh virtual environment's Python that has torch and NumPy (this environment's packages,
    by a .pth line) but not tocha: the .pth files that install tocha are not read from there."""
    import site
    import venv

    root = tmp_path_factory.mktemp("venv-without-tocha")
    venv.EnvBuilder(with_pip=False).create(root)
    python = str(root / "bin" / "python")
    packages = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], text=True,
                              capture_output=True, check=True).stdout.strip()  # fmt: skip
    Path(packages, "this-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import torch, numpy\ntry:\n import tocha\nexcept ImportError:\n print('no tocha')"
    check = subprocess.run([python, "-c", probe], text=True, capture_output=True, env=env, cwd=root)
    assert check.stdout.strip() == "no tocha", check.stderr
    return python


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_lesson_runs_and_checks_itself_in_both_languages(name, tmp_path, without_tocha, monkeypatch):
    """In English as installed, as `tocha lesson run` runs it; in Portuguese as `tocha lesson export`
    writes it, in an environment without tocha (torch and NumPy are all it needs). The pretrained
    lesson finds torchvision's ImageNet file in torch's cache, where a download would put it."""
    if name == "pretrained":
        weights = SHARED_DATA / "weights" / "mobilenet_v2-b0353104.pth"
        if not weights.is_file():
            message = f"{weights} is not here (torchvision's ImageNet MobileNetV2, the shared data)"
            pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
        (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
        shutil.copy(weights, tmp_path / "torch" / "hub" / "checkpoints" / weights.name)
        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    lesson = find_lesson(name)
    exported = export_lesson(name, tmp_path)
    outputs = {}
    portable = sys.executable if name in NEEDS_TOCHA else without_tocha
    # One after the other: side by side, their torch threads fight for the cores.
    for lang, path, python in (("en", lesson.path, sys.executable), ("pt", exported, portable)):
        proc = run_file(path, lang, python)
        outputs[lang] = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, f"{name} in {lang} failed:\n{outputs[lang]}"
    assert outputs["en"] != outputs["pt"]
    for expected in EXPECTED[name]:
        en, pt = (expected, expected) if isinstance(expected, str) else expected
        assert en in outputs["en"] and pt in outputs["pt"], expected


def test_every_lesson_has_its_expected_output_listed():
    assert [lesson.name for lesson in list_lessons()] == list(EXPECTED)


def test_run_lesson_streams_the_output_in_the_chosen_language(capfd):
    assert run_lesson("squeeze", lang="pt") == 0
    out = capfd.readouterr().out
    assert "Camadas esperam entradas" in out and "x.unsqueeze(0).shape = (1, 4)" in out


@pytest.fixture
def broken_lessons(tmp_path, monkeypatch):
    """A lessons folder holding one lesson whose claim is false."""
    (tmp_path / "01_broken.py").write_text('# %%\n"""Broken.\n\nen: Broken\npt: Quebrada\n"""\n\n'
                                           "from tocha.lessons.text import say\n\n# %%\n"
                                           'print("before")\ntwo = 1 + 1\nassert two == 3\n')  # fmt: skip
    monkeypatch.setattr(tocha.lessons, "LESSONS_DIR", tmp_path)
    return tmp_path


def test_a_false_claim_makes_the_run_fail(broken_lessons, capfd):
    assert run_lesson("broken") != 0
    captured = capfd.readouterr()
    assert "before" in captured.out and "AssertionError" in captured.err
    # The claim as written and the values in it, not a bare AssertionError alone.
    assert captured.err.endswith("A claim of this lesson did not hold:\n    two == 3\n    two = 2\n")
    assert run_lesson("broken", lang="pt") != 0
    assert "Uma afirmação desta lição não se confirmou:\n    two == 3\n    two = 2" in capfd.readouterr().err


def test_a_lesson_without_titles_is_refused(broken_lessons):
    (broken_lessons / "02_untitled.py").write_text('"""No titles here."""\n')
    with pytest.raises(TochaError, match="en: <title>"):
        list_lessons()


def test_the_list_is_numbered_and_titled_in_both_languages():
    lessons = list_lessons()
    assert len(lessons) == 20
    assert [lesson.number for lesson in lessons] == list(range(1, 21))
    assert len({lesson.name for lesson in lessons}) == 20
    for lesson in lessons:
        assert lesson.title_en and lesson.title_pt and lesson.title_en != lesson.title_pt
        assert lesson.path.name == f"{lesson.number:02d}_{lesson.name}.py"


def test_find_by_name_or_number():
    assert find_lesson("regression_loop").number == 6
    assert find_lesson(6).name == find_lesson("6").name == find_lesson("06").name == "regression_loop"


def test_an_unknown_name_lists_the_lessons():
    with pytest.raises(TochaError) as error:
        find_lesson("tensor")  # close, but not a name
    assert all(lesson.name in str(error.value) for lesson in list_lessons())
    with pytest.raises(TochaError):
        find_lesson(21)


def test_export_to_a_folder_a_file_and_the_current_folder(tmp_path, monkeypatch):
    source = tocha.lessons.standalone(find_lesson("softmax").path.read_text(encoding="utf-8"))
    assert not re.search(r"^\s*(import|from) tocha", source, flags=re.M) and "def say(" in source
    written = export_lesson("softmax", tmp_path)
    assert written == tmp_path / "08_softmax.py" and written.read_text(encoding="utf-8") == source
    assert export_lesson(8, tmp_path / "sub" / "mine.py").read_text(encoding="utf-8") == source
    monkeypatch.chdir(tmp_path / "sub")
    assert export_lesson("softmax").resolve() == (tmp_path / "sub" / "08_softmax.py").resolve()
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary file left behind


def test_export_never_overwrites(tmp_path):
    mine = tmp_path / "08_softmax.py"
    mine.write_text("my edited copy\n")
    for dest in (tmp_path, mine):
        with pytest.raises(TochaError, match="already exists"):
            export_lesson("softmax", dest)
    assert mine.read_text() == "my edited copy\n"


def test_an_unknown_language_is_refused(capsys):
    with pytest.raises(TochaError, match="en or pt"):
        run_lesson("tensors", lang="fr")
    with pytest.raises(SystemExit) as exit_:
        cli(["lesson", "run", "tensors", "--lang", "fr"])
    assert exit_.value.code == 2
    assert "'en', 'pt'" in capsys.readouterr().err


def test_say_follows_the_environment(monkeypatch, capsys):
    for value, expected in (("pt", "olá"), ("pt_BR", "olá"), ("en", "hello"), ("", "hello")):
        monkeypatch.setenv("TOCHA_LESSON_LANG", value)
        say("hello", "olá")
        assert capsys.readouterr().out.strip() == expected


def cli(argv: list[str]) -> int:
    """`tocha ARGV` for the lesson commands alone."""
    parser = argparse.ArgumentParser(prog="tocha")
    add_lesson_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_the_list_command_in_each_language(capsys, monkeypatch):
    monkeypatch.delenv("TOCHA_LESSON_LANG", raising=False)
    assert cli(["lesson", "list"]) == 0
    english = capsys.readouterr().out.splitlines()
    assert cli(["lesson", "list", "--lang", "pt"]) == 0
    portuguese = capsys.readouterr().out.splitlines()
    assert len(english) == len(portuguese) == 20
    assert english[0].split()[:2] == portuguese[0].split()[:2] == ["1", "tensors"]
    assert english[0] != portuguese[0] and "Tensores" in portuguese[0]


def test_the_export_command_says_where_it_wrote(tmp_path, capsys):
    assert cli(["lesson", "export", "devices", str(tmp_path)]) == 0
    assert str(tmp_path / "09_devices.py") in capsys.readouterr().out


def test_importing_the_lessons_imports_no_torch():
    code = "import sys, tocha.lessons, tocha.cli_lesson; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("lesson", list_lessons(), ids=lambda lesson: lesson.name)
def test_each_lesson_is_a_percent_format_notebook(lesson):
    lines = lesson.path.read_text(encoding="utf-8").splitlines()
    cells = [line for line in lines if re.fullmatch(r"# %%( \[markdown\])?", line)]
    assert len(cells) >= 2
    assert lines[0] == "# %%"  # the docstring and imports are the first cell
    assert len(lines) <= 300


def test_exporting_a_lesson_never_replaces_a_file_that_appears_meanwhile(tmp_path, monkeypatch):
    """The target is created exclusively: a file that appears between the check and the write (a
    race) is never replaced."""
    import os

    from tocha.errors import TochaError
    from tocha.lessons import export_lesson

    target = tmp_path / "mine.py"
    real_open = os.open

    def appearing(path, flags, *args):  # the file shows up at the last moment, as another process's would
        if Path(path) == target and not target.exists():
            target.write_text("the learner's edits")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", appearing)
    with pytest.raises(TochaError, match="already exists"):
        export_lesson(1, target)
    assert target.read_text() == "the learner's edits"
