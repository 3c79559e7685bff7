"""Backbones pretrained on ImageNet: torchvision's own MobileNetV2 file found in torch's hub cache (or
downloaded there from a real HTTP server), loaded key for key, seeing ImageNet in real photos; a
pretrained run with its recipe, its ImageNet normalisation, its export and its linear probe; and
every bad weights file refused in one line with nothing written."""

from __future__ import annotations

import functools
import http.server
import io
import os
import pickle
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import SHARED_DATA, run_main
from PIL import Image

from tocha.errors import TochaError
from tocha.models import create_model
from tocha.models.pretrained import IMAGENET_URLS, load_pretrained, read_pretrained

WEIGHTS = SHARED_DATA / "weights" / "mobilenet_v2-b0353104.pth"
CIFAR = SHARED_DATA / "cifar10-jpeg-q75.tar.gz"
DOGS = range(151, 269)  # ImageNet's dog breeds


def needed(path: Path) -> Path:
    """A file of the shared data: skipped with the reason where it is absent, failed under CI=true."""
    if not path.is_file():
        message = f"{path} is not here (the shared data folder: torchvision's ImageNet weights, CIFAR photos)"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    return path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A TORCH_HOME whose hub cache holds torchvision's file, where a download would have put it."""
    home = tmp_path / "torch-home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    shutil.copy(needed(WEIGHTS), home / "hub" / "checkpoints" / WEIGHTS.name)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def photos(classes: tuple[str, ...], per_class: int, *, skip: int = 0) -> dict[str, list[Image.Image]]:
    """Real CIFAR-10 test photos (32x32 JPEG), `per_class` of each class after the first `skip`."""
    found: dict[str, list[Image.Image]] = {c: [] for c in classes}
    with tarfile.open(needed(CIFAR)) as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) == 3 and parts[0] == "test" and parts[1] in found and int(parts[2][:4]) >= skip:
                if len(found[parts[1]]) < per_class:
                    found[parts[1]].append(
                        Image.open(io.BytesIO(archive.extractfile(member).read())).convert("RGB")
                    )
            if all(len(v) == per_class for v in found.values()):
                return found
    raise AssertionError("the archive holds fewer photos than asked")


def photo_folder(root: Path, train: int, test: int) -> Path:
    """An image folder of real photos: train/ and test/ of three classes."""
    classes = ("dog", "automobile", "ship")
    for split, (n, skip) in {"train": (train, 0), "test": (test, 500)}.items():
        for name, images in photos(classes, n, skip=skip).items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                image.save(root / split / name / f"{i:04d}.png")
    return root


def test_torchvisions_file_is_found_in_the_hub_cache_loads_key_for_key_and_sees_dogs(torch_home):
    weights = read_pretrained("mobilenet_v2", "imagenet")
    assert weights.path == torch_home / "hub" / "checkpoints" / WEIGHTS.name and weights.sha256.startswith(
        "b0353104"
    )
    model = create_model("mobilenet_v2", (3, 224, 224), 1000)
    assert model.load_state_dict(weights.weights, strict=True)  # torchvision's names and shapes, all of them
    assert "every weight loaded" in load_pretrained(model, weights, "test")
    model.eval()
    dogs = photos(("dog",), 20)["dog"]
    x = torch.stack([torch.from_numpy(np.array(p.resize((224, 224), Image.BILINEAR))) for p in dogs])
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        top1 = model((x.permute(0, 3, 1, 2).float() / 255 - mean) / std).argmax(1)
    assert sum(int(c) in DOGS for c in top1) >= 12  # chance (118 of 1,000 classes) would give about 2 of 20


def test_a_pretrained_run_brings_its_contract_and_recipe_exports_and_has_a_linear_probe(
    torch_home, tmp_path, monkeypatch
):
    folder = photo_folder(tmp_path / "photos", train=12, test=4)
    monkeypatch.chdir(tmp_path)  # the commands run in this process (each has its real-process tests)
    done = run_main(
        "compare",
        "--data",
        str(folder),
        "--model",
        "mobilenet_v2",
        "--pretrained",
        "imagenet",
        "--image-size",
        "32x32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--seeds",
        "1",
        "--vary",
        "lr=0.003",
        "--baselines",
        "linear_probe",
        "--out",
        str(tmp_path / "report"),
    )
    assert done.returncode == 0, done.stderr
    assert "baseline linear_probe: validation" in done.stdout
    (run,) = (tmp_path / "report").glob("runs/*/")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["pretrained"] == "imagenet" and config["model"]["pretrained_sha256"].startswith(
        "b0353104"
    )
    assert config["data"]["mean"] == [0.485, 0.456, 0.406] and config["data"]["std"] == [0.229, 0.224, 0.225]
    assert (config["train"]["freeze"], config["train"]["freeze_epochs"], config["train"]["schedule"]) == (
        "backbone",
        1,
        "onecycle",
    )
    exported = run_main("export", str(run), "--format", "onnx")
    assert exported.returncode == 0, exported.stderr
    asked = run_main("predict", str(run / "model.onnx"), str(folder / "test" / "dog" / "0000.png"))
    assert asked.returncode == 0 and "dog" in asked.stdout  # the class names, from the export's own metadata


def test_the_head_alone_trains_first_then_the_backbone_at_its_share(torch_home, tmp_path):
    import tocha

    folder = photo_folder(tmp_path / "photos", train=6, test=2)
    lines: list[str] = []
    first = tocha.train(
        data=str(folder),
        model="mobilenet_v2",
        pretrained="imagenet",
        image_size=[32, 32],
        epochs=1,
        batch_size=8,
        out_dir=str(tmp_path / "runs"),
        log=lines.append,
        progress=False,
    )
    assert any(line.startswith("fine-tuning: the head alone for 1 epoch") for line in lines)
    loaded = (
        "312 tensors loaded from mobilenet_v2-b0353104.pth (SHA-256 b03531047ffa...); the head classifier.1"
    )
    assert any(loaded in line and "(1000 ImageNet classes there, 3 here)" in line for line in lines)
    trained = torch.load(first.run_dir / "checkpoint.pt", weights_only=True)["model"]
    original = torch.load(WEIGHTS, weights_only=True)
    assert all(torch.equal(trained[k], v) for k, v in original.items() if not k.startswith("classifier.1."))
    assert not torch.equal(trained["classifier.1.weight"], torch.zeros_like(trained["classifier.1.weight"]))


def pickle_that_runs_code(path: Path) -> None:
    class Runs:
        def __reduce__(self):  # unpickling this calls os.system: weights_only=True must refuse it
            return (os.system, ("echo pwned",))

    path.write_bytes(pickle.dumps({"features.0.0.weight": Runs()}))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: shutil.copy(WEIGHTS, p / "mobilenet_v2-00000000.pth"),
            "has SHA-256 b03531047ffa..., and its name says 00000000",
        ),
        (
            lambda p: (p / "cut.pth").write_bytes(WEIGHTS.read_bytes()[:100_000]),
            "cannot be read as a state dict",
        ),
        (lambda p: pickle_that_runs_code(p / "code.pth"), "reading it would run code"),
        (
            lambda p: torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, p / "other.pth"),
            "it has no features.0.0.weight",
        ),
    ],
    ids=["hash", "truncated", "code", "architecture"],
)
def test_a_bad_weights_file_is_one_line_exit_2_and_nothing_written(tmp_path, make, message):
    needed(WEIGHTS)
    make(tmp_path)
    (path,) = tmp_path.glob("*.pth")
    done = run_main("train", "--data", "mnist-sample", "--model", "mobilenet_v2", "--pretrained", str(path),
                   "--epochs", "1", "--out", str(tmp_path / "runs"))  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_another_networks_file_names_the_first_key_and_both_shapes(torch_home):
    weights = read_pretrained("mobilenet_v2", "imagenet")
    with pytest.raises(
        TochaError, match=r"features.0.0.weight is \(32, 3, 3, 3\) there, \(16, 3, 3, 3\) here"
    ):
        model = create_model("mobilenet_v2", (3, 64, 64), 10)
        model.features[0][0] = torch.nn.Conv2d(3, 16, 3)
        load_pretrained(model, weights, "--pretrained")
    with pytest.raises(TochaError, match="resnet18 has no ImageNet weights|no such file"):
        read_pretrained("resnet18", "imagenet", urls={})


class Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass


def test_imagenet_weights_are_downloaded_into_the_hub_cache_checked_by_their_name(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(needed(WEIGHTS), served / WEIGHTS.name)
    (served / "mobilenet_v2-deadbeef.pth").write_bytes(WEIGHTS.read_bytes())  # bytes that are not its name's
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Files, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    try:
        got = read_pretrained("mobilenet_v2", "imagenet", urls={"mobilenet_v2": f"{base}/{WEIGHTS.name}"})
        assert got.path == tmp_path / "home" / "hub" / "checkpoints" / WEIGHTS.name and got.sha256.startswith(
            "b0353104"
        )
        with pytest.raises(TochaError, match="could not be downloaded from .*deadbeef.*put the file there"):
            read_pretrained(
                "mobilenet_v2", "imagenet", urls={"mobilenet_v2": f"{base}/mobilenet_v2-deadbeef.pth"}
            )
        assert not (tmp_path / "home" / "hub" / "checkpoints" / "mobilenet_v2-deadbeef.pth").exists()
    finally:
        server.shutdown()
        server.server_close()  # the port refuses from here on
    with pytest.raises(
        TochaError, match=r"resnet18-f37072fd.pth is not in torch's cache .* could not be downloaded from"
    ):
        read_pretrained(
            "resnet18", "imagenet", urls={"resnet18": f"{base}/resnet18-f37072fd.pth"}
        )  # the server is gone
    assert set(IMAGENET_URLS) == {"mobilenet_v2", "resnet18", "resnet34", "resnet50"}


def test_init_from_a_torchvision_file_is_strict_and_partial_names_what_it_skipped(tmp_path):
    needed(WEIGHTS)
    (tmp_path / "nets.py").write_text(
        "from torch import nn\n"
        "from tocha.models.backbone_layers import conv_norm_act\n\n\n"
        "class Small(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.features = nn.Sequential(conv_norm_act(3, 32, stride=2))  # torchvision's first stage\n"
        "        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(512, 10))\n\n"
        "    def forward(self, x):\n"
        "        rgb = x.expand(-1, 3, -1, -1)\n"
        "        return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(rgb), 4))\n"
    )
    model = f"{tmp_path / 'nets.py'}:Small"
    args = ["train", "--data", "mnist-sample", "--model", model, "--init-from", str(WEIGHTS),
            "--epochs", "1", "--train-limit", "200", "--out", str(tmp_path / "runs")]  # fmt: skip
    strict = run_main(*args)
    assert (
        strict.returncode == 2
        and "not in the model" in strict.stderr
        and "--init-from-partial" in strict.stderr
    )
    partial = run_main(*args, "--init-from-partial")
    assert partial.returncode == 0, partial.stderr
    assert "(--init-from-partial): 6 tensors loaded" in partial.stdout
    assert "skipped features.1.conv.0.0.weight: not in the model" in partial.stdout


@pytest.mark.parametrize(
    ("name", "params", "keys", "named"),
    [  # torchvision's weights metadata (`num_params`) and its state dicts' key counts
        ("mobilenet_v2", 3_504_872, 314, {"features.17.conv.2.weight": (320, 960, 1, 1)}),
        ("resnet18", 11_689_512, 122, {"layer4.1.bn2.running_var": (512,), "fc.weight": (1000, 512)}),
        ("resnet34", 21_797_672, 218, {"layer3.5.conv2.weight": (256, 256, 3, 3)}),
        (
            "resnet50",
            25_557_032,
            320,
            {"layer2.0.downsample.0.weight": (512, 256, 1, 1), "fc.weight": (1000, 2048)},
        ),
    ],
)
def test_each_backbone_has_torchvisions_parameters_names_and_shapes(name, params, keys, named):
    model = create_model(name, (3, 224, 224), 1000)
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == params and len(state) == keys
    assert {k: tuple(state[k].shape) for k in named} == named
    gray, rgb = create_model(name, (1, 64, 64), 5).eval(), create_model(name, (3, 64, 64), 5).eval()
    rgb.load_state_dict(gray.state_dict())  # the same weights: a grayscale image is repeated to RGB
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)))


def test_tocha_backbone_gives_the_network_with_its_weights(torch_home):
    import tocha

    said: list[str] = []
    model = tocha.backbone("mobilenet_v2", "imagenet", num_classes=7, log=said.append)
    assert model.get_classifier().out_features == 7 and "the head classifier.1 is new" in said[0]
    original = torch.load(WEIGHTS, weights_only=True)
    assert torch.equal(model.state_dict()["features.18.0.weight"], original["features.18.0.weight"])
    with pytest.raises(TochaError, match="the backbones are mobilenet_v2, resnet18"):
        tocha.backbone("tinyvgg")
    with pytest.raises(TochaError, match="takes images of 1 or 3 channels, not 2"):
        tocha.backbone("resnet18", None, channels=2)
