"""RecordCache: AWS records on disk, one private file per ARN (core/sagemaker/cache.py)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

from dateutil.tz import tzlocal

from core.sagemaker.cache import RecordCache

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/CaliforniaHousingPipeline/execution/abc123"


def test_a_record_comes_back_as_it_was_saved_times_included(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path)
    record = {
        "steps": [{"StartTime": dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=tzlocal()), "Name": "Train"}],
        "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    }
    cache.save(ARN, record)
    loaded = cache.load(ARN)
    assert loaded == record
    assert loaded["steps"][0]["StartTime"].timestamp() == record["steps"][0]["StartTime"].timestamp()
    path = cache.path(ARN)
    assert path == tmp_path / "123456789012/eu-west-1/pipeline/CaliforniaHousingPipeline/execution/abc123.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["abc123.json"]  # no temporary file left behind


def test_what_cannot_be_kept_safely_is_not_kept(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path)
    for arn in (
        "not an arn",
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/../../execution/x",
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline//execution/x",
    ):
        assert cache.path(arn) is None
        cache.save(arn, {"a": 1})
        assert cache.load(arn) is None
    cache.save(ARN, {"not json": object()})
    assert cache.load(ARN) is None and list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "123456789012").write_text("a file where a folder should be")
    cache = RecordCache(tmp_path)
    cache.save(ARN, {"a": 1})
    assert cache.load(ARN) is None
    cache.forget(ARN)
