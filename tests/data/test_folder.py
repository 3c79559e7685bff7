"""Image folders made here with Pillow: layouts ROOT/<class>/ and ROOT/train|test/<class>/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from image_files import BAD_FILES, GRAYSCALE_FILES, ODD_MODES, H, W, write_bad
from PIL import Image

from tocha.config import DataConfig
from tocha.data.folder import load_folder
from tocha.data.load import dataset_shape, load_dataset
from tocha.errors import TochaError


def save(path: Path, pixels: np.ndarray) -> Path:
    """Write uint8 pixels (H, W) grayscale or (H, W, 3) RGB; format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(path)
    return path


def flat(value: int, size: tuple[int, int], rgb: bool = False) -> np.ndarray:
    """A constant image of (H, W): survives resizing and JPEG unchanged (or nearly)."""
    shape = (*size, 3) if rgb else size
    return np.full(shape, value, dtype=np.uint8)


def decoded_files(cache: Path) -> list[Path]:
    folder = cache / "decoded"
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def make_flat_classes(root: Path, per_class: dict[str, int], size: tuple[int, int] = (6, 5)) -> None:
    """ROOT/<class>/NN.png, each image a constant whose value identifies it (class*40 + index)."""
    for c, (name, n) in enumerate(sorted(per_class.items())):
        for i in range(n):
            save(root / name / f"{i:02d}.png", flat(c * 40 + i, size))


def identities(images: torch.Tensor) -> set[int]:
    return {int(img.flatten()[0]) for img in images}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_split_folders_exact_pixels_and_order(tmp_path: Path, rng: np.random.Generator) -> None:
    root = tmp_path / "shapes"
    pixels = {}
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("zebra", "apple", "mango"):  # sorted: apple, mango, zebra
            for i in range(n):
                arr = rng.integers(0, 256, size=(9, 7, 3), dtype=np.uint8)  # H=9, W=7
                pixels[(split, cls, i)] = arr
                save(root / split / cls / f"{i}.png", arr)
    data = load_folder(root)
    assert data.classes == ["apple", "mango", "zebra"]
    assert (len(data.train), len(data.test)) == (9, 6)
    assert data.train.images.dtype == torch.uint8
    assert data.train.images.shape == (9, 3, 9, 7)
    assert data.details == {"mode": "RGB", "image_size": [9, 7]}
    assert data.name == "shapes"
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    # class folders sorted, files sorted within a class: test[3] is mango/1.png
    expected = pixels[("test", "mango", 1)].transpose(2, 0, 1)
    np.testing.assert_array_equal(data.test.images[3].numpy(), expected)
    for k, cls in enumerate(["apple", "mango", "zebra"]):
        for i in range(3):
            got = data.train.images[3 * k + i].numpy()
            np.testing.assert_array_equal(got, pixels[("train", cls, i)].transpose(2, 0, 1))


def test_grayscale_only_gives_mode_l(tmp_path: Path, rng: np.random.Generator) -> None:
    root = tmp_path / "gray"
    arrays = [rng.integers(0, 256, size=(8, 6), dtype=np.uint8) for _ in range(4)]
    for i, arr in enumerate(arrays):
        save(root / ("a" if i < 2 else "b") / f"{i}.png", arr)
    data = load_folder(root, test_fraction=0.5)
    assert data.image_shape == (1, 8, 6)
    assert data.details["mode"] == "L"
    got = sorted(t.numpy().tobytes() for t in torch.cat([data.train.images, data.test.images]))
    assert got == sorted(a[None].tobytes() for a in arrays)


def test_any_colour_image_gives_rgb(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    save(root / "a" / "0.png", flat(10, (8, 8)))
    save(root / "a" / "1.png", flat(20, (8, 8)))
    save(root / "b" / "0.jpg", flat(200, (8, 8), rgb=True))
    save(root / "b" / "1.png", flat(30, (8, 8)))
    data = load_folder(root, test_fraction=0.5)
    assert data.details["mode"] == "RGB"
    images = torch.cat([data.train.images, data.test.images])
    assert images.shape == (4, 3, 8, 8)
    by_value = {int(img[0, 0, 0]): img for img in images}
    for v in (10, 20, 30):  # grayscale PNGs become three equal channels, values exact
        assert torch.equal(by_value[v], torch.full((3, 8, 8), v, dtype=torch.uint8))
    jpeg = [img for img in images if int(img[0, 0, 0]) > 150]
    assert len(jpeg) == 1 and (jpeg[0].int() - 200).abs().max() <= 3  # JPEG: nearly exact


def test_grayscale_jpeg(tmp_path: Path) -> None:
    root = tmp_path / "gj"
    for c in ("x", "y"):
        for i in range(2):
            save(root / c / f"{i}.jpeg", flat(100 + 10 * i, (10, 12)))
    data = load_folder(root, test_fraction=0.5)
    assert data.details["mode"] == "L"
    assert data.image_shape == (1, 10, 12)


def test_resized_to_most_common_size(tmp_path: Path) -> None:
    root = tmp_path / "sizes"
    for i in range(3):
        save(root / "a" / f"{i}.png", flat(10 + i, (8, 12)))  # H=8, W=12: the most common
    save(root / "b" / "0.png", flat(77, (5, 5)))
    save(root / "b" / "1.png", flat(88, (20, 7)))
    save(root / "b" / "2.png", flat(99, (8, 12)))
    data = load_folder(root, test_fraction=0.34)
    assert data.image_shape == (1, 8, 12)
    assert data.details["image_size"] == [8, 12]
    images = torch.cat([data.train.images, data.test.images])
    # a constant image stays that constant when resized: each file's pixels all come back
    assert sorted(identities(images)) == [10, 11, 12, 77, 88, 99]
    for img in images:
        assert torch.all(img == img.flatten()[0])


def test_image_size_option(tmp_path: Path) -> None:
    root = tmp_path / "opt"
    make_flat_classes(root, {"a": 3, "b": 3}, size=(6, 5))
    data = load_folder(root, image_size=(10, 4))  # (H, W)
    assert data.image_shape == (1, 10, 4)
    assert data.details["image_size"] == [10, 4]
    assert identities(data.train.images) | identities(data.test.images) == {0, 1, 2, 40, 41, 42}


def test_load_dataset_with_a_folder_path(tmp_path: Path) -> None:
    root = tmp_path / "viapath"
    make_flat_classes(root, {"a": 3, "b": 3})
    data = load_dataset(str(root), image_size=(7, 7), split_seed=3)
    assert data.classes == ["a", "b"] and data.image_shape == (1, 7, 7)
    assert "viapath" in data.source


def test_seeded_split_deterministic_stratified_and_seed_dependent(tmp_path: Path) -> None:
    root = tmp_path / "split"
    make_flat_classes(root, {"cat": 10, "dog": 10})
    a = load_folder(root, test_fraction=0.2, split_seed=0)
    b = load_folder(root, test_fraction=0.2, split_seed=0)
    c = load_folder(root, test_fraction=0.2, split_seed=1)
    assert (len(a.train), len(a.test)) == (16, 4)
    assert a.test.labels.tolist().count(0) == 2 and a.test.labels.tolist().count(1) == 2
    assert identities(a.test.images) == identities(b.test.images)
    assert identities(a.test.images) != identities(c.test.images)
    for d in (a, c):  # a partition of all 20 images, labels kept with their images
        train_ids, test_ids = identities(d.train.images), identities(d.test.images)
        assert not train_ids & test_ids
        assert len(train_ids | test_ids) == 20
        for img, lbl in zip(d.test.images, d.test.labels, strict=True):
            assert int(img.flatten()[0]) // 40 == int(lbl)


def test_split_keeps_at_least_one_per_class_each_side(tmp_path: Path) -> None:
    root = tmp_path / "small"
    make_flat_classes(root, {"a": 2, "b": 3})
    data = load_folder(root, test_fraction=0.01)
    assert sorted(data.test.labels.tolist()) == [0, 1]
    data = load_folder(root, test_fraction=0.99)
    assert sorted(data.train.labels.tolist()) == [0, 1]


def test_split_needs_two_images_per_class(tmp_path: Path) -> None:
    root = tmp_path / "lonely"
    make_flat_classes(root, {"a": 3, "b": 1})
    with pytest.raises(TochaError, match="at least 2"):
        load_folder(root)


def test_second_load_comes_from_cache(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "cached"
    make_flat_classes(root, {"a": 3, "b": 3})
    assert decoded_files(isolated_cache) == []
    first = load_folder(root)
    entries = decoded_files(isolated_cache)
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    second = load_folder(root)
    assert decoded_files(isolated_cache) == entries
    assert entries[0].stat().st_mtime_ns == stamp  # read, not rewritten
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.test.labels, second.test.labels)


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "damaged"
    make_flat_classes(root, {"a": 3, "b": 3})
    first = load_folder(root)
    (entry,) = decoded_files(isolated_cache)
    entry.write_bytes(b"not a torch file")
    second = load_folder(root)
    assert torch.equal(first.train.images, second.train.images)
    assert entry.stat().st_size > 100  # rewritten with real content


def test_changed_file_invalidates_cache(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "train_test"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            save(root / split / cls / "0.png", flat(5, (6, 6)))
    first = load_folder(root)
    assert int(first.test.images[1].max()) == 5
    save(root / "test" / "b" / "0.png", np.arange(36, dtype=np.uint8).reshape(6, 6) + 100)
    second = load_folder(root)
    assert len(decoded_files(isolated_cache)) == 2
    np.testing.assert_array_equal(
        second.test.images[1, 0].numpy(), np.arange(36, dtype=np.uint8).reshape(6, 6) + 100
    )
    assert torch.equal(first.train.images, second.train.images)


def test_empty_root(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    (root / "loose.png").write_bytes(b"")  # files at the top level are not classes
    with pytest.raises(TochaError, match="no class folders"):
        load_folder(root)


def test_class_folder_without_images(tmp_path: Path) -> None:
    root = tmp_path / "noimg"
    make_flat_classes(root, {"a": 3})
    (root / "b_empty").mkdir()
    (root / "b_empty" / "notes.txt").write_text("not an image")
    with pytest.raises(TochaError, match="b_empty"):
        load_folder(root)


def test_corrupt_png_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "corrupt"
    make_flat_classes(root, {"a": 3, "b": 3})
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(TochaError, match="broken.png"):
        load_folder(root)


def test_corrupt_png_with_explicit_size_and_mode(tmp_path: Path) -> None:
    root = tmp_path / "corrupt2"
    make_flat_classes(root, {"a": 3, "b": 3})
    (root / "a" / "zz.png").write_bytes(b"garbage")
    with pytest.raises(TochaError, match="zz.png"):
        load_folder(root, image_size=(6, 5), mode="L")


def test_truncated_png_names_the_file(tmp_path: Path, rng: np.random.Generator) -> None:
    root = tmp_path / "trunc"
    make_flat_classes(root, {"a": 3, "b": 3})
    path = save(root / "a" / "cut.png", rng.integers(0, 256, size=(6, 5), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:60])  # header intact, pixel data cut
    with pytest.raises(TochaError, match="cut.png"):
        load_folder(root)


def test_not_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "file.png"
    save(path, flat(1, (4, 4)))
    with pytest.raises(TochaError, match="not a folder"):
        load_folder(path)
    with pytest.raises(TochaError, match="not a folder"):
        load_folder(tmp_path / "missing")


def test_train_and_test_class_folders_must_match(tmp_path: Path) -> None:
    root = tmp_path / "mismatch"
    save(root / "train" / "a" / "0.png", flat(1, (4, 4)))
    save(root / "train" / "b" / "0.png", flat(1, (4, 4)))
    save(root / "test" / "a" / "0.png", flat(1, (4, 4)))
    with pytest.raises(TochaError, match="differ"):
        load_folder(root)


# Unreadable files: fail names them all, skip leaves them out with one warning line.


def bad_folder(root: Path) -> list[str]:
    """Classes a (3 good) and b (3 good) plus every kind of bad file, spread over both; their names."""
    make_flat_classes(root, {"a": 3, "b": 3})
    names = list(BAD_FILES)
    bad = write_bad(root / "a", names[:2]) + write_bad(root / "b", names[2:])
    return [str(p.relative_to(root)) for p in bad]


@pytest.mark.parametrize("given_format", [False, True], ids=["format-from-headers", "format-given"])
def test_fail_names_every_unreadable_file_and_why(tmp_path: Path, given_format: bool) -> None:
    root = tmp_path / "bad"
    names = bad_folder(root)
    kwargs = {"image_size": (6, 5), "mode": "L"} if given_format else {}
    with pytest.raises(TochaError) as e:
        load_folder(root, **kwargs)  # on_bad_image="fail" is the default
    message = str(e.value)
    assert f"{len(names)} image files are not readable" in message and "--on-bad-image skip" in message
    for name in names:  # headers that fail and pixels that fail (the cut JPEG) alike
        line = next(line for line in message.splitlines() if line.strip().startswith(name + ":"))
        assert BAD_FILES[Path(name).name][1] in line


def test_one_unreadable_file_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "one"
    make_flat_classes(root, {"a": 3, "b": 3})
    write_bad(root / "b", ["cut.jpg"])
    with pytest.raises(TochaError) as e:
        load_folder(root)
    assert "\n" not in str(e.value)
    assert str(root / "b" / "cut.jpg") in str(e.value) and "truncated" in str(e.value)


def test_many_unreadable_files_are_counted(tmp_path: Path) -> None:
    root = tmp_path / "many"
    make_flat_classes(root, {"a": 3, "b": 3})
    for i in range(14):
        (root / "a" / f"junk{i:02d}.png").write_text("text")
    with pytest.raises(TochaError) as e:
        load_folder(root)
    assert "14 image files are not readable" in str(e.value)
    assert "junk09.png" in str(e.value) and "junk10.png" not in str(e.value)
    assert "... and 4 more" in str(e.value)


def test_skip_leaves_them_out_and_warns_every_time(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "skip"
    names = bad_folder(root)
    lines: list[str] = []
    first = load_folder(root, on_bad_image="skip", test_fraction=0.34, log=lines.append)
    assert (len(first.train), len(first.test)) == (4, 2)  # the 6 readable images, split as usual
    assert identities(first.train.images) | identities(first.test.images) == {0, 1, 2, 40, 41, 42}
    assert first.image_shape == (1, 6, 5)  # the bombs' headers do not vote for the size
    (line,) = lines
    assert line.startswith("warning:") and f"skipped {len(names)} unreadable" in line
    assert all(name in line for name in names)
    second = load_folder(root, on_bad_image="skip", test_fraction=0.34, log=lines.append)
    assert lines == [line, line]  # a cached load warns too
    assert len(decoded_files(isolated_cache)) == 1
    assert torch.equal(first.train.images, second.train.images)
    # The choice is part of the cache key: the cached skip result is not reused by fail.
    with pytest.raises(TochaError, match="not readable"):
        load_folder(root, test_fraction=0.34)


def test_skip_still_refuses_a_class_left_empty(tmp_path: Path) -> None:
    root = tmp_path / "gone"
    make_flat_classes(root, {"a": 3})
    write_bad(root / "b", ["empty.png", "cut.jpg"])
    with pytest.raises(TochaError, match=r"gone/b: no readable image"):
        load_folder(root, on_bad_image="skip", log=lambda _: None)


def test_skip_in_a_test_split_left_empty(tmp_path: Path) -> None:
    root = tmp_path / "tt"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            save(root / split / cls / "0.png", flat(5, (6, 6)))
    (root / "test" / "b" / "0.png").write_bytes(b"")
    with pytest.raises(TochaError, match=r"test/b: no readable image"):
        load_folder(root, on_bad_image="skip", log=lambda _: None)


def test_empty_class_folder_is_an_error_with_skip_too(tmp_path: Path) -> None:
    root = tmp_path / "noimg"
    make_flat_classes(root, {"a": 3})
    (root / "b").mkdir()
    with pytest.raises(TochaError, match="holds no image files"):
        load_folder(root, on_bad_image="skip")


def test_unknown_on_bad_image(tmp_path: Path) -> None:
    make_flat_classes(tmp_path / "x", {"a": 2, "b": 2})
    with pytest.raises(TochaError, match="fail or skip"):
        load_folder(tmp_path / "x", on_bad_image="ignore")


def test_load_dataset_and_dataset_shape_pass_the_choice_on(tmp_path: Path) -> None:
    root = tmp_path / "via"
    names = bad_folder(root)
    lines: list[str] = []
    data = load_dataset(str(root), on_bad_image="skip", log=lines.append)
    assert len(data.train) + len(data.test) == 6 and len(lines) == 1
    with pytest.raises(TochaError, match="notes.png"):
        load_dataset(str(root))
    # Headers only: the files whose header fails count as unreadable; the cut JPEG's RGB header,
    # which reads, makes the shape RGB here, where decoding leaves it out (above: gray).
    with pytest.raises(TochaError, match="empty.png"):
        dataset_shape(DataConfig(name=str(root)))
    assert data.image_shape == (1, 6, 5)
    assert dataset_shape(DataConfig(name=str(root), on_bad_image="skip"), log=lines.append) == ((3, 6, 5), 2)
    assert "cut.jpg" not in lines[-1] and all(n in lines[-1] for n in names if "cut" not in n)


@pytest.mark.parametrize("gray_only", [False, True], ids=["rgb", "gray"])
def test_odd_modes_decode_exactly_in_a_folder(tmp_path: Path, gray_only: bool) -> None:
    """Palette (with and without transparency), 16-bit, CMYK, RGBA and LA files among plain ones."""
    root = tmp_path / "modes"
    names = sorted(GRAYSCALE_FILES if gray_only else ODD_MODES)
    expected = {}
    for split in ("train", "test"):
        (root / split / "odd").mkdir(parents=True)
        for name in names:
            expected[name] = ODD_MODES[name](root / split / "odd" / name)
        save(root / split / "plain" / "x.png", flat(9, (H, W), rgb=not gray_only))
    data = load_folder(root)
    assert data.details == {"mode": "L" if gray_only else "RGB", "image_size": [H, W]}
    for i, name in enumerate(names):  # class "odd" first, files sorted by name
        got = data.train.images[i].numpy()
        want = expected[name][..., :1] if gray_only else expected[name]
        np.testing.assert_array_equal(got.transpose(1, 2, 0), want, err_msg=name)


def test_one_class_is_not_a_classifier(tmp_path):
    """One class folder trains to a false 100%: refused naming the folder and the class, before
    any run folder; the same when the second class is a link left out, or the folder is one split."""
    from helpers import run_main, write_image_folder

    def train(root):
        return run_main("train", "--data", root, "--epochs", "1", "--out", tmp_path / "runs")

    def refused(result, *fragments):
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert all(f in result.stderr for f in fragments), result.stderr
        assert not (tmp_path / "runs").exists()

    write_image_folder(tmp_path / "oneclass", {"cat": 6})
    refused(train(tmp_path / "oneclass"), "oneclass: one class folder (cat)", "two or more")
    write_image_folder(tmp_path / "split" / "test", {"cat": 3, "dog": 3})
    refused(train(tmp_path / "split"), "one class folder (test)", "looks like a split")
    write_image_folder(tmp_path / "elsewhere", {"dog": 6})
    write_image_folder(tmp_path / "linked", {"cat": 6})
    (tmp_path / "linked" / "dog").symlink_to(tmp_path / "elsewhere" / "dog")
    refused(train(tmp_path / "linked"), "one class folder (cat)", "links left out", "dog")


def test_a_split_linked_out_of_the_folder_is_named(tmp_path):
    from helpers import run_main, write_image_folder

    write_image_folder(tmp_path / "outside", {"cat": 3, "dog": 3})
    write_image_folder(tmp_path / "data" / "test", {"cat": 3, "dog": 3})
    (tmp_path / "data" / "train").symlink_to(tmp_path / "outside")
    result = run_main("train", "--data", tmp_path / "data", "--epochs", "1", "--out", tmp_path / "runs")
    assert result.returncode == 2 and "train is a link out of" in result.stderr, result.stderr
    assert "--follow-symlinks" in result.stderr
