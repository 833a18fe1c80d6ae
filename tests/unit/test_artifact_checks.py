"""What is checked is what is loaded, and no archive expands without bound (issue 10, items 12-13).

The endpoint's load_model runs in-process here (it is what the server runs at start and on SIGHUP); the
evaluation script runs as the Evaluate step runs it, as a process. A malicious pickle in these tests only
creates a marker file when it is unpickled, so "it did not run" is a file that does not exist.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.unit.serving_support import (
    DATA,
    ROOT,
    add_bytes,
    add_zeros,
    fitted_model_bytes,
    model_archive,
)


class _Payload:
    """Unpickling this opens (creates) the marker file: a stand-in for any code an attacker's pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


@pytest.fixture(scope="module")
def model() -> bytes:
    return fitted_model_bytes()


@pytest.fixture
def entry_point_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_model imports the archive's code as the module entry_point: put the test process's back afterwards."""
    if "entry_point" in sys.modules:
        monkeypatch.setitem(sys.modules, "entry_point", sys.modules["entry_point"])
    else:
        monkeypatch.delitem(sys.modules, "entry_point", raising=False)


def disk_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.exists() else 0


# ------------------------------------------------------------------- 12. checked is what is loaded


def test_an_archive_swapped_after_its_checksum_is_never_loaded(
    model: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_point_module: None
) -> None:
    from core.local.serving.artifacts import LoadedModel, ModelLoadError, load_model

    archive = tmp_path / "model.tar.gz"
    good_sha = model_archive(archive, model)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.tar.gz"
    model_archive(evil, malicious_pickle(marker))

    # The attacker's window: the digest of the good archive is known, and the file at the path becomes theirs.
    real_sha256 = hashlib.sha256
    swapped: list[bool] = []

    class SwapAfterDigest:
        def __init__(self, data: bytes = b"") -> None:
            self._digest = real_sha256(data)

        def update(self, data: bytes) -> None:
            self._digest.update(data)

        def hexdigest(self) -> str:
            value = self._digest.hexdigest()
            if value == good_sha and not swapped:
                os.replace(evil, archive)
                swapped.append(True)
            return value

    monkeypatch.setattr(hashlib, "sha256", SwapAfterDigest)
    try:
        loaded = load_model(str(archive), good_sha, str(tmp_path / "models"))
    except ModelLoadError as exc:
        loaded = exc
    monkeypatch.undo()

    assert swapped, "the digest was never taken"
    assert not marker.exists(), "the swapped-in pickle ran in the server"
    assert isinstance(loaded, LoadedModel) and loaded.sha256 == good_sha, loaded
    answer = loaded.chain.invoke(b"8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23\n", "text/csv", "text/csv")
    assert answer.status == 200
    # Only the verified copy's extraction is kept, in a folder no other user can enter.
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir()] == [good_sha]
    assert (models / good_sha).stat().st_mode & 0o777 == 0o700


def _evaluate(model_dir: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test"
    test.mkdir(exist_ok=True)
    import pandas as pd

    pd.read_csv(DATA).head(50).iloc[:, [8, *range(8)]].to_csv(test / "test.csv", header=False, index=False)
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "container_scripts" / "evaluation.py"),
            "--model-dir",
            str(model_dir),
            "--test-dir",
            str(test),
            "--output-dir",
            str(tmp_path / "evaluation"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(temporary)},
    )


def test_evaluation_loads_only_what_it_extracted_from_the_archive(model: bytes, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    # The archive has its model one folder down; a model.joblib already waits where the old code looked.
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        add_bytes(tar, "model/model.joblib", model)
    marker = tmp_path / "pwned"
    (model_dir / "extracted").mkdir()
    (model_dir / "extracted" / "model.joblib").write_bytes(malicious_pickle(marker))

    result = _evaluate(model_dir, tmp_path)
    assert not marker.exists(), "a pickle that was not in the archive ran"
    assert result.returncode == 1 and "has no model.joblib at its root" in result.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # its private extraction folder is removed


def test_evaluation_still_evaluates_a_good_archive(model: bytes, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model_archive(model_dir / "model.tar.gz", model)
    result = _evaluate(model_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "evaluation" / "evaluation.json").is_file()
    assert list((tmp_path / "tmp").iterdir()) == []


# --------------------------------------------------------------------------- 13. no bombs


BOMB_BYTES = 64 * 1024 * 1024


def _bomb(model: bytes, path: Path) -> str:
    """A valid model archive plus 64 MB of zeros: about 100 KB on disk."""
    return model_archive(path, model, extra=lambda tar: add_zeros(tar, "padding.bin", BOMB_BYTES))


def test_a_decompression_bomb_is_refused_and_nothing_stays_on_disk(
    model: bytes, tmp_path: Path, entry_point_module: None
) -> None:
    from core.local.serving.artifacts import ModelLoadError, load_model

    archive = tmp_path / "bomb.tar.gz"
    sha = _bomb(model, archive)
    assert archive.stat().st_size < 1024 * 1024
    models = tmp_path / "models"
    with pytest.raises(ModelLoadError) as refused:
        load_model(str(archive), sha, str(models))
    message = str(refused.value)
    assert "would expand" in message and "padding.bin" not in message and message.endswith(".")
    assert disk_bytes(models) == 0 and (not models.exists() or list(models.iterdir()) == [])


def test_extraction_limits_are_configurable(model: bytes, tmp_path: Path, entry_point_module: None) -> None:
    from core.local.serving import EndpointConfig
    from core.local.serving.artifacts import ExtractionLimits, ModelLoadError, load_model

    archive = tmp_path / "bomb.tar.gz"
    sha = _bomb(model, archive)
    generous = ExtractionLimits(max_ratio=2000, max_bytes=128 * 1024 * 1024, max_members=10)
    assert load_model(str(archive), sha, str(tmp_path / "models"), generous).sha256 == sha
    with pytest.raises(ModelLoadError, match="would expand"):
        load_model(str(archive), sha, str(tmp_path / "other"), ExtractionLimits(max_ratio=2000, max_bytes=32 << 20))

    many = tmp_path / "many.tar.gz"

    def files(tar: tarfile.TarFile) -> None:
        for index in range(50):
            add_bytes(tar, f"code/lib/{index}.txt", b"x")

    many_sha = model_archive(many, model, extra=files)
    with pytest.raises(ModelLoadError, match="more than 20 members"):
        load_model(str(many), many_sha, str(tmp_path / "third"), ExtractionLimits(max_members=20))
    assert disk_bytes(tmp_path / "third") == 0

    config = EndpointConfig.from_dict(
        {
            "endpoint_name": "housing-prod",
            "model_tar": str(archive),
            "model_sha256": sha,
            "max_extracted_bytes": 1 << 30,
            "max_extract_ratio": 50,
            "max_archive_members": 100,
        }
    )
    assert config.extraction_limits() == ExtractionLimits(max_ratio=50, max_bytes=1 << 30, max_members=100)
    assert EndpointConfig.from_dict(config.to_dict()) == config


def test_evaluation_refuses_a_decompression_bomb(model: bytes, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _bomb(model, model_dir / "model.tar.gz")
    result = _evaluate(model_dir, tmp_path)
    assert result.returncode == 1 and "would expand" in result.stderr
    assert not (tmp_path / "evaluation").exists()
    assert disk_bytes(tmp_path / "tmp") == 0 and [p.name for p in model_dir.iterdir()] == ["model.tar.gz"]
    # The bound is a setting of the script, for models that are legitimately large.
    allowed = _evaluate(model_dir, tmp_path, "--max-extract-ratio", "2000")
    assert allowed.returncode == 0, allowed.stderr


def test_archives_refuse_sparse_members_and_keep_other_checks(tmp_path: Path) -> None:
    from core.local.serving.artifacts import ModelLoadError, safe_extract

    archive = tmp_path / "sparse.tar"
    info = tarfile.TarInfo("model.joblib")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 0
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    (tmp_path / "out").mkdir()
    with pytest.raises(ModelLoadError, match="not a regular file"):
        safe_extract(str(archive), str(tmp_path / "out"))
