"""Run configuration: defaults, YAML files in and out, type checks and validation by key name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tocha.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    config_from_dict,
    copy_config,
    get_value,
    load_config,
    set_value,
    to_dict,
    to_yaml,
    validate,
)
from tocha.errors import TochaError


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    cfg = RunConfig()
    assert cfg.data == DataConfig() and cfg.data.name == "auto" and cfg.data.download is True
    assert cfg.data.test_fraction == 0.2 and cfg.data.image_size is None
    assert cfg.model.name == "auto" and cfg.model.args is None  # tinyvgg, or mlp for a table
    assert cfg.train.epochs == 2 and cfg.train.batch_size == 64 and cfg.train.lr == 0.001
    assert cfg.train.optimizer == "adam" and cfg.train.loss == "auto"  # cross_entropy, or mse for regression
    assert cfg.out_dir == "runs" and cfg.run_name is None
    validate(cfg)  # the defaults are a valid run


def test_load_valid_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
data:
  name: mnist
  image_size: [32, 24]
  mean: [0.5]
  std: [1]            # an int is accepted for a float
model:
  name: mlp
  hidden_sizes: [256, 128]
  activation: gelu
  log_softmax: true
train:
  epochs: 5
  lr: 0.01
  batch_size: 32
out_dir: elsewhere
run_name: first
""",
    )
    cfg = load_config(path)
    assert cfg.data == DataConfig(name="mnist", image_size=[32, 24], mean=[0.5], std=[1.0])
    assert isinstance(cfg.data.std[0], float)
    assert cfg.model == ModelConfig(
        name="mlp", args={"hidden_sizes": [256, 128], "activation": "gelu", "log_softmax": True}
    )
    assert cfg.train == TrainConfig(epochs=5, lr=0.01, batch_size=32)
    assert isinstance(cfg.train.lr, float)
    assert (cfg.out_dir, cfg.run_name) == ("elsewhere", "first")


def test_int_for_float_is_converted(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "train:\n  lr: 1\n  weight_decay: 0\n"))
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float
    assert type(cfg.train.weight_decay) is float


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    assert load_config(write(tmp_path, text)) == RunConfig()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  epoch: 3\n", "train.epoch"),
        ("data:\n  nmae: mnist\n", "data.nmae"),
        ("optimizer: sgd\n", "optimizer"),
        ("trian:\n  epochs: 3\n", "trian"),
    ],
)
def test_unknown_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text, "typo.yaml")
    with pytest.raises(TochaError, match="typo.yaml") as e:
        load_config(path)
    assert repr(key) in str(e.value) or key in str(e.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  epochs: three\n", "train.epochs"),
        ("train:\n  epochs: 2.5\n", "train.epochs"),
        ("train:\n  epochs: true\n", "train.epochs"),  # a bool is not an int here
        ("train:\n  lr: fast\n", "train.lr"),
        ("train:\n  lr: true\n", "train.lr"),
        ("data:\n  download: 'yes please'\n", "data.download"),
        ("model:\n  name: 3\n", "model.name"),
        ("model:\n  hidden_sizes: 128\n", "model.hidden_sizes"),
        ("data:\n  image_size: {h: 3}\n", "data.image_size"),
    ],
)
def test_wrong_type_is_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(TochaError, match="run.yaml") as e:
        load_config(write(tmp_path, text))
    assert f"'{key}'" in str(e.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("model:\n  hidden_sizes: [128, big]\n", "model.hidden_sizes[1]"),
        ("data:\n  mean: [0.5, 0.4, x]\n", "data.mean[2]"),
        ("data:\n  image_size: [28, 28.5]\n", "data.image_size[1]"),
    ],
)
def test_wrong_list_element_is_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(TochaError) as e:
        load_config(write(tmp_path, text))
    assert f"'{key}'" in str(e.value)


@pytest.mark.parametrize("text", ["train: [epochs: 3\n", "train:\n  epochs: 3\n bad: indent\n", "a: b: c\n"])
def test_invalid_yaml_names_the_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(TochaError, match="broken.yaml"):
        load_config(write(tmp_path, text, "broken.yaml"))


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "train: 3\n"])
def test_not_a_mapping_names_the_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(TochaError, match="shape.yaml"):
        load_config(write(tmp_path, text, "shape.yaml"))


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(TochaError, match="absent.yaml"):
        load_config(tmp_path / "absent.yaml")


def custom_config() -> RunConfig:
    return RunConfig(
        data=DataConfig(
            name="cifar10",
            data_dir="/data",
            download=False,
            image_size=[40, 30],
            test_fraction=0.25,
            split_seed=9,
            mean=[0.4, 0.5, 0.6],
            std=[0.2, 0.2, 0.3],
        ),
        model=ModelConfig(
            name="mlp", args={"hidden_sizes": [64, 32], "activation": "tanh", "log_softmax": False}
        ),
        train=TrainConfig(
            epochs=7,
            batch_size=16,
            optimizer="sgd",
            lr=1e-5,
            momentum=0.5,
            nesterov=True,
            weight_decay=1e-4,
            label_smoothing=0.1,
            seed=3,
            device="cpu",
        ),
        out_dir="out",
        run_name="trial",
    )


@pytest.mark.parametrize("cfg", [RunConfig(), custom_config()], ids=["defaults", "custom"])
def test_yaml_round_trip(tmp_path: Path, cfg: RunConfig) -> None:
    path = write(tmp_path, to_yaml(cfg))
    loaded = load_config(path)
    assert loaded == cfg
    assert to_dict(loaded) == to_dict(cfg)


def test_copy_config_is_deep_and_equal() -> None:
    cfg = custom_config()
    copy = copy_config(cfg)
    assert copy == cfg
    copy.model.args["hidden_sizes"].append(1)
    copy.train.epochs = 1
    assert cfg.model.args["hidden_sizes"] == [64, 32] and cfg.train.epochs == 7


def test_set_value() -> None:
    cfg = RunConfig()
    set_value(cfg, "train.epochs", 9)
    set_value(cfg, "model.hidden_units", None)
    set_value(cfg, "run_name", "x")
    assert cfg.train.epochs == 9 and cfg.run_name == "x"
    with pytest.raises(TochaError, match="'train.nope'"):
        set_value(cfg, "train.nope", 1)
    with pytest.raises(TochaError, match="'bogus.epochs'"):
        set_value(cfg, "bogus.epochs", 1)
    with pytest.raises(TochaError, match="'train.epochs'"):
        set_value(cfg, "train.epochs", "9")


def test_config_from_dict_rejects_non_mapping_section() -> None:
    with pytest.raises(TochaError, match="'model'"):
        config_from_dict({"model": ["mlp"]})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train.epochs", 0),
        ("train.epochs", -3),
        ("train.batch_size", -1),
        ("train.batch_size", 0),
        ("train.eval_batch_size", 0),
        ("train.lr", 0),
        ("train.lr", -0.1),
        ("train.label_smoothing", 1.0),
        ("train.weight_decay", -1e-3),
        ("data.test_fraction", 0.0),
        ("data.test_fraction", 1.0),
    ],
)
def test_validate_rejects_and_names_the_key(key: str, value: float) -> None:
    cfg = RunConfig()
    set_value(cfg, key, value)
    with pytest.raises(TochaError, match=f"'{key}'") as e:
        validate(cfg)
    assert f"got {value}" in str(e.value)


@pytest.mark.parametrize(
    ("key", "value"), [("train.lr", 1e-9), ("train.label_smoothing", 0.99), ("train.epochs", 1)]
)
def test_validate_accepts_edge_values(key: str, value: float) -> None:
    cfg = RunConfig()
    set_value(cfg, key, value)
    validate(cfg)


def test_yaml_float_forms_that_load(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "train:\n  lr: 1.0e-3\n  weight_decay: .5\n"))
    assert cfg.train.lr == 0.001 and cfg.train.weight_decay == 0.5


def test_scientific_notation_without_dot(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "train:\n  lr: 1e-3\n"))
    assert cfg.train.lr == 0.001


def test_on_bad_image_defaults_to_fail_and_is_validated(tmp_path: Path) -> None:
    assert RunConfig().data.on_bad_image == "fail"
    assert load_config(write(tmp_path, "data:\n  on_bad_image: skip\n")).data.on_bad_image == "skip"
    cfg = RunConfig()
    set_value(cfg, "data.on_bad_image", "ignore")
    with pytest.raises(TochaError, match=r"'data.on_bad_image' must be fail or skip \(got 'ignore'\)"):
        validate(cfg)


def test_a_config_written_when_model_options_were_fields_still_loads(tmp_path: Path) -> None:
    """Before a model's options were its own mapping, config.yaml held every family's option as a
    field, unset ones null, and `args: null` after them: the options set join the model's own."""
    old = (
        "model:\n  name: tinyvgg\n  hidden_units: 16\n  hidden_sizes: null\n  widths: null\n"
        "  activation: tanh\n  log_softmax: false\n  args: null\n  file: null\n"
    )
    cfg = load_config(write(tmp_path, old))
    assert cfg.model.args == {"hidden_units": 16, "activation": "tanh", "log_softmax": False}
    assert get_value(cfg, "model.hidden_units") == 16 and get_value(cfg, "model.widths") is None
    assert "hidden_units: 16" in to_yaml(cfg) and "widths" not in to_yaml(cfg)  # written as its own


def test_a_family_option_and_model_arg_are_one_slot() -> None:
    cfg = RunConfig()
    set_value(cfg, "model.args", {"hidden_units": 8, "extra": [1]})
    set_value(cfg, "model.hidden_units", 16)  # the flag's key: the same option, typed as the family's
    assert cfg.model.args == {"hidden_units": 16, "extra": [1]}
    set_value(cfg, "model.hidden_units", None)  # unset: the model's default
    assert cfg.model.args == {"extra": [1]}
    with pytest.raises(TochaError, match="'model.hidden_units': expected int"):
        set_value(cfg, "model.hidden_units", "many")
