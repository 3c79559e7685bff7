"""ImageNet weights for the backbones (`models.backbones`), found and checked as torchvision finds them.

`--pretrained imagenet` takes torchvision's own file: from torch's hub cache
(`$TORCH_HOME/hub/checkpoints/`, where `torch.hub.load_state_dict_from_url` keeps it), downloaded
there once with torch's own `download_url_to_file` where it is missing. `--pretrained PATH` takes a
file of yours. Either way the file is checked before a weight is used: a name carrying a hash
prefix (`mobilenet_v2-b0353104.pth`, torch hub's convention) must match the file's SHA-256, and the
file is read with `weights_only=True` (a pickle that would run code is refused, not run). Loading
into the model (`load_pretrained`) checks every key and shape and names the head it replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tocha.errors import TochaError
from tocha.files import file_sha256

# torchvision's ImageNet-1k weights (IMAGENET1K_V1), by the model they fit.
IMAGENET_URLS = {
    "mobilenet_v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}
IMAGENET = "imagenet"
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")  # torch.hub's: `NAME-<sha256 prefix>.pth`


@dataclass(frozen=True)
class PretrainedWeights:
    """A checked weights file: where it is, its SHA-256, and its tensors (on the CPU)."""

    path: Path
    sha256: str
    weights: dict[str, Any]
    url: str | None  # where `imagenet` comes from; None for a file of yours

    def described(self) -> str:
        return f"{self.path.name} (SHA-256 {self.sha256[:12]}...)"


def hub_checkpoints() -> Path:
    """torch's hub cache of weight files (`$TORCH_HOME/hub/checkpoints`)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def read_pretrained(model: str, asked: str, *, urls: dict[str, str] | None = None,
                    progress: bool = False) -> PretrainedWeights:  # fmt: skip
    """The weights `--pretrained asked` names for `model`: `imagenet` (torch's cache, downloaded
    from `urls[model]` when missing) or a file's path; checked (name hash, weights only)."""
    urls = IMAGENET_URLS if urls is None else urls
    if asked != IMAGENET:
        path = Path(asked)
        if not path.is_file():
            raise TochaError(f"--pretrained {asked}: no such file (give imagenet, or a weights file's path)")
        return checked(path, None, f"--pretrained {asked}")
    if model not in urls:
        raise TochaError(f"--pretrained imagenet: {model} has no ImageNet weights; the models that do: "
                         f"{', '.join(urls)}")  # fmt: skip
    url = urls[model]
    path = hub_checkpoints() / url.rsplit("/", 1)[-1]
    if not path.is_file():
        download(url, path, progress)
    return checked(path, url, "--pretrained imagenet")


def download(url: str, path: Path, progress: bool) -> None:
    """torch's own download into the hub cache (a temporary file renamed into place, its SHA-256
    checked against the prefix in its name); a failure says which file, from where, and where it goes."""
    import torch

    prefix = match[1] if (match := HASH_IN_NAME.search(path.name)) else None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=progress)
    except Exception as e:  # offline, refused, cut short, or a file whose hash is not its name's
        raise TochaError(f"--pretrained imagenet: {path.name} is not in torch's cache ({path.parent}) and "
                         f"could not be downloaded from {url} ({type(e).__name__}: {e}); put the file "
                         "there, or give --pretrained PATH") from None  # fmt: skip


def checked(path: Path, url: str | None, what: str) -> PretrainedWeights:
    """The file's tensors, after its name's hash prefix is matched and it is read weights-only."""
    import pickle
    import warnings

    import torch

    sha256 = file_sha256(path)
    check_named_hash(path, sha256, what)
    try:
        with warnings.catch_warnings():  # torch's own warning of a refused pickle: the error below says it
            warnings.simplefilter("ignore")
            weights = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise TochaError(f"{what}: {path} is not a plain state dict of tensors: reading it would run code "
                         "(tocha reads weights with weights_only=True)") from None  # fmt: skip
    except Exception as e:  # a truncated zip, a file of something else
        raise TochaError(f"{what}: {path} cannot be read as a state dict ({type(e).__name__}); it is damaged "
                         "or not a weights file") from None  # fmt: skip
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise TochaError(f"{what}: {path} is not a state dict (a mapping of names to tensors)")
    return PretrainedWeights(path, sha256, weights, url)


def check_named_hash(path: Path, sha256: str, what: str) -> None:
    """A file named with a hash prefix (torch hub's `NAME-<prefix>.pth`) must have that SHA-256."""
    match = HASH_IN_NAME.search(path.name)
    if match and not sha256.startswith(match[1]):
        raise TochaError(f"{what}: {path} has SHA-256 {sha256[:12]}..., and its name says {match[1]}: it is "
                         "damaged or not the file its name says; download it again")  # fmt: skip


def state_dict_fit(own: dict[str, Any], weights: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """How a state dict fits a model's (`own`): the model's keys it lacks, its keys the model lacks,
    and the keys both have in other shapes (each list in its dict's order)."""
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    misfit = [k for k in own if k in weights and own[k].shape != weights[k].shape]
    return missing, unexpected, misfit


def pretrained_model(name: str, in_shape: tuple[int, int, int], num_classes: int, asked: str,
                     what: str) -> tuple[Any, str]:  # fmt: skip
    """Backbone `name` for `in_shape` and `num_classes`, with the weights `--pretrained asked`
    names loaded (`read_pretrained`, `load_pretrained`), and what was loaded, in words."""
    from tocha.models.registry import create_model

    model = create_model(name, in_shape, num_classes)
    return model, load_pretrained(model, read_pretrained(name, asked), what)


def load_pretrained(model: Any, source: PretrainedWeights, what: str) -> str:
    """Load `source` into `model`, key for key and shape for shape; a head of another size (other
    classes) stays freshly initialised. Returns what was done, in words; what does not fit is an
    error naming the first key that differs and both shapes."""
    from tocha.models.head import head_of

    head, _ = head_of(model)
    own, weights = model.state_dict(), source.weights
    missing, unexpected, replaced = state_dict_fit(own, weights)
    unfit = f"{what}: {source.path.name} does not fit this {type(model).__name__}"
    wrong = [k for k in own if k in missing or (k in replaced and not k.startswith(head + "."))]
    if wrong and wrong[0] in missing:
        raise TochaError(f"{unfit}: it has no {wrong[0]} (a file of another architecture?)")
    if wrong:
        key = wrong[0]
        raise TochaError(f"{unfit}: {key} is {tuple(weights[key].shape)} there, {tuple(own[key].shape)} "
                         "here")  # fmt: skip
    if unexpected:
        raise TochaError(f"{unfit}: it has {unexpected[0]}, which the model has not (a file of another "
                         "architecture?)")  # fmt: skip
    model.load_state_dict({k: v for k, v in weights.items() if k not in replaced}, strict=False)
    if not replaced:
        return f"every weight loaded from {source.described()}, its head {head} included"
    shape = tuple(weights[f"{head}.weight"].shape)
    return (f"{len(weights) - len(replaced)} tensors loaded from {source.described()}; the head {head} is "
            f"new ({shape[0]} ImageNet classes there, {tuple(own[f'{head}.weight'].shape)[0]} here), freshly "
            "initialised")  # fmt: skip
