"""`tocha export`: every registered model in every format, run in its own runtime, agrees with tocha."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO, SHARED_DATA, run_main

from tocha.errors import TochaError
from tocha.exports import export_model
from tocha.exports.onnx_predict import predict_onnx
from tocha.exports.pt2_file import load_pt2
from tocha.formats import EXPORTS, FORMATS
from tocha.inference.model import load_inference_model
from tocha.inference.predict import load_for_model, predict_files
from tocha.models import list_models
from tocha.models.registry import text_models
from tocha.runs.trained import read_trained

pytest.importorskip("onnxruntime", reason="the export extra: pip install -e .[export]")

MODEL_OPTIONS = {
    "resnet": {"model__widths": [4, 8, 8, 8]},
    "tinyvgg": {"model__hidden_units": 4},
    "mobilenet_v2": {"data__train_limit": 256},
}
# Of the ImageNet backbones, mobilenet_v2 (depthwise convolutions, ReLU6, the grayscale repeat):
# torchvision's ResNets are layers `resnet` exports already (convolutions, batch norm, max pooling,
# residual sums), at 3-10x its minutes.
# The text models export from a text run: tests/test_text.py::test_every_text_model_exports_with_parity.
EXPORTED = sorted(set(list_models()) - {"resnet18", "resnet34", "resnet50"} - set(text_models()))
SAMPLES = SHARED_DATA / "samples"


def run_of(shared_run, model: str, **extra):
    return shared_run(data__name="mnist-sample", model__name=model, train__epochs=1,
                      **MODEL_OPTIONS.get(model, {}), **extra)  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
@pytest.mark.parametrize("model", EXPORTED)
def test_every_model_exports_in_every_format_with_parity(tmp_path, shared_run, model, fmt):
    run = run_of(shared_run, model)
    out = tmp_path / f"exported{FORMATS[fmt].suffix}"
    result = export_model(run.run_dir, fmt, out, log=lambda _line: None)
    assert result.path == out and out.stat().st_size == result.bytes > 0
    parity = result.parity
    assert parity.ok and parity.samples == 1000 and parity.max_abs_diff <= 1e-4
    assert parity.top1_agreement == 1.0 or parity.ties > 0
    report = json.loads(result.parity_path.read_text())
    assert report["ok"] and report["format"] == fmt and report["max_abs_diff"] == parity.max_abs_diff
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, result.parity_path.name])


def test_onnx_is_one_file_with_uint8_input_dynamic_batch_and_metadata(tmp_path, shared_run):
    import onnx

    run = run_of(shared_run, "tinyvgg", train__tta_flip=True)
    out = export_model(run.run_dir, "onnx", tmp_path / "m.onnx", log=lambda _line: None).path
    graph = onnx.load(str(out)).graph
    (image_input,) = graph.input
    assert image_input.name == "images" and image_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = image_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 28, 28]  # batch is symbolic
    assert [o.name for o in graph.output] == ["logits"]
    meta = read_trained(out).metadata
    assert meta["classes"] == run.data.classes and meta["image_shape"] == [1, 28, 28]
    assert meta["tta_flip"] is True and meta["dataset"] == "mnist-sample" and "logits" in meta["output"]
    assert meta["test_accuracy"] == pytest.approx(run.final.accuracy)
    assert meta["normalization"]["mean"] == pytest.approx(run.config.data.mean)


def test_export_to_the_run_folder_by_default(tmp_path, shared_run):
    import shutil

    run_dir = shutil.copytree(run_of(shared_run, "linear").run_dir, tmp_path / "run")
    assert run_main("export", str(run_dir), "--format", "safetensors").returncode == 0
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "model.safetensors.parity.json").is_file()
    checkpoint = tmp_path / "saved.pt"
    shutil.copy(run_dir / "checkpoint.pt", checkpoint)
    assert export_model(checkpoint, "pt2", log=lambda _l: None).path == tmp_path / "saved.pt2"


@pytest.mark.parametrize("prefix", ["mnist"])
def test_real_pngs_get_the_same_answer_through_every_export(tmp_path, shared_run, prefix):
    pngs = sorted(SAMPLES.glob(f"{prefix}_*.png")) if SAMPLES.is_dir() else []
    if not pngs:
        pytest.skip(f"{SAMPLES} not present")
    run = run_of(shared_run, "tinyvgg")
    expected = [r["top"][0]["index"] for r in predict_files(run.run_dir, pngs, top_k=1)]
    quiet = {"log": lambda _line: None}
    paths = {fmt: export_model(run.run_dir, fmt, tmp_path / f"m{FORMATS[fmt].suffix}", **quiet).path
             for fmt in EXPORTS}  # fmt: skip
    for graph in ("onnx", "pt2", "torchscript"):  # each run by its own runtime through `tocha predict`
        assert [r["top"][0]["index"] for r in predict_onnx(paths[graph], pngs, top_k=1)] == expected, graph
    assert [r["top"][0]["index"] for r in predict_files(paths["safetensors"], pngs, top_k=1)] == expected
    module, meta = load_pt2(paths["pt2"])
    images = load_for_model(pngs, load_inference_model(run.run_dir, torch.device("cpu")))
    assert module(images).argmax(1).tolist() == expected and meta["model"] == "tinyvgg"


def test_predict_on_an_onnx_file_does_not_import_torch(tmp_path, shared_run):
    run = run_of(shared_run, "mlp")
    onnx_path = export_model(run.run_dir, "onnx", tmp_path / "m.onnx", log=lambda _l: None).path
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray(run.data.test.images[0, 0].numpy()).save(image)
    code = ("import sys; from tocha.cli import main;"
            "code = main(['predict', sys.argv[1], sys.argv[2], '--json']);"
            "print('torch' in sys.modules, file=sys.stderr); sys.exit(code)")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, str(onnx_path), str(image)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "False"
    top = json.loads(done.stdout)[0]["top"][0]
    assert top["index"] == predict_files(run.run_dir, [image], top_k=1)[0]["top"][0]["index"]


def test_a_failed_parity_check_keeps_nothing(tmp_path, shared_run, monkeypatch):
    import tocha.exports.safetensors_file as writer

    run = run_of(shared_run, "linear")
    runner = writer.runner
    skewed = lambda path, given=None: lambda images: runner(path, given)(images) + 0.01  # noqa: E731 - off by 0.01
    monkeypatch.setattr(writer, "runner", skewed)
    with pytest.raises(TochaError, match="failed its parity check"):
        export_model(run.run_dir, "safetensors", tmp_path / "m.safetensors", log=lambda _l: None)
    assert list(tmp_path.iterdir()) == []


def test_export_errors(tmp_path, shared_run, monkeypatch):
    run = run_of(shared_run, "linear")
    with pytest.raises(TochaError, match="unknown export format 'tflite'"):
        export_model(run.run_dir, "tflite")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(TochaError, match="cannot write"):
        export_model(run.run_dir, "onnx", blocker / "m.onnx", log=lambda _l: None)
    broken = tmp_path / "nan.pt"
    ckpt = torch.load(run.run_dir / "checkpoint.pt", weights_only=True)
    ckpt["model"] = {k: v * float("nan") for k, v in ckpt["model"].items()}
    torch.save(ckpt, broken)
    with pytest.raises(TochaError, match="NaN or infinite"):
        export_model(broken, "onnx", tmp_path / "nan.onnx")
    assert not (tmp_path / "nan.onnx").exists()
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    with pytest.raises(TochaError, match=r"needs onnxruntime: pip install 'tocha\[export\]'"):
        export_model(run.run_dir, "onnx", tmp_path / "m.onnx")
    refused = run_main("export", str(run.run_dir), "--format", "tflite")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr


def test_a_safetensors_file_loads_into_a_plain_module_without_tocha(tmp_path, shared_run):
    """The weights keep the model's own names: an nn.Sequential written by hand takes them."""
    from safetensors.torch import load_file

    run = run_of(shared_run, "mlp", model__hidden_sizes=[32, 16])
    path = export_model(run.run_dir, "safetensors", tmp_path / "m.safetensors", log=lambda _l: None).path
    sizes = [28 * 28, 32, 16, 10]
    layers: list[torch.nn.Module] = [torch.nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    plain = torch.nn.Sequential(*layers)
    plain.load_state_dict(load_file(str(path)))
    mean, std = run.config.data.mean[0], run.config.data.std[0]
    x = (run.data.test.images.float() / 255 - mean) / std
    reference = load_inference_model(run.run_dir, torch.device("cpu")).logits(run.data.test.images)
    torch.testing.assert_close(plain(x), reference, rtol=1e-3, atol=1e-5)


def test_a_prediction_in_a_fresh_environment_without_torch(tmp_path, shared_run):
    """examples/predict_onnx.py in a new virtual environment holding onnxruntime, numpy and Pillow
    only: the same top-1 answers as `tocha predict`."""
    run = run_of(shared_run, "tinyvgg")
    onnx_path = export_model(run.run_dir, "onnx", tmp_path / "m.onnx", log=lambda _l: None).path
    images = []
    for i in range(4):
        images.append(tmp_path / f"{i}.png")
        from PIL import Image

        Image.fromarray(run.data.test.images[i, 0].numpy()).resize((40, 40)).convert("RGB").save(images[-1])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "onnxruntime", "numpy", "pillow"],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
    if install.returncode != 0:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"pip install failed under CI: {install.stderr[-2000:]}")
        pytest.skip(f"cannot install onnxruntime into a new environment here: {install.stderr[-300:]}")
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    script = REPO / "examples" / "predict_onnx.py"
    done = subprocess.run([str(python), str(script), str(onnx_path), *map(str, images)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = [line.split(": ", 1)[1].split(" ")[0] for line in done.stdout.splitlines()]
    expected = [r["top"][0]["class"] for r in predict_files(run.run_dir, images, top_k=1)]
    assert answers == expected and len(answers) == 4


def test_parity_counts_ties_and_disagreements():
    from tocha.exports.parity import check_parity

    reference = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]])
    labels = np.array([0, 1, 1])
    images = np.zeros((3, 1, 1, 1), np.uint8)
    same = check_parity(lambda x: reference[: len(x)].copy(), images, labels, reference)
    assert same.ok and same.max_abs_diff == 0 and same.ties == 1
    flipped = reference.copy()
    flipped[0] = [0.0, 1.0]
    bad = check_parity(lambda x: flipped, images, labels, reference)
    assert not bad.ok and bad.disagreements_outside_ties == 1 and bad.max_abs_diff == 1.0


def test_an_export_never_replaces_a_runs_records_nor_a_file_without_force(tmp_path, shared_run):
    import shutil

    run_dir = shutil.copytree(run_of(shared_run, "linear").run_dir, tmp_path / "run")
    checkpoint = (run_dir / "checkpoint.pt").read_bytes()
    for record in ("checkpoint.pt", "config.yaml", "metrics.csv", "summary.json"):
        for force in ((), ("--force",)):
            result = run_main("export", run_dir, "--format", "onnx", "--out", run_dir / record, *force)
            assert result.returncode == 2 and "the run's own" in result.stderr, result.stderr
    assert (run_dir / "checkpoint.pt").read_bytes() == checkpoint  # the run can still be resumed
    mine = tmp_path / "mine.onnx"
    mine.write_text("my own notes")
    result = run_main("export", run_dir, "--format", "onnx", "--out", mine)
    assert (
        result.returncode == 2
        and "exists; give --force" in result.stderr
        and mine.read_text() == "my own notes"
    )
    assert run_main("export", run_dir, "--format", "onnx", "--out", mine, "--force").returncode == 0
    assert read_trained(mine).kind == "onnx"
    exported = export_model(run_dir, "safetensors", tmp_path / "a.safetensors", log=lambda _l: None).path
    with pytest.raises(TochaError, match="the file being exported"):
        export_model(exported, "safetensors", exported, log=lambda _l: None, force=True)


def test_two_exports_of_one_run_at_once_never_share_a_file(tmp_path, shared_run):
    """Each export has a temporary name of its own and holds the run folder's lock while it writes
    there: of two `tocha export --format pt2` at once, both finish with a whole file, or one is
    refused naming the other; never a parity check of the other's half-written file."""
    import shutil

    run_dir = shutil.copytree(run_of(shared_run, "linear").run_dir, tmp_path / "run")
    outs = [run_dir / "a.pt2", run_dir / "b.pt2"]
    procs = [subprocess.Popen([sys.executable, "-m", "tocha", "export", str(run_dir), "--format", "pt2",
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for out in outs]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for (code, err), out in zip(results, outs, strict=True):
        assert code == 0 or (code == 2 and "is in use by process" in err), err
        if code == 0:
            assert load_pt2(out)[1]["model"] == "linear"  # whole, loadable, its own
    assert any(code == 0 for code, _ in results)
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".tmp-")]


def test_a_torchscript_export_runs_in_cpp_libtorch(tmp_path, shared_run):
    """The TorchScript file loads in C++ with `torch::jit::load` (LibTorch: the headers and libraries
    of the installed torch), and its outputs for real test images are tocha's own."""
    import os
    import shutil
    from pathlib import Path

    if shutil.which("g++") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("g++ is needed to build the LibTorch program (apt-get install g++)")
        pytest.skip("no g++ to build the LibTorch program")
    run = run_of(shared_run, "tinyvgg")
    path = export_model(run.run_dir, "torchscript", tmp_path / "m.torchscript", log=lambda _l: None).path
    torch_dir, program = Path(torch.__file__).parent, tmp_path / "load_torchscript"
    source = Path(__file__).parent / "cpp" / "load_torchscript.cpp"
    includes = [torch_dir / "include", torch_dir / "include" / "torch" / "csrc" / "api" / "include"]
    built = subprocess.run(["g++", "-std=c++20", "-O0", "-w", str(source), "-o", str(program),
                            f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}",
                            *(f"-I{folder}" for folder in includes), f"-L{torch_dir / 'lib'}", "-ltorch",
                            "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}"],
                           capture_output=True, text=True)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    images = run.data.test.images[:16].contiguous()  # (16, 1, 28, 28) uint8
    (tmp_path / "images.u8").write_bytes(images.numpy().tobytes())
    done = subprocess.run([str(program), str(path), str(tmp_path / "images.u8"), *map(str, images.shape)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    cpp = torch.tensor([[float(v) for v in line.split()] for line in done.stdout.splitlines()])
    expected = load_inference_model(run.run_dir, torch.device("cpu")).logits(images)
    assert cpp.shape == expected.shape and torch.allclose(cpp, expected, atol=1e-4)
