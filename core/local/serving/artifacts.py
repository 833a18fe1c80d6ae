"""From a model.tar.gz to a model that has predicted once: checksum, safe extraction, model_fn, warm-up.

Everything that can go wrong ends in ``ModelLoadError`` with one sentence, which the server writes into
state.json as the endpoint's failure reason (at start) or as ``last_reload_error`` (on SIGHUP).
"""

from __future__ import annotations

import importlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.hashing import file_sha256

from .parsing import N_FEATURES


class ModelLoadError(Exception):
    """The model could not be made ready; the message is the reason shown to the user."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve; requests read ``predict`` and ``sha256`` from one object, so a swap is atomic."""

    sha256: str
    predict: Callable[[np.ndarray], Any]
    model: Any
    folder: str


def safe_extract(archive: str, target: str) -> None:
    """Extract only regular files and folders that stay inside target; refuse the archive otherwise.

    A model.tar.gz is input like any other: a member named ../x or /etc/x, a link or a device must not
    reach outside the extraction folder, so the whole archive is checked before anything is written.
    """
    root = os.path.realpath(target)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                destination = os.path.realpath(os.path.join(root, member.name))
                inside = destination == root or destination.startswith(root + os.sep)
                if os.path.isabs(member.name) or not inside:
                    raise ModelLoadError(
                        f"The model archive {archive} holds {member.name!r}, which would land outside "
                        "its extraction folder, so it was not extracted."
                    )
                if not (member.isfile() or member.isdir()):
                    raise ModelLoadError(
                        f"The model archive {archive} holds {member.name!r}, which is not a regular file "
                        "or folder (a link or device), so it was not extracted."
                    )
            # Where tarfile has extraction filters (3.11.4+), "data" re-checks the same rules and drops
            # owners and odd permission bits; the checks above hold on their own without it.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for member in members:
                tar.extract(member, root, set_attrs=False, **extra)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"The model archive {archive} could not be read as a tar.gz ({type(exc).__name__}: {exc})."
        ) from None


def extract_model(archive: str, sha256: str, models_root: str) -> str:
    """Extract into ``models_root/<sha256>``, through a temporary folder so a half extraction never shows."""
    os.makedirs(models_root, exist_ok=True)
    final = os.path.join(models_root, sha256)
    staging = tempfile.mkdtemp(prefix=f".extract-{sha256[:12]}-", dir=models_root)
    try:
        safe_extract(archive, staging)
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _model_fn() -> Callable[[str], Any]:
    # entry_point is the project's installed top-level module: the same model_fn SageMaker's container calls.
    module = importlib.import_module("entry_point")
    return module.model_fn


def load_model(archive: str, expected_sha256: str, models_root: str) -> LoadedModel:
    """Check, extract and load a model.tar.gz, then have the model predict one row before it may serve."""
    if not os.path.isfile(archive):
        raise ModelLoadError(f"The model archive {archive} does not exist.")
    try:
        actual = file_sha256(archive)
    except OSError as exc:
        raise ModelLoadError(f"The model archive {archive} could not be read: {exc}.") from None
    expected = expected_sha256.strip().lower()
    if actual != expected:
        raise ModelLoadError(
            f"The model archive {archive} has sha256 {actual}, but the endpoint expects {expected}: "
            "the file changed after it was registered, so it was not loaded."
        )
    folder = extract_model(archive, actual, models_root)
    try:
        model = _model_fn()(folder)
    except Exception as exc:
        raise ModelLoadError(
            f"entry_point.model_fn could not load the model from {folder} ({type(exc).__name__}: {exc})."
        ) from None
    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise ModelLoadError(f"entry_point.model_fn returned a {type(model).__name__}, which has no predict method.")
    # One prediction now: it proves the model takes 8 features, and its one-off costs (lazy imports,
    # first-call caches) are paid here instead of by the first request.
    try:
        output = np.asarray(predict(np.zeros((1, N_FEATURES))), dtype=np.float64).reshape(-1)
    except Exception as exc:
        raise ModelLoadError(
            f"The loaded model could not predict one row of {N_FEATURES} features ({type(exc).__name__}: {exc})."
        ) from None
    if output.shape != (1,):
        raise ModelLoadError(
            f"The loaded model returned {output.size} values for one row of {N_FEATURES} features, not one."
        )
    return LoadedModel(sha256=actual, predict=predict, model=model, folder=folder)
