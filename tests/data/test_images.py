"""One image file -> uint8 (C, H, W): exact pixels for every mode tocha converts, and one clear
error for every damaged or hostile file, without decoding a bomb's pixels."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from image_files import BAD_FILES, GRAYSCALE_FILES, ODD_MODES, H, W, write_bad
from PIL import Image

from tocha.data.images import UnreadableImage, load_image, peek_image, strict_pixel_limit

DEFAULT_PIXEL_LIMIT = Image.MAX_IMAGE_PIXELS  # as Pillow ships it; tocha never changes it


@pytest.mark.parametrize("name", list(ODD_MODES))
def test_conversion_to_rgb_is_exact(tmp_path: Path, name: str) -> None:
    expected = ODD_MODES[name](tmp_path / name)  # (H, W, 3)
    got = load_image(tmp_path / name, "RGB", (H, W))
    assert got.dtype == np.uint8 and got.shape == (3, H, W)
    np.testing.assert_array_equal(got.transpose(1, 2, 0), expected)


@pytest.mark.parametrize("name", list(ODD_MODES))
def test_conversion_to_grayscale_is_exact(tmp_path: Path, name: str) -> None:
    expected_rgb = ODD_MODES[name](tmp_path / name)
    got = load_image(tmp_path / name, "L", (H, W))
    assert got.shape == (1, H, W)
    if name in GRAYSCALE_FILES:  # gray in, gray out: the value itself, no colour weighting
        np.testing.assert_array_equal(got[0], expected_rgb[..., 0])
    else:  # colour: the composited/converted RGB, then Pillow's RGB -> L
        np.testing.assert_array_equal(got[0], np.asarray(Image.fromarray(expected_rgb).convert("L")))


def test_the_examples_the_readme_gives(tmp_path: Path) -> None:
    for name in ("gray16.png", "rgba.png", "cmyk.jpg"):
        ODD_MODES[name](tmp_path / name)
    assert load_image(tmp_path / "gray16.png", "L", (H, W))[0, 0, 0] == 0xAB  # from 0xABCD
    rgba = load_image(tmp_path / "rgba.png", "RGB", (H, W))
    assert rgba[:, 0, 1].tolist() == [100, 50, 25]  # (200, 100, 50) at alpha 128
    assert rgba[:, 0, 2].tolist() == [0, 0, 0]  # red at alpha 0
    cmyk = load_image(tmp_path / "cmyk.jpg", "RGB", (H, W))[:, 0, 0]
    c, m, y, k = 10, 200, 30, 40  # R = (255 - C) * (255 - K) / 255 and so on, up to JPEG rounding
    assert np.abs(cmyk - np.array([(255 - v) * (255 - k) / 255 for v in (c, m, y)])).max() <= 2


@pytest.mark.parametrize("name", list(ODD_MODES))
def test_peek_reports_the_file_mode(tmp_path: Path, name: str) -> None:
    ODD_MODES[name](tmp_path / name)
    mode, size = peek_image(tmp_path / name)
    assert size == (W, H)
    assert mode == {"palette.png": "P", "palette_alpha.png": "P", "gray16.png": "I;16", "cmyk.jpg": "CMYK",
                    "rgba.png": "RGBA", "la.png": "LA"}[name]  # fmt: skip


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "bare"])
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_is_named_with_a_reason(tmp_path: Path, name: str, strict: bool) -> None:
    """The same error with tocha's warning filter on (folders, predict) and without it."""
    (path,) = write_bad(tmp_path, [name])
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(UnreadableImage) as e:
                if strict:
                    with strict_pixel_limit():
                        load_image(path, "RGB", (8, 8))
                else:
                    load_image(path, "RGB", (8, 8))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.path == path and name in str(e.value)
    assert BAD_FILES[name][1] in e.value.reason
    assert peak < 2**24  # a bomb is refused from its header: its gigabytes are never allocated
    if strict:  # the warning became the error instead of being printed
        assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_PIXEL_LIMIT


def test_truncated_jpeg_has_a_readable_header(tmp_path: Path) -> None:
    """Why a folder collects decode failures too: peeking at the header alone passes this file."""
    (path,) = write_bad(tmp_path, ["cut.jpg"])
    assert peek_image(path) == ("RGB", (32, 32))
    with pytest.raises(UnreadableImage, match="truncated"):
        load_image(path, "RGB", (32, 32))


@pytest.mark.parametrize("name", ["empty.png", "notes.png", "bomb.png", "bomb_warns.png"])
def test_peek_refuses_what_it_can_see(tmp_path: Path, name: str) -> None:
    (path,) = write_bad(tmp_path, [name])
    with strict_pixel_limit(), pytest.raises(UnreadableImage, match=name):
        peek_image(path)


@pytest.mark.parametrize("name", list(ODD_MODES))
def test_bytes_decode_exactly_as_the_file_does(tmp_path: Path, name: str) -> None:
    """An upload's bytes and the same file on disk give the same pixels, in either mode."""
    ODD_MODES[name](tmp_path / name)
    data = (tmp_path / name).read_bytes()
    for mode in ("L", "RGB"):
        np.testing.assert_array_equal(
            load_image(data, mode, (H, W)), load_image(tmp_path / name, mode, (H, W))
        )


def test_bad_bytes_are_named_by_the_name_given(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImage, match="upload.png.*not an image"):
        load_image(b"this is text, not a PNG", "L", (H, W), name="upload.png")
    with pytest.raises(UnreadableImage, match="empty file"):
        load_image(b"", "L", (H, W), name="upload.png")
