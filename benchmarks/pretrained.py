"""Fine-tuning an ImageNet backbone on a few real photos: does each part of the recipe earn its place?

    python benchmarks/pretrained.py [--per-class 100] [--size 128] [--epochs 3] [--seeds 0 1 2]

The folder: the first `--per-class` photos of each CIFAR-10 class of the shared JPEG archive's
training split (1,000 by default; 10% of them carved for validation), tested on as many of its test
split's, read at `--size` px. MobileNetV2 (torchvision's, its ImageNet file from torch's hub cache:
`../shared/data/weights/` is copied into a temporary TORCH_HOME when the cache lacks it), Adam at
1e-3, batch 64, one comparison (`compare_cells`: validation ranks, Welch and Holm; the test split
reported) of the cells below over the seeds, with the linear probe (scikit-learn's logistic
regression on the pretrained features) beside them. One JSON line per cell and baseline.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from common import emit, machine
from PIL import Image

from tocha.api import make_config
from tocha.experiments.compare import compare_cells

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CELLS = {  # what each cell changes from the base (the recipe: pretrained, head first, backbone at 0.1x)
    "from scratch": {"model.pretrained": None, "train.freeze": "none", "train.schedule": "onecycle"},
    "recipe": {"train.freeze_epochs": 1},
    "not frozen first": {"train.freeze_epochs": 0},
    "one rate": {"train.backbone_lr_mult": 1.0},
    "every layer at one rate from the start": {"train.freeze": "none"},
}


def photo_folder(root: Path, per_class: int) -> Path:
    """train/ and test/ of `per_class` photos per class, the first of each class in the archive."""
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(SHARED / "cifar10-jpeg-q75.tar.gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) != 3 or not member.isfile() or taken.get((parts[0], parts[1]), 0) >= per_class:
                continue
            taken[(parts[0], parts[1])] = taken.get((parts[0], parts[1]), 0) + 1
            (root / parts[0] / parts[1]).mkdir(parents=True, exist_ok=True)
            image = Image.open(io.BytesIO(archive.extractfile(member).read()))
            image.save(root / parts[0] / parts[1] / parts[2])
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    emit({"benchmark": "pretrained", **machine(), **vars(args)})
    with tempfile.TemporaryDirectory() as work:
        home = Path(os.environ.get("TORCH_HOME", Path(work) / "torch"))
        cached = home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(SHARED / "weights" / cached.name, cached)
        os.environ["TORCH_HOME"] = str(home)
        folder = photo_folder(Path(work) / "photos", args.per_class)
        base = make_config(data=str(folder), model="mobilenet_v2", pretrained="imagenet", epochs=args.epochs,
                           image_size=[args.size, args.size], lr=1e-3, batch_size=64)  # fmt: skip
        result = compare_cells(base, list(CELLS.values()), args.seeds, Path(work) / "report",
                               baselines=["linear_probe"])  # fmt: skip
        for row in result.rows:
            emit(row)
        print((Path(work) / "report" / "table.md").read_text())


if __name__ == "__main__":
    main()
