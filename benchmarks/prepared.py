"""Data larger than memory: `tocha data prepare` on a large generated image folder, and an epoch
read from disk against the same epoch with the images in memory.

    python benchmarks/prepared.py [--copies 4] [--size 64] [--epochs 2] [--keep DIR]

The folder is made from the CIFAR-10 JPEG copy in ../shared/data (no download): each of the 50,000
training images becomes `--copies` random crops (24 to 32 pixels a side), some mirrored, resized to
`--size` and saved as JPEG (quality 90); the 10,000 test images are resized. With the defaults that
is 200,000 + 10,000 images of 64x64 RGB, 2.6 GB as uint8.

Measured, each in a real process: the prepare's images per second with 1 and with 2 decoding
processes; seconds per epoch (tocha's recorded training seconds, the first epoch left out) of
`tocha train --data DIR --model linear` with `--in-memory yes` and `--in-memory no` (the page
cache warm: the file was just written and read), alternately; the peak anonymous memory (RssAnon:
what the processes hold, not the file's pages the kernel caches) of each, and of `--nproc 2` both
ways (summed over the ranks, sampled every 0.2 s). Prints JSON lines.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import SHARED_DATA, emit, machine


def variants(job: tuple[bytes, str, int, int, int, bool]) -> list[tuple[str, bytes]]:
    """One CIFAR JPEG's random crops (or its resize, for a test image) as new JPEG files' bytes."""
    from PIL import Image

    data, name, copies, size, seed, train = job
    rng = random.Random(seed)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = []
    for k in range(copies if train else 1):
        crop = image
        if train:
            side = rng.randint(24, 32)
            x, y = rng.randint(0, 32 - side), rng.randint(0, 32 - side)
            crop = image.crop((x, y, x + side, y + side))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        buffer = io.BytesIO()
        crop.resize((size, size), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=90)
        out.append((f"{name[:-4]}-{k}.jpg", buffer.getvalue()))
    return out


def make_folder(root: Path, copies: int, size: int) -> int:
    """The generated folder (train/<class>/, test/<class>/); returns its number of images."""
    jobs = []
    with tarfile.open(SHARED_DATA / "cifar10-jpeg-q75.tar.gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if member.isfile() and member.name.endswith(".jpg") and len(parts) >= 3:
                split, label, name = parts[-3], parts[-2], parts[-1]
                data = archive.extractfile(member).read()  # type: ignore[union-attr]
                jobs.append((data, f"{split}/{label}/{name}", copies, size, len(jobs), split == "train"))
    count = 0
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        for files in pool.map(variants, jobs, chunksize=256):
            for relative, data in files:
                path = root / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                count += 1
    return count


def peak_anon(command: list[str], env: dict[str, str]) -> tuple[int, subprocess.CompletedProcess]:
    """Run `command`; the peak of its process tree's summed RssAnon (bytes), sampled every 0.2 s."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(anon(pid) for pid in tree(process.pid)))
        time.sleep(0.2)
    out, err = process.communicate()
    return peak, subprocess.CompletedProcess(command, process.returncode, out, err)


def tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def anon(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def epoch_seconds(run_dir: Path) -> list[float]:
    with (run_dir / "metrics.csv").open() as f:
        return [float(row["seconds"]) for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    emit({"benchmark": "prepared", **machine()})
    work = args.keep or Path(tempfile.mkdtemp(prefix="tocha-prepared-"))
    env = {**os.environ, "TOCHA_CACHE_DIR": str(work / "cache")}
    tocha = [sys.executable, "-m", "tocha"]
    started = time.perf_counter()
    images = make_folder(work / "folder", args.copies, args.size)
    emit({"made": str(work / "folder"), "images": images, "seconds": time.perf_counter() - started})
    for workers in (1, 2):
        out = work / f"prepared-{workers}"
        started = time.perf_counter()
        subprocess.run([*tocha, "data", "prepare", str(work / "folder"), "--out", str(out),
                        "--workers", str(workers)], env=env, check=True, capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in out.glob("*.npy"))
        emit({"prepare_workers": workers, "seconds": seconds, "images_per_second": images / seconds,
              "bytes": size})  # fmt: skip
    prepared = work / "prepared-2"
    for round_ in range(2):  # alternately, so that neither way always runs on the warmer machine
        for where in ("yes", "no"):
            run = work / "runs" / f"{where}-{round_}"
            command = [*tocha, "train", "--data", str(prepared), "--model", "linear", "--in-memory", where,
                       "--epochs", str(args.epochs), "--batch-size", "256", "--no-progress",
                       "--out", str(run.parent), "--name", run.name]  # fmt: skip
            peak, done = peak_anon(command, env)
            assert done.returncode == 0, done.stderr
            seconds = epoch_seconds(run)[1:] or epoch_seconds(run)
            emit({"in_memory": where, "round": round_, "seconds_per_epoch": sum(seconds) / len(seconds),
                  "peak_anon_bytes": peak})  # fmt: skip
    for where in ("yes", "no"):
        command = [*tocha, "train", "--data", str(prepared), "--model", "linear", "--in-memory", where,
                   "--epochs", "1", "--batch-size", "256", "--no-progress", "--nproc", "2",
                   "--out", str(work / "runs"), "--name", f"nproc2-{where}"]  # fmt: skip
        peak, done = peak_anon(command, env)
        assert done.returncode == 0, done.stderr
        emit({"nproc": 2, "in_memory": where, "peak_anon_bytes_all_ranks": peak})


if __name__ == "__main__":
    main()
