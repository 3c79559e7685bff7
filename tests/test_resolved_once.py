"""A run is planned and resolved once: one train builds the user's model twice (one check on the
meta device, one real build) and reads its file once (the bytes hashed, run, and copied into the run
folder); a comparison of 2 cells x 2 seeds plans each cell once (the second cell, whose model is the
same, takes the first one's record and checked network) and builds the model once per run: 5
constructions, one read.
Counted in a fresh process: the model counts its own constructions, an audit hook the file's opens."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
opened = []
def count(event, args):
    if event == "open" and args[0] == sys.argv[1]:
        opened.append(args[0])
sys.addaudithook(count)
import tocha
quiet = {"log": lambda _line: None}
common = {"model": sys.argv[1] + ":Net", "data": "mnist-sample", "train_limit": 256, "epochs": 1}
if sys.argv[2] == "train":
    tocha.train(out_dir=sys.argv[3], progress=False, **quiet, **common)
else:
    tocha.compare(vary=["lr=0.001,0.01"], seeds=2, out=sys.argv[3], **quiet, **common)
models = [m for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith("tocha_model_net")]
built = [m.BUILT for m in models]
print(json.dumps({"built": sum(len(b) for b in built), "opened": len(opened)}))
"""

NET = """
from torch import nn

BUILT = []  # one entry per construction


class Net(nn.Module):
    def __init__(self, hidden: int = 16):
        super().__init__()
        BUILT.append(1)
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.layers(x)
"""


def counts(tmp_path, what: str) -> dict[str, int]:
    (tmp_path / "net.py").write_text(NET)
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "net.py"), what, str(tmp_path / what)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_train_builds_the_model_twice_and_reads_its_file_once(tmp_path):
    assert counts(tmp_path, "train") == {"built": 2, "opened": 1}  # 7 and 10 before


def test_a_comparison_checks_each_cell_once_and_builds_each_run_once(tmp_path):
    assert counts(tmp_path, "compare") == {"built": 1 + 4, "opened": 1}  # 30 and 10 before


def test_a_resolved_run_leaves_nothing_undecided(tmp_path):
    """The resolved run is its own type: made with a key still `auto` it refuses, naming the key; a
    trained run's config.yaml (what its resolved run records) holds no undecided choice: the one
    `auto` left in its training section is the device, which is the machine's (a run resumed or
    evaluated elsewhere chooses it there)."""
    import pytest
    import yaml

    import tocha
    from tocha.config import RunConfig, get_value, load_config
    from tocha.errors import TochaError
    from tocha.training.resolved import DECIDED, ResolvedRun

    with pytest.raises(TochaError, match="leaves data.name, data.task, data.mean") as refused:
        ResolvedRun(RunConfig(), None, None)  # type: ignore[arg-type]
    assert "train.monitor" in str(refused.value)
    result = tocha.train(data="mnist-sample", model="mlp", train_limit=256, epochs=1, out_dir=str(tmp_path),
                         progress=False, log=lambda _line: None)  # fmt: skip
    recorded = load_config(result.run_dir / "config.yaml")
    assert [key for key, before in DECIDED.items() if get_value(recorded, key) == before] == []
    train = yaml.safe_load((result.run_dir / "config.yaml").read_text())["train"]
    assert [key for key, value in train.items() if value == "auto"] == [
        "device"
    ]  # the machine's, asked again
