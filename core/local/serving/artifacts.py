"""From a model.tar.gz to an entry point that has answered once: checksum, safe extraction, model_fn, warm-up.

The archive is laid out as SageMaker's repack leaves it: the model's files at the root and the inference
code in ``code/`` (``code/entry_point.py``). The entry point is imported from there, as the container
imports it, so a version keeps the entry point it was registered with. Archives without ``code/`` (made
before the local Register step repacked) are served with the installed ``entry_point`` module.

Everything that can go wrong ends in ``ModelLoadError`` with one sentence, which the server writes into
state.json as the endpoint's failure reason (at start) or as ``last_reload_error`` (on SIGHUP).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from types import ModuleType

from core.hashing import file_sha256
from core.sources import ENTRY_POINT
from core.spec import DEFAULT_INVOCATIONS_ACCEPT, ENTRY_POINT_FILE

from .handler_chain import ChainError, HandlerChain

CODE_FOLDER = "code"
# Two rows of the bundled data: a request every entry point of this model must answer before it may serve.
WARM_UP_BODY = b"8.3252,41.0,6.984126984126984,1.0238095238095237,322.0,2.5555555555555554,37.88,-122.23\n" * 2


class ModelLoadError(Exception):
    """The model could not be made ready; the message is the reason shown to the user."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve; requests read ``chain`` and ``sha256`` from one object, so a swap is atomic."""

    sha256: str
    chain: HandlerChain
    folder: str
    entry_point: str  # where the entry point came from: the archive's code/ folder, or the installed module


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


def _import_entry_point(folder: str) -> tuple[ModuleType, str]:
    """The archive's code/entry_point.py as the module ``entry_point``; this project's own for old archives."""
    path = os.path.join(folder, CODE_FOLDER, ENTRY_POINT_FILE)
    source = f"{CODE_FOLDER}/{ENTRY_POINT_FILE} from the archive"
    if not os.path.isfile(path):
        path, source = str(ENTRY_POINT), "the installed entry_point (the archive has no code/)"
    module_name = os.path.splitext(ENTRY_POINT_FILE)[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    # As in the container: the code folder is on sys.path while the module loads (for modules beside it),
    # and the module is importable as entry_point (for pickles that name its classes).
    code_dir = os.path.dirname(path)
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    sys.path.insert(0, code_dir)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        if previous is not None:
            sys.modules[module_name] = previous
        raise ModelLoadError(f"{path} could not be imported ({type(exc).__name__}: {exc}).") from None
    finally:
        sys.path.remove(code_dir)
    return module, source


def load_model(archive: str, expected_sha256: str, models_root: str) -> LoadedModel:
    """Check, extract and load a model.tar.gz, then have its entry point answer one request before it may serve."""
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
    module, source = _import_entry_point(folder)
    try:
        chain = HandlerChain(module, default_accept=DEFAULT_INVOCATIONS_ACCEPT)
        chain.load(folder)
    except ChainError as exc:
        raise ModelLoadError(str(exc)) from None
    except Exception as exc:
        raise ModelLoadError(
            f"entry_point.model_fn could not load the model from {folder} ({type(exc).__name__}: {exc})."
        ) from None
    # One request now: it proves the model answers rows of 8 features, and its one-off costs (lazy
    # imports, first-call caches) are paid here instead of by the first caller.
    answer = chain.invoke(WARM_UP_BODY, "text/csv", "text/csv")
    if answer.status != 200:
        reason = answer.body.decode(errors="replace").strip()[:300]
        raise ModelLoadError(
            f"The model could not answer a two-row CSV request ({answer.status}: {reason}), so it was not served."
        )
    return LoadedModel(sha256=actual, chain=chain, folder=folder, entry_point=source)
