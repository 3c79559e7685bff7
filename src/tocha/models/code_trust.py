"""Who chose the code a user's model runs.

tocha imports a user's model file only when the person running it chose that code:

- NAMED: named on this command line (`--model FILE.py:NAME`, `--model-file FILE.py`) or in this
  Python call (`model=`, `model_file=`); the code is used as it is now, and recorded.
- TRUSTED: `--trust-code` (`trust_code=True`): the code a checkpoint, export, config or run folder
  records, as it was recorded (every file's SHA-256 is checked before a line of it runs).
- RECORDED: neither; then only a record this user made on this machine is followed: one whose
  signature checks. The signature is an HMAC-SHA256 of the record (the model's name, file, every
  source file's SHA-256, its arguments) under a key only this user holds (`trust.key`, mode 0600, in
  tocha's data folder), written when the person named the code. A run trained here can thus be
  evaluated, predicted, served, exported and resumed without asking again; a file from elsewhere,
  or one edited to name other code or arguments, is refused, saying how to allow it.

The hash check alone (`file_sha256`) proves that a file is the file recorded, not that the user
chose it: a checkpoint could name the standard library's `os.py` with its real hash.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

KEY_ENV = "TOCHA_TRUST_KEY"  # the key file's path, where the default place does not suit
_PROCESS_KEY: list[bytes] = []  # a key of this process alone, where no key file can be written


class CodeTrust(enum.Enum):
    RECORDED = "recorded"  # only a record signed on this machine by this user
    NAMED = "named"  # named on this command line or in this call
    TRUSTED = "trusted"  # --trust-code: what the record says, its hashes checked


def chosen_by(given: set[str], trust_code: bool, section: str = "model") -> CodeTrust:
    """Who chose the code of `section` (your model's, or your data's: `data.code`), from the config
    keys this command line or call gives (`model.name`, `model.file`: named here) and its
    `--trust-code`."""
    if given & {f"{section}.name", f"{section}.file"}:
        return CodeTrust.NAMED
    return CodeTrust.TRUSTED if trust_code else CodeTrust.RECORDED


def key_path() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "tocha" / "trust.key"


def trust_key() -> bytes:
    """This user's key: read, or made once (readable by its owner only; two processes making it at
    once agree on the first written, as a link never replaces a file)."""
    path = key_path()
    try:
        return read_key(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)  # fails if another process made it first: then theirs holds
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
        return read_key(path)
    except OSError:  # a read-only home: signatures that hold in this process only
        if not _PROCESS_KEY:
            _PROCESS_KEY.append(secrets.token_bytes(32))
        return _PROCESS_KEY[0]


def read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 32:
        raise OSError(f"{path}: not a key")
    return text.encode()


def signed_fields(model: Any) -> dict[str, Any]:
    """What a signature covers: what decides the code that runs and how it is called (and, for your
    data's code, that it is data: a data record's signature never passes for a model's)."""
    from tocha.config_data import DataConfig

    fields = {"name": model.name, "file": model.file, "file_sha256": model.file_sha256,
              "sources": sorted(model.sources or []), "args": model.args}  # fmt: skip
    return {**fields, "section": "data"} if isinstance(model, DataConfig) else fields


def signature(model: Any) -> str:
    """The record's signature under this user's key (`model`: a ModelConfig, or a DataConfig)."""
    payload = json.dumps(signed_fields(model), sort_keys=True, default=str).encode()
    return hmac.new(trust_key(), payload, hashlib.sha256).hexdigest()


def signed_here(model: Any) -> bool:
    """Whether the record carries this user's signature: made when the person named the code."""
    return bool(model.signature) and hmac.compare_digest(str(model.signature), signature(model))
