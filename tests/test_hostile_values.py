"""Values and files no run can use, refused before any work with one line naming them: out-of-range
options, hostile YAML, sizes that would not fit in memory, FIFOs, links out of a dataset folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from helpers import REPO, run_main, write_image_folder

from tocha.runs.checkpoint import CHECKPOINT_NAME

OUT_OF_RANGE = {
    "hidden sizes": (["--model", "mlp", "--hidden-sizes", "-5"], "model.hidden_sizes"),
    "hidden units 0": (["--hidden-units", "0"], "model.hidden_units"),
    "hidden units -3": (["--hidden-units", "-3"], "model.hidden_units"),
    "resnet widths": (["--model", "resnet", "--widths", "1,2"], "model.widths"),
    "huge seed": (["--seed", "99999999999999999999999"], "train.seed"),
    "momentum": (["--momentum", "-1"], "train.momentum"),
    "threads 4096": (["--threads", "4096"], "train.threads"),
    "mean nan": (["--mean", "nan", "--std", "0.3"], "data.mean"),
    "std 1e-300": (["--mean", "0.1", "--std", "1e-300"], "data.std"),
    "collective timeout 0": (["--collective-timeout", "0"], "train.collective_timeout"),
    "image size 1,2,3": (["--image-size", "1,2,3"], "data.image_size"),
    "image size 0": (["--image-size", "0"], "data.image_size"),
    "image size 20000x20000": (["--image-size", "20000x20000"], "data.image_size"),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_out_of_range_options_are_refused_before_any_work(tmp_path, case):
    flags, key = OUT_OF_RANGE[case]
    result = run_main("train", "--data", "mnist-sample", *flags, "--out", tmp_path / "runs")
    assert result.returncode == 2 and key in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_non_positive_batch_size_or_top_k_is_a_usage_error(tmp_path):
    for command in (["evaluate", tmp_path, "--batch-size", "0"], ["evaluate", tmp_path, "--batch-size", "-5"],
                    ["predict", tmp_path, "x.png", "--top-k", "0"]):  # fmt: skip
        result = run_main(*command)
        assert result.returncode == 2 and "must be at least 1" in result.stderr


def test_hostile_yaml_is_bounded_in_time_memory_and_output(tmp_path):
    levels = ["&a [x, x, x, x, x, x, x, x, x]"] + [
        f"&{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)
    ]  # the last holds 9^9 = 387 million items once expanded
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("data:\n  name: [" + ", ".join(levels) + "]\n")
    started = time.monotonic()
    result = run_main("train", "--config", bomb)
    assert result.returncode == 2 and "anchors and aliases" in result.stderr
    assert time.monotonic() - started < 10 and len(result.stderr) < 600
    deep = tmp_path / "deep.yaml"
    deep.write_text("data:\n  name: " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_main("train", "--config", deep)
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(result.stderr) < 600
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    result = run_main("train", "--config", big)
    assert result.returncode == 2 and "is not a run config" in result.stderr


def test_yaml_aliases_are_refused_and_no_config_is_written_that_its_run_cannot_read(tmp_path):
    """`model.args` built of aliases (a few hundred bytes, 9^6 items once expanded) kept `train`
    busy for 40 s; now aliases are refused as they are read, from a file or a flag, in one line. A
    config too large to be read back (2 MB of model arguments) is refused before any run folder, and
    what tocha writes never holds an alias (PyYAML writes one for a list found twice)."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(5)
    ]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("model:\n  name: net.py:Net\n  args:\n" + "".join(f"    {line}\n" for line in levels))
    started = time.monotonic()
    report = tmp_path / "report"
    for command in (["train", "--config", bomb, "--out", tmp_path / "runs"],
                    ["train", "--model-arg", "sizes=&s [1, 2]", "--out", tmp_path / "runs"],
                    ["compare", "--vary", "hidden_sizes=[&h [8], *h]", "--out", report]):  # fmt: skip
        result = run_main(*command)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "anchors and aliases" in result.stderr.strip().splitlines()[-1], (command, result.stderr)
    assert time.monotonic() - started < 10
    big = tmp_path / "big-args.yaml"
    big.write_text(
        "model:\n  name: net.py:Net\n  args:\n    w: [" + ", ".join(["123456789"] * 90_000) + "]\n"
    )
    result = run_main("train", "--config", big, "--out", tmp_path / "runs")
    assert result.returncode == 2 and "more than the 1,048,576 a config may have" in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "report").exists()

    from tocha.config import RunConfig, load_config, to_yaml

    config = RunConfig()
    config.data.mean = config.data.std = [0.5]  # one list object in two places
    (tmp_path / "written.yaml").write_text(to_yaml(config))
    assert "&" not in to_yaml(config) and load_config(tmp_path / "written.yaml").data.std == [0.5]


def test_sizes_that_would_not_fit_are_refused_with_the_size(tmp_path):
    started = time.monotonic()
    huge = ["--data", "mnist-sample", "--model", "mlp", "--hidden-sizes", "10000000,10000000"]
    for command in (["train", *huge, "--out", tmp_path / "runs"], ["summary", *huge]):
        result = run_main(*command)
        assert result.returncode == 2 and "GiB of memory" in result.stderr, result.stderr
    assert time.monotonic() - started < 30 and not (tmp_path / "runs").exists()
    result = run_main(
        "train", "--data", "mnist-sample", "--augment-translate", "100000", "--out", tmp_path / "runs"
    )
    assert result.returncode == 2 and "must be smaller than the images (28x28)" in result.stderr
    assert not (tmp_path / "runs").exists()
    result = run_main("data", "show", "mnist-sample", "--per-class", "100000", "--out", tmp_path / "x.png")
    assert result.returncode == 2 and "--per-class must be 1 to" in result.stderr


def test_a_checkpoint_declaring_huge_layers_is_refused_before_building_them(tmp_path):
    trained = run_main(
        "train", "--data", "iris", "--model", "mlp", "--epochs", "1", "--out", tmp_path, "--name", "r"
    )
    assert trained.returncode == 0, trained.stderr
    ckpt = torch.load(tmp_path / "r" / CHECKPOINT_NAME, weights_only=True)
    ckpt["config"]["model"]["hidden_sizes"] = [1_000_000, 1_000_000]  # 4 TB if it were built
    torch.save(ckpt, tmp_path / "r" / CHECKPOINT_NAME)
    started = time.monotonic()
    result = run_main("evaluate", tmp_path / "r")
    assert (
        result.returncode == 2
        and "the weights do not fit mlp (1.weight (128, 4) where the model has (1000000, 4);" in result.stderr
    ), result.stderr
    assert time.monotonic() - started < 20


def test_predict_refuses_a_fifo_instead_of_hanging(tmp_path):
    trained = run_main("train", "--data", "mnist-sample", "--model", "linear", "--epochs", "1",
                       "--train-limit", "200", "--out", tmp_path, "--name", "r")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-m", "tocha", "predict", str(tmp_path / "r"), str(fifo)],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 2 and "not a regular file" in done.stderr


def test_links_out_of_a_dataset_folder_are_left_out_and_said(tmp_path):
    root = tmp_path / "data"
    write_image_folder(root, {"cat": 6, "dog": 6}, size=(8, 8))
    (root / "everything").symlink_to("/")  # a class folder that is the whole filesystem
    (root / "cat" / "outside.png").symlink_to(tmp_path / "elsewhere.png")
    write_image_folder(tmp_path / "elsewhere", {"x": 1}, size=(8, 8))
    (tmp_path / "elsewhere" / "x" / "0.png").rename(tmp_path / "elsewhere.png")
    result = run_main("train", "--data", root, "--model", "linear", "--epochs", "1",
                      "--out", tmp_path / "runs", "--name", "r")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "left out 2 links that lead out of" in result.stdout and "--follow-symlinks" in result.stdout
    assert (
        "[8 train / 2 val" in result.stdout and "/ 2 test" in result.stdout
    )  # the 12 real images, 2 classes


def test_every_file_read_must_be_a_regular_file(tmp_path):
    """A FIFO hangs a read and /dev/zero never ends one (its size, 0, passes a size check): a config,
    a table, a checkpoint, an export or a comparison's record that is not a regular file is refused
    at once, in a real process with a time limit."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    commands = {
        "config FIFO": ["train", "--config", str(fifo)],
        "config /dev/zero": ["train", "--config", "/dev/zero"],
        "table FIFO": ["train", "--data", str(tmp_path / "rows.csv"), "--target", "y"],
        "checkpoint FIFO": ["evaluate", str(fifo)],
        "init-from /dev/zero": ["train", "--data", "iris", "--init-from", "/dev/zero"],
        "serve FIFO": ["serve", str(fifo)],
    }
    os.mkfifo(tmp_path / "rows.csv")
    for what, args in commands.items():
        out = ["--out", str(tmp_path / "runs")] if args[0] == "train" else []
        done = subprocess.run([sys.executable, "-m", "tocha", *args, *out], capture_output=True, text=True,
                              timeout=60, env=env)  # fmt: skip
        assert done.returncode == 2 and "not a regular file" in done.stderr, (what, done.stderr)
    assert not (tmp_path / "runs").exists()


def test_activations_that_cannot_fit_are_refused_before_any_is_taken(tmp_path):
    """ResNet on images resized to 1500x1500 at batch 32 grew to 24 GB before the kernel killed
    it: its activations (about 221 GiB here) are estimated on the meta device and refused with the
    size, in a child whose address space is limited to 6 GiB (it would die, not refuse, otherwise)."""
    import resource

    write_image_folder(tmp_path / "big", {"cat": 3, "dog": 3}, size=(8, 8), mode="RGB")

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = ["train", "--data", str(tmp_path / "big"), "--model", "resnet", "--image-size", "1500x1500",
            "--batch-size", "32", "--out", str(tmp_path / "r")]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "tocha", *args], capture_output=True, text=True, timeout=120,
                          env=env, preexec_fn=limited)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "training resnet on batches of 32 at 1500x1500 needs about" in done.stderr
    assert "smaller --batch-size" in done.stderr and not (tmp_path / "r").exists()


def test_a_thousand_classes_draw_their_confusion_matrix(tmp_path):
    """1,000 classes made the figure a 550-inch square (MemoryError after training, no summary.json):
    beyond 30 classes it is an image of fixed size without text in its cells."""
    rows = "".join(f"{i % 13},{(i * 7) % 11},c{i % 1000:04d}\n" for i in range(2000))
    (tmp_path / "many.csv").write_text("a,b,kind\n" + rows)
    # Two rows a class: none to spare for a validation split.
    result = run_main("train", "--data", tmp_path / "many.csv", "--target", "kind", "--model", "linear",
                      "--val-fraction", "0", "--epochs", "1", "--out", tmp_path / "runs",
                      "--name", "r")  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "r"
    assert (run / "summary.json").is_file()
    from PIL import Image

    with Image.open(run / "confusion_matrix.png") as figure:
        assert max(figure.size) < 3000
