"""A checkpoint that carries tocha's marker but damaged contents is refused when it is read, by
every command, with the problem named: never trained, evaluated or predicted from."""

from __future__ import annotations

import pytest
import torch
from helpers import run_main

from tocha.runs.checkpoint import CHECKPOINT_NAME


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    result = run_main(
        "train", "--data", "iris", "--model", "mlp", "--epochs", "1", "--out", out, "--name", "r"
    )
    assert result.returncode == 0, result.stderr
    return out / "r"


def damaged(run, tmp_path, change) -> object:
    ckpt = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    change(ckpt)
    folder = tmp_path / "damaged"
    folder.mkdir()
    torch.save(ckpt, folder / CHECKPOINT_NAME)
    (folder / "config.yaml").write_text((run / "config.yaml").read_text())
    return folder


def nan_weight(ckpt):
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = ckpt["model"][name].clone().fill_(float("nan"))


def zero_std(ckpt):
    ckpt["normalization"]["std"][0] = 0.0


def stopped_on_one_sample(ckpt):
    """The stopped epoch's order all zeros: it would train on one sample over and over."""
    state = ckpt["training_state"]
    n = state["train_size"]
    ckpt["finished"] = False
    ckpt["config"]["train"]["epochs"] = 2
    state["epoch_progress"] = {"order": torch.zeros(n, dtype=torch.long), "steps_done": 1,
                               "loss_sum": torch.zeros(()), "correct": torch.zeros((), dtype=torch.long),
                               "first_bad_step": torch.tensor(-1), "seconds": 0.0}  # fmt: skip


def names_not_strings(ckpt):
    ckpt["classes"] = [1, 2, 3]


CASES = {
    "nan weight": (nan_weight, "holds NaN or infinite values"),
    "zero std": (zero_std, "a std that is not positive"),
    "order not a permutation": (stopped_on_one_sample, "is not a permutation of the training samples"),
    "class names": (names_not_strings, "class names are not a list of names"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_contents_are_refused_by_every_command(run, tmp_path, case):
    change, fragment = CASES[case]
    folder = damaged(run, tmp_path, change)
    rows = tmp_path / "rows.csv"
    rows.write_text("sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,3.5,1.4,0.2\n")
    for command in (["evaluate", folder], ["predict", folder, rows], ["train", "--resume", folder],
                    ["export", folder, "--format", "safetensors"]):  # fmt: skip
        result = run_main(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "damaged or was not written by tocha" in result.stderr and fragment in result.stderr, (
            result.stderr
        )
        assert "Traceback" not in result.stderr


def test_a_file_torch_cannot_load_is_described_in_words(run, tmp_path):
    cases = {
        "empty.pt": (b"", "the file is empty"),
        "random.pt": (b"i\x00\x01 not a checkpoint", "this file is not one"),
        "cut.pt": ((run / CHECKPOINT_NAME).read_bytes()[:2000], "cut short or damaged"),
    }
    for name, (content, fragment) in cases.items():
        (tmp_path / name).write_bytes(content)
        result = run_main("evaluate", tmp_path / name)
        assert result.returncode == 2 and fragment in result.stderr, result.stderr
        assert "miniz" not in result.stderr and "PyTorch 2.6" not in result.stderr
