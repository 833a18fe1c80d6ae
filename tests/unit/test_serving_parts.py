"""The endpoint server's parts in-process, without a server process: parsing, formats, config, archives, app."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.local.serving import EndpointConfig, read_state, write_json_atomic
from core.local.serving.app import InferenceApp
from core.local.serving.artifacts import LoadedModel, ModelLoadError, load_model, safe_extract
from core.local.serving.config import ConfigError
from core.local.serving.parsing import (
    CSV,
    JSON,
    PANDAS_MIN_BYTES,
    RequestError,
    _parse_csv_pandas,
    _parse_csv_rows,
    format_predictions,
    parse_csv,
    parse_json,
    predictions_to_list,
    request_format,
    response_format,
)

ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"

# ---------------------------------------------------------------------------------------------- CSV


def test_small_and_batch_paths_give_the_same_matrix() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(400, 8)) * 10.0 ** rng.integers(-5, 6, size=(400, 8))
    body = ("\n".join(",".join(repr(v) for v in row) for row in matrix.tolist()) + "\n").encode()
    assert len(body) >= PANDAS_MIN_BYTES
    batch = parse_csv(body)
    precise = _parse_csv_rows(body.decode())
    assert batch.shape == (400, 8)
    # The C parser may round a decimal string differently from Python's float() by at most one ulp.
    np.testing.assert_array_max_ulp(batch, precise, maxulp=1)
    np.testing.assert_array_max_ulp(batch, matrix, maxulp=1)


_FIELD = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=5),
    st.sampled_from(["", " 1", "1 ", '"1"', "nan", "1e999", "1_0", "+.5", "5.", ".", "-", "1e", "\x00", "#1"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_FIELD, min_size=7, max_size=9).map(",".join), min_size=1, max_size=6),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_batch_path_never_accepts_what_the_precise_path_refuses(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    accepted = _parse_csv_pandas(text.encode())
    if accepted is None:
        return  # the precise path decides these
    precise = _parse_csv_rows(text)
    np.testing.assert_array_max_ulp(accepted, precise, maxulp=1)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", ["empty"]),
        (b"1,2", ["Row 1 has 2 values"]),
        (f"{ROW}\n\n{ROW},1".encode(), ["Row 3 has 9 values"]),
        (ROW.replace("41.0", "x").encode(), ["Row 1, column 2", "'x'"]),
        (b"MedInc,HouseAge,AveRooms", ["header"]),
        (b"a,b,c,d,e,f,g,h\n" + ROW.encode(), ["header"]),
        (b",,,,,,,", ["Row 1, column 1: '' is not a number"]),
        (ROW.replace("41.0", "inf").encode(), ["finite"]),
        (b"\xc3\x28", ["UTF-8"]),
    ],
)
def test_csv_refusals_say_what_is_wrong(body: bytes, words: list[str]) -> None:
    with pytest.raises(RequestError) as refused:
        parse_csv(body)
    assert refused.value.status == 400
    for word in words:
        assert word in refused.value.message


def test_csv_refusals_are_the_same_on_the_batch_path() -> None:
    good = [ROW] * (PANDAS_MIN_BYTES // len(ROW) + 50)
    assert len("\n".join(good)) >= PANDAS_MIN_BYTES
    cases = [
        (200, ROW.replace("-122.23", "west"), "Row 201, column 8: 'west' is not a number"),
        (150, "1,2", "Row 151 has 2 values"),
        (99, ROW.replace("2.55", "NaN"), "Row 100, column 6: 'NaN' is not a finite number"),
        (0, ",".join(["MedInc", "HouseAge", "AveRooms", "AveBedrms"] * 2), "Row 1 is a header"),
    ]
    for index, line, message in cases:
        lines = list(good)
        lines[index] = line
        with pytest.raises(RequestError, match=message):
            parse_csv("\n".join(lines).encode())


def test_a_byte_order_mark_is_not_data() -> None:
    assert parse_csv(("\ufeff" + ROW).encode()).shape == (1, 8)


# --------------------------------------------------------------------------------------------- JSON


def test_json_instances_and_bare_list() -> None:
    row = [float(v) for v in ROW.split(",")]
    assert parse_json(json.dumps({"instances": [row, row]}).encode()).shape == (2, 8)
    assert parse_json(json.dumps([row]).encode()).tolist() == [row]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{", ["not valid"]),
        (b"[" * 100000, ["not valid"]),
        (b'{"instances": []}', ["empty"]),
        (b'{"instances": [1, 2]}', ["instances[0]", "not a list"]),
        (b'{"instances": [[true, 1, 2, 3, 4, 5, 6, 7]]}', ["instances[0][0]", "true"]),
        (b'{"instances": [[1e999, 1, 2, 3, 4, 5, 6, 7]]}', ["finite"]),
        (("[[" + "9" * 400 + ", 1, 2, 3, 4, 5, 6, 7]]").encode(), ["finite"]),
        (b"42", ['"instances"']),
    ],
)
def test_json_refusals_say_what_is_wrong(body: bytes, words: list[str]) -> None:
    with pytest.raises(RequestError) as refused:
        parse_json(body)
    assert refused.value.status == 400
    for word in words:
        assert word in refused.value.message


# ------------------------------------------------------------------------------------------ formats


def test_content_type_and_accept() -> None:
    assert request_format("text/csv; charset=utf-8") == CSV
    assert request_format("Application/JSON") == JSON
    with pytest.raises(RequestError) as unsupported:
        request_format("text/plain")
    assert unsupported.value.status == 415
    assert response_format(None, CSV) == CSV
    assert response_format("*/*", JSON) == JSON
    assert response_format("application/json, text/csv", CSV) == JSON
    assert response_format("text/*", JSON) == CSV
    with pytest.raises(RequestError) as unacceptable:
        response_format("text/html", CSV)
    assert unacceptable.value.status == 406


def test_predictions_keep_full_precision() -> None:
    values = predictions_to_list(np.array([0.1 + 0.2, 1 / 3, -2.5e-300]), 3)
    assert [float(line) for line in format_predictions(values, CSV).decode().splitlines()] == values
    assert json.loads(format_predictions(values, JSON)) == {"predictions": values}
    assert predictions_to_list(np.array([[1.0], [2.0]]), 2) == [1.0, 2.0]


def test_non_finite_or_misshapen_predictions_are_refused() -> None:
    with pytest.raises(RequestError, match="row 2") as refused:
        predictions_to_list(np.array([1.0, np.inf]), 2)
    assert refused.value.status == 400
    with pytest.raises(RequestError) as misshapen:
        predictions_to_list(np.array([1.0, 2.0, 3.0]), 2)
    assert misshapen.value.status == 424
    with pytest.raises(RequestError, match="not numbers") as labels:
        predictions_to_list(np.array(["cheap", "dear"]), 2)
    assert labels.value.status == 424


# ------------------------------------------------------------------------------------------- config


def _config(**changes: object) -> dict:
    return {
        "endpoint_name": "housing-prod",
        "model_tar": "/abs/model.tar.gz",
        "model_sha256": "A" * 64,
        "max_concurrency": 5,
        "host": "127.0.0.1",
        "port": 0,
        **changes,
    }


def test_config_round_trip_and_defaults() -> None:
    config = EndpointConfig.from_dict(_config())
    assert config.model_sha256 == "a" * 64
    assert EndpointConfig.from_dict(config.to_dict()) == config
    minimal = {k: v for k, v in _config().items() if k not in ("max_concurrency", "host", "port")}
    assert EndpointConfig.from_dict(minimal).port == 0


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"endpoint_name": "bad name"}, "endpoint name"),
        ({"model_tar": "relative.tar.gz"}, "absolute"),
        ({"model_sha256": "xyz"}, "hexadecimal"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"port": 70000}, "port"),
        ({"model_tar": None}, "model_tar"),
    ],
)
def test_config_errors_name_the_field(changes: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        EndpointConfig.from_dict(_config(**changes))


def test_state_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert read_state(str(path)) is None
    write_json_atomic(str(path), {"status": "Creating"})
    write_json_atomic(str(path), {"status": "InService"})
    assert read_state(str(path)) == {"status": "InService"}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


# ------------------------------------------------------------------------------------------ archive


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt"])
def test_archive_members_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", [(tarfile.TarInfo(name), b"x")])
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ModelLoadError, match="outside"):
        safe_extract(str(archive), str(target))
    assert not (tmp_path / "escape.txt").exists()
    assert list(target.iterdir()) == []


def test_archive_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("model.joblib")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "link.tar.gz", [(link, None)])
    (tmp_path / "out").mkdir()
    with pytest.raises(ModelLoadError, match="not a regular file"):
        safe_extract(str(archive), str(tmp_path / "out"))


def test_load_model_checks_the_checksum_before_extracting(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "m.tar.gz", [(tarfile.TarInfo("model.joblib"), b"junk")])
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model(str(archive), "0" * 64, str(tmp_path / "models"))
    assert not (tmp_path / "models").exists()
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "missing.tar.gz"), "0" * 64, str(tmp_path / "models"))


# ------------------------------------------------------------------------------------- application


def _call(app: InferenceApp, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through the ASGI app, in-process."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "headers": [(b"content-type", b"text/csv"), (b"content-length", str(len(body)).encode())],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_a_model_that_raises_costs_one_request_a_424() -> None:
    def predict(matrix: np.ndarray) -> np.ndarray:
        if matrix[0, 0] < 0:
            raise ArithmeticError("negative\n   income")  # scikit-learn's messages span lines too
        return matrix[:, 0] * 2

    app = InferenceApp("housing-prod", LoadedModel("ab" * 32, predict, None, ""), max_concurrency=2)
    status, headers, body = _call(app, ROW.replace("8.3252", "-1").encode())
    assert status == 424
    assert headers[b"x-amzn-errortype"] == b"ModelError"
    assert b"ArithmeticError: negative income" in body and b"\n" not in body
    status, headers, body = _call(app, ROW.encode())
    assert status == 200 and headers[b"x-model-sha256"] == b"ab" * 32
    assert body == b"16.6504\n"
