"""The dataset registry: name -> files, checksums, mirrors, classes, licence.

Pure data, importable without torch, so `tocha data list` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tocha.errors import TochaError

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True)
class DataFile:
    """One published file. `md5` is of the decompressed content when `content_md5` is true."""

    name: str
    md5: str
    content_md5: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    format: str  # "idx" or "cifar10"
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    sizes: tuple[int, int]  # (train, test)
    files: tuple[DataFile, ...]
    mirrors: tuple[str, ...] = ()
    extra_dirs: tuple[Path, ...] = ()
    licence: str = ""
    citation: str = ""
    notes: str = ""
    sample_of: str | None = None  # a bundled subset names its full dataset
    mirror_note: str = ""  # what a left-right mirror does to an image, where it makes another class


DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")  # fmt: skip
IDX_ROLES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # fmt: skip


def _idx_files(*md5s: str) -> tuple[DataFile, ...]:
    return tuple(DataFile(name, md5) for name, md5 in zip(IDX_ROLES, md5s, strict=True))


MNIST_LICENCE = "Y. LeCun, C. Cortes, C. Burges; commonly distributed under CC BY-SA 3.0"
FASHION_LICENCE = "MIT, Copyright (c) 2017 Zalando SE"

_SPECS = [
    DatasetSpec(
        name="mnist",
        title="MNIST handwritten digits, 28x28 grayscale",
        format="idx",
        classes=DIGITS,
        image_shape=(1, 28, 28),
        sizes=(60000, 10000),
        files=_idx_files(
            "6bbc9ace898e44ae57da46a324031adb",
            "a25bea736e30d166cdddb491f175f624",
            "2646ac647ad5339dbf082846283269ea",
            "27ae3e4e09519cfbb04c329615203637",
        ),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        licence=MNIST_LICENCE,
        mirror_note="a mirrored digit is another symbol (a mirrored 2 is no 2)",
    ),
    DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando) clothing images, 28x28 grayscale",
        format="idx",
        classes=FASHION,
        image_shape=(1, 28, 28),
        sizes=(60000, 10000),
        files=_idx_files(
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "9018921c3c673c538a1fc5bad174d6f9",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        extra_dirs=(Path("/usr/share/datasets/fashion-mnist"),),  # Debian: dataset-fashion-mnist
        licence=FASHION_LICENCE,
    ),
    DatasetSpec(
        name="cifar10",
        title="CIFAR-10 natural images, 32x32 RGB",
        format="cifar10",
        classes=CIFAR10,
        image_shape=(3, 32, 32),
        sizes=(50000, 10000),
        files=(DataFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", content_md5=False),),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        licence="see the dataset's home page; cite the paper below",
        citation='A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009',
        notes="Also read from an extracted cifar-10-batches-py/ folder, or from class folders "
        "train/<class>/*.jpg and test/<class>/*.jpg (e.g. a JPEG copy: not pixel-exact).",
    ),
]


def _bundled_sample(full: DatasetSpec, sizes: tuple[int, int], md5s: tuple[str, ...]) -> DatasetSpec:
    """The subset shipped in the package: the first `sizes` train/test images of `full`."""
    name = f"{full.name}-sample"
    return replace(
        full,
        name=name,
        title=f"Bundled subset of {full.title.split()[0]}: "
        f"first {sizes[0]} train and first {sizes[1]} test images",
        sizes=sizes,
        files=_idx_files(*md5s),
        mirrors=(),
        extra_dirs=(BUNDLED_DIR / name,),
        sample_of=full.name,
    )


_FULL = {spec.name: spec for spec in _SPECS}
_SPECS += [
    _bundled_sample(_FULL["fashion-mnist"], (6000, 1000), (
        "174027b45d9c18b5bf34036a99be55c5", "21f0b9bf5f1a9e1079b2c84108c667f6",
        "8a1b719f9f0735f54c6f9ef07f01fe5c", "e27076c4666f2f7b7b7ba19675567282")),
    _bundled_sample(_FULL["mnist"], (4000, 1000), (
        "9630519117e048099779a2410d759734", "808e66f954a4ea197b6920b3a84e41e7",
        "bac4371a484d0b5651e81d99305acb5a", "556860b2f10365a8f7444c1e79c7e9af")),
]  # fmt: skip

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset `name`, or an error listing the valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        from tocha.data.given import is_given_name, not_on_disk
        from tocha.data.tables import SYNTHETIC, TABLES

        if is_given_name(name):
            raise not_on_disk(name) from None

        raise TochaError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}; tables: "
            f"{', '.join([*TABLES, *SYNTHETIC])} (or give the path of an image folder or a .csv / .tsv table)"
        ) from None
