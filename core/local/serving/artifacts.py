"""From a model.tar.gz to an entry point that has answered once: checksum, safe extraction, model_fn, warm-up.

The archive is laid out as SageMaker's repack leaves it: the model's files at the root and the inference
code in ``code/`` (``code/entry_point.py``). The entry point is imported from there, as the container
imports it, so a version keeps the entry point it was registered with. Archives without ``code/`` (made
before the local Register step repacked) are served with the installed ``entry_point`` module.

What is checked is what is loaded: the archive is opened once, its bytes hashed while they are copied into
a private (0700) folder of the endpoint, and only that copy is extracted and unpickled. Checking the file
and then opening it again by its path would load whatever was put at that path in between.

Everything that can go wrong ends in ``ModelLoadError`` with one sentence, which the server writes into
state.json as the endpoint's failure reason (at start) or as ``last_reload_error`` (on SIGHUP).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import stat
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from types import ModuleType

from core.sources import ENTRY_POINT
from core.spec import DEFAULT_INVOCATIONS_ACCEPT, ENTRY_POINT_FILE

from .config import ExtractionLimits
from .handler_chain import ChainError, HandlerChain

CODE_FOLDER = "code"
# Two rows of the bundled data: a request every entry point of this model must answer before it may serve.
WARM_UP_BODY = b"8.3252,41.0,6.984126984126984,1.0238095238095237,322.0,2.5555555555555554,37.88,-122.23\n" * 2
_COPY_CHUNK = 1024 * 1024
_ARCHIVE_COPY = "model.tar.gz"
_EXTRACTED = "model"


class ModelLoadError(Exception):
    """The model could not be made ready; the message is the reason shown to the user."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve; requests read ``chain`` and ``sha256`` from one object, so a swap is atomic."""

    sha256: str
    chain: HandlerChain
    folder: str
    entry_point: str  # where the entry point came from: the archive's code/ folder, or the installed module


def _size(count: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _checked_members(tar: tarfile.TarFile, archive: str, root: str, limits: ExtractionLimits) -> list[tarfile.TarInfo]:
    """Every member, checked before anything is written; read one header at a time so a million stop early."""
    allowed = limits.allowance(os.path.getsize(archive))
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        if len(members) == limits.max_members:
            raise ModelLoadError(
                f"The model archive {archive} holds more than {limits.max_members} members "
                "(files and folders), so it was not extracted."
            )
        destination = os.path.realpath(os.path.join(root, member.name))
        inside = destination == root or destination.startswith(root + os.sep)
        if os.path.isabs(member.name) or not inside:
            raise ModelLoadError(
                f"The model archive {archive} holds {member.name!r}, which would land outside "
                "its extraction folder, so it was not extracted."
            )
        # A sparse member counts as a regular file to tarfile, but its declared size is not what it writes.
        if member.issparse() or not (member.isfile() or member.isdir()):
            raise ModelLoadError(
                f"The model archive {archive} holds {member.name!r}, which is not a regular file "
                "or folder (a link, device or sparse file), so it was not extracted."
            )
        total += member.size if member.isfile() else 0
        if total > allowed:
            raise ModelLoadError(
                f"The model archive {archive} ({_size(os.path.getsize(archive))}) would expand to more than "
                f"{_size(allowed)}, the most an endpoint extracts ({limits.max_ratio:g} times the archive, "
                f"at most {_size(limits.max_bytes)}), so it was not extracted."
            )
        members.append(member)
    return members


def safe_extract(archive: str, target: str, limits: ExtractionLimits | None = None) -> None:
    """Extract only regular files and folders that stay inside target, within the size limits; refuse otherwise.

    A model.tar.gz is input like any other: a member named ../x or /etc/x, a link or a device must not
    reach outside the extraction folder, and a few kilobytes that expand to gigabytes must not fill the
    disk, so the whole archive is checked (its headers and declared sizes) before anything is written.
    tarfile writes exactly the declared size of each member, so the check bounds what lands on disk.
    """
    root = os.path.realpath(target)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, archive, root, limits or ExtractionLimits())
            # Where tarfile has extraction filters (3.11.4+), "data" re-checks the same rules and drops
            # owners and odd permission bits; the checks above hold on their own without it.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for member in members:
                tar.extract(member, root, set_attrs=False, **extra)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"The model archive {archive} could not be read as a tar.gz ({type(exc).__name__}: {exc})."
        ) from None


def copy_verified(archive: str, expected_sha256: str, destination: str) -> str:
    """Copy the archive to destination, hashing the very bytes copied; the digest, if it is the expected one.

    The file is opened once: whatever happens at its path afterwards, the copy holds the bytes that were
    hashed. The copy is created new (never through an existing file or link) and readable by its owner only.
    """
    digest = hashlib.sha256()
    try:
        with open(archive, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise ModelLoadError(f"The model archive {archive} is not a regular file.")
            descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(descriptor, "wb") as copy:
                while chunk := source.read(_COPY_CHUNK):
                    digest.update(chunk)
                    copy.write(chunk)
    except FileNotFoundError:
        raise ModelLoadError(f"The model archive {archive} does not exist.") from None
    except OSError as exc:
        raise ModelLoadError(f"The model archive {archive} could not be read: {exc.strerror or exc}.") from None
    actual = digest.hexdigest()
    expected = expected_sha256.strip().lower()
    if actual != expected:
        raise ModelLoadError(
            f"The model archive {archive} has sha256 {actual}, but the endpoint expects {expected}: "
            "the file changed after it was registered, so it was not loaded."
        )
    return actual


def extract_model(archive: str, sha256: str, models_root: str, limits: ExtractionLimits | None = None) -> str:
    """Verify and extract into ``models_root/<sha256>``, through a private staging folder.

    The staging folder (0700, from mkdtemp) holds the verified copy of the archive and its extraction;
    a failed check, a refused archive or a half extraction leaves nothing behind.
    """
    os.makedirs(models_root, mode=0o700, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".extract-", dir=models_root)
    try:
        copy = os.path.join(staging, _ARCHIVE_COPY)
        actual = copy_verified(archive, sha256, copy)
        extracted = os.path.join(staging, _EXTRACTED)
        os.mkdir(extracted, 0o700)
        safe_extract(copy, extracted, limits)
        final = os.path.join(models_root, actual)  # named by the digest of what was extracted
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(extracted, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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


def load_model(
    archive: str, expected_sha256: str, models_root: str, limits: ExtractionLimits | None = None
) -> LoadedModel:
    """Check, extract and load a model.tar.gz, then have its entry point answer one request before it may serve."""
    folder = extract_model(archive, expected_sha256, models_root, limits)
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
        reason = answer.failure or answer.body.decode(errors="replace").strip()[:300]
        raise ModelLoadError(
            f"The model could not answer a two-row CSV request ({answer.status}: {reason}), so it was not served."
        )
    return LoadedModel(sha256=os.path.basename(folder), chain=chain, folder=folder, entry_point=source)
