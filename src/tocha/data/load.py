"""`load_dataset`: a registry name or an image-folder path -> LoadedData (decoded once, cached)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from tocha.config import DataConfig
from tocha.data.archive import extracted, is_archive
from tocha.data.cache import cached_tensors, file_stamp, fingerprint
from tocha.data.checksum import content_md5, file_md5
from tocha.data.cifar import read_cifar10
from tocha.data.download import download_file
from tocha.data.folder import choose_format, load_folder, scan_folder, skipped_warning, unreadable_error
from tocha.data.idx import read_idx_pair
from tocha.data.images import UnreadableImage
from tocha.data.paths import cache_dir, search_roots
from tocha.data.prepared import is_prepared, load_prepared, read_manifest
from tocha.data.registry import DATASETS, DataFile, DatasetSpec, get_spec
from tocha.data.tables import is_table
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.data.text_datasets import is_text_dataset
from tocha.data.text_set import is_text_folder
from tocha.data.train_split import for_training, limit_train
from tocha.errors import ChecksumError, DownloadError, TochaError

AUTO = "auto"
DEFAULT_FULL = "fashion-mnist"


def candidate_dirs(spec: DatasetSpec, data_dir: str | Path | None) -> list[Path]:
    """Every folder that may hold the dataset's files, in the order they are tried."""
    dirs = [root / spec.name for root in search_roots(data_dir)]
    if data_dir:
        dirs.insert(1, Path(data_dir))  # also accept --data-dir pointing at the files themselves
    return dirs + list(spec.extra_dirs)


def looked_in(spec: DatasetSpec, data_dir: str | Path | None) -> str:
    """The searched folders, one per line, for messages, and how to name a copy kept elsewhere."""
    where = "\n  ".join(str(d) for d in candidate_dirs(spec, data_dir))
    return f"{where}\n(a copy elsewhere: --data-dir DIR, or TOCHA_DATA_DIR=DIR, DIR holding {spec.name}/)"


def checksum_of(f: DataFile) -> Callable[[Path], str]:
    """How the file's published md5 was computed: of the decompressed content, or of the file."""
    return content_md5 if f.content_md5 else file_md5


def find_file(folder: Path, f: DataFile) -> Path | None:
    """The file in `folder`, as published or (for content checksums) with/without `.gz`."""
    names = [f.name, f.name + ".gz"] if f.content_md5 else [f.name]
    return next((folder / n for n in names if (folder / n).is_file()), None)


def locate(spec: DatasetSpec, data_dir: str | Path | None) -> dict[str, Path] | Path | None:
    """Paths of all the spec's files in the first folder that has them all; for cifar10 also a
    `cifar-10-batches-py` folder or `train/` + `test/` class folders (returned as one Path)."""
    for folder in candidate_dirs(spec, data_dir):
        found = {f.name: find_file(folder, f) for f in spec.files}
        if all(found.values()):
            return found  # type: ignore[return-value]
        if spec.format == "cifar10":
            for alt in (folder / "cifar-10-batches-py", folder):
                if (alt / "data_batch_1").is_file() or ((alt / "train").is_dir() and (alt / "test").is_dir()):
                    return alt
    return None


def is_available(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether the dataset is on disk already (nothing is downloaded)."""
    return locate(get_spec(name), data_dir) is not None


def _download(spec: DatasetSpec, data_dir: str | Path | None, log: Callable[[str], None]) -> dict[str, Path]:
    dest = cache_dir() / "datasets" / spec.name
    if not spec.mirrors:
        raise TochaError(f"{spec.name}: files missing from {spec.extra_dirs[0]}; reinstall tocha")
    log(f"{spec.name}: not found locally, downloading to {dest}")
    paths = {}
    for f in spec.files:
        remote = f.name + ".gz" if spec.format == "idx" else f.name
        checksum = checksum_of(f)
        try:
            paths[f.name] = download_file(
                remote, spec.mirrors, dest, f.md5, checksum=checksum, progress=True, log=log
            )
        except DownloadError as e:
            raise DownloadError(
                f"{spec.name} is not on this machine and could not be downloaded.\n"
                f"Looked in:\n  {looked_in(spec, data_dir)}\n{e}\n"
                f"Put the files ({', '.join(f.name for f in spec.files)}) in one of those folders, "
                f"or pass --data-dir DIR."
            ) from None
    return paths


def _verify(spec: DatasetSpec, paths: dict[str, Path]) -> None:
    for f in spec.files:
        path = paths[f.name]
        actual = checksum_of(f)(path)
        if actual != f.md5:
            raise ChecksumError(
                f"{path}: checksum mismatch (md5 {actual}, expected {f.md5}); the file is damaged "
                f"or not the official one and was not used. Delete it to download a fresh copy."
            )


def _decode(spec: DatasetSpec, paths: dict[str, Path]) -> dict[str, torch.Tensor]:
    if spec.format == "cifar10":
        arrays = read_cifar10(paths[spec.files[0].name])
        return {k: torch.from_numpy(v) for k, v in arrays.items()}
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = read_idx_pair(
            paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
        )
        out[f"{split}_images"] = torch.from_numpy(images.copy())
        out[f"{split}_labels"] = torch.from_numpy(labels.astype("int64"))
    return out


def load_registered(
    name: str,
    data_dir: str | Path | None = None,
    download: bool = True,
    log: Callable[[str], None] = print,
    *,
    on_bad_image: str = "fail",
) -> LoadedData:
    """Load a registered dataset: find it (or download it), verify checksums, decode, cache.
    `on_bad_image` applies to cifar10 given as class folders of image files."""
    spec = get_spec(name)
    found = locate(spec, data_dir)
    if isinstance(found, Path):  # cifar10 in an extracted form: no published checksum to verify
        if (found / "data_batch_1").is_file():
            stamps = [file_stamp(p) for p in sorted(found.glob("*_batch*"))]
            t = cached_tensors(
                spec.name, fingerprint(stamps), lambda: _decode(spec, {spec.files[0].name: found})
            )
        else:
            # Decode straight to the dataset's own shape: no need to peek at 60,000 headers first.
            channels, height, width = spec.image_shape
            mode = "L" if channels == 1 else "RGB"
            data = load_folder(
                found, (height, width), mode, name=spec.name, on_bad_image=on_bad_image, log=log
            )
            if data.classes != list(spec.classes):
                expected = ", ".join(spec.classes)
                raise TochaError(f"{found}: class folders {data.classes} are not {spec.name}'s: {expected}")
            return data
        source = f"{found} (extracted, not checksum-verified)"
    else:
        if found is None:
            if not download:
                raise TochaError(f"{spec.name} not found. Looked in:\n  {looked_in(spec, data_dir)}")
            found = _download(spec, data_dir, log)
        key = fingerprint(sorted(file_stamp(p) for p in found.values()))

        def build() -> dict[str, torch.Tensor]:
            _verify(spec, found)  # checksums before first use; the cache then holds verified data
            return _decode(spec, found)

        t = cached_tensors(spec.name, key, build)
        source = str(next(iter(found.values())).parent)
    return LoadedData(
        name=spec.name,
        classes=list(spec.classes),
        train=TensorSet(t["train_images"], t["train_labels"]),
        test=TensorSet(t["test_images"], t["test_labels"]),
        source=source,
    )


def resolve_name(name: str, data_dir: str | Path | None) -> str:
    """`auto` means full Fashion-MNIST when it is on disk, else the bundled sample of it."""
    if name != AUTO:
        return name
    return DEFAULT_FULL if is_available(DEFAULT_FULL, data_dir) else f"{DEFAULT_FULL}-sample"


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    download: bool = True,
    log: Callable[[str], None] = print,
    on_bad_image: str = "fail",
    follow_symlinks: bool = False,
    in_memory: str = "yes",
) -> LoadedData:
    """A registered dataset by name, or an image folder by path; `on_bad_image` ('fail' or 'skip')
    says what an unreadable image file in a folder does; `follow_symlinks`, whether links out of it
    count; `in_memory` (yes, no, auto), where a prepared folder's training images are read from."""
    if name in DATASETS:
        return load_registered(name, data_dir, download=download, log=log, on_bad_image=on_bad_image)
    if is_table(name):  # the table route needs its config (target, split): see load_configured
        raise TochaError(f"{name} is a table, not images: see tocha data info {name}")
    path = Path(name).expanduser()
    path = extracted(path, log) if is_archive(path) else path  # an image folder packed as .tar(.gz)
    if is_prepared(path):  # `tocha data prepare`'s folder: decoded already
        return load_prepared(path, image_size, log, in_memory)
    if path.is_dir():
        return load_folder(
            path,
            image_size=image_size,
            test_fraction=test_fraction,
            split_seed=split_seed,
            on_bad_image=on_bad_image,
            log=log,
            follow_symlinks=follow_symlinks,
        )
    if path.exists():
        raise TochaError(f"{name}: a dataset path must be a folder of class sub-folders, or a table "
                         "(.csv, .tsv, .csv.gz, .tsv.gz)")  # fmt: skip
    get_spec(name)  # raises the unknown-name error with the valid names
    raise AssertionError("unreachable")


def load_configured(
    cfg: DataConfig,
    name: str | None = None,
    data_dir: str | Path | None = None,
    download: bool | None = None,
    *,
    log: Callable[[str], None] = print,
) -> LoadedData:
    """The dataset a DataConfig describes, with its image size and split (so train, evaluate and
    compare's baselines see the same images); `name`, `data_dir`, `download` replace its own.
    A table (registered, synthetic, or a .csv / .tsv file) is read with the config's target, task,
    dropped columns, fill and split."""
    if cfg.task == "forecast":  # a series, cut in time order: no carve, no limit
        from tocha.data.series import load_series

        return load_series(cfg, name or cfg.name, log)
    if cfg.task == "next-token":  # a corpus, split in order: no carve, no limit
        from tocha.data.corpus import load_corpus

        return load_corpus(cfg, name or cfg.name, log)
    if is_text_dataset(name or cfg.name):  # a corpus known by name: its CSV, made once
        from tocha.data.text_datasets import text_dataset_csv
        from tocha.data.text_set import load_text

        found = text_dataset_csv(name or cfg.name, data_dir or cfg.data_dir, log=log,
                                 download=cfg.download if download is None else download)  # fmt: skip
        data = load_text(dataclasses.replace(cfg, text="text", target="label"), str(found), log)
        return dataclasses.replace(data, name=name or cfg.name)  # its --train-limit drawn in load_text
    if cfg.text is not None or is_text_folder(Path(name or cfg.name).expanduser()):
        from tocha.data.text_set import load_text  # text: the vocabulary after the validation carve

        return load_text(cfg, name or cfg.name, log)  # its --train-limit drawn before the vocabulary
    if is_table(name or cfg.name):
        from tocha.data.table_set import load_table

        table_cfg = dataclasses.replace(cfg, data_dir=data_dir or cfg.data_dir)
        data = load_table(table_cfg, name or cfg.name, log)  # its validation rows carved before encoding
        return data if cfg.train_limit is None else limit_train(data, cfg.train_limit, cfg.split_seed)
    data = load_dataset(
        name or cfg.name,
        data_dir or cfg.data_dir,
        image_size=tuple(cfg.image_size) if cfg.image_size else None,
        test_fraction=cfg.test_fraction,
        split_seed=cfg.split_seed,
        download=cfg.download if download is None else download,
        log=log,
        on_bad_image=cfg.on_bad_image,
        follow_symlinks=cfg.follow_symlinks,
        in_memory=cfg.in_memory,
    )
    return for_training(data, cfg)


def dataset_shape(cfg: DataConfig, log: Callable[[str], None] = print) -> tuple[tuple[int, int, int], int]:
    """(C, H, W) and class count without decoding the data (image folders: headers only, with
    unreadable headers handled as cfg.on_bad_image says)."""
    name = DEFAULT_FULL if cfg.name == AUTO else cfg.name
    if is_table(name):
        data = load_configured(cfg, log=log)
        return data.image_shape, len(data.classes)
    if name in DATASETS:
        spec = DATASETS[name]
        return spec.image_shape, len(spec.classes)
    if is_prepared(name):
        manifest = read_manifest(Path(name))
        channels = 1 if manifest["mode"] == "L" else 3
        return (channels, *manifest["image_size"]), len(manifest["classes"])
    classes, splits = scan_folder(extracted(Path(name), log) if is_archive(Path(name)) else Path(name),
                                   cfg.follow_symlinks, log)  # fmt: skip
    bad: list[UnreadableImage] = []
    mode, size = choose_format([p for s in splits.values() for p, _ in s], bad)
    if bad and cfg.on_bad_image == "skip":
        log(skipped_warning(Path(name), [e.path for e in bad]))
    elif bad:
        raise unreadable_error(Path(name), bad)
    height, width = cfg.image_size or size
    return (1 if mode == "L" else 3, height, width), len(classes)
