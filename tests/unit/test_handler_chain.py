"""The container's handler chain in-process: the defaults' traps, the status mapping and the request hand-over.

tests/parity checks the same behaviour against the real sagemaker_containers package in the image's pins.
"""

from __future__ import annotations

import io
import json
import types

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from core.local.serving.handler_chain import (
    ChainError,
    HandlerChain,
    array_to_csv,
    array_to_json,
    csv_to_numpy,
)

ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"


@pytest.fixture(scope="module")
def estimator() -> LinearRegression:
    rng = np.random.default_rng(0)
    features = rng.uniform(1, 10, size=(50, 8))
    return LinearRegression().fit(features, features @ np.arange(1.0, 9.0))


def module(name: str = "entry_point", **functions) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in functions.items():
        setattr(mod, key, value)
    return mod


def only_model_fn(estimator: LinearRegression) -> HandlerChain:
    """The lesson's entry point: model_fn and nothing else, so the container's defaults do the rest."""
    chain = HandlerChain(module(model_fn=lambda model_dir: estimator), default_accept="text/csv")
    chain.load("/opt/ml/model")
    return chain


def test_one_csv_row_fails_with_only_model_fn_as_on_sagemaker(estimator: LinearRegression) -> None:
    chain = only_model_fn(estimator)
    for body in (ROW, ROW + "\n"):  # squeezed to 1-D either way (aws/sagemaker-scikit-learn-container#15)
        answer = chain.invoke(body.encode(), "text/csv", "text/csv")
        assert answer.status == 500
        assert answer.failure is not None and "Expected 2D array, got 1D array instead" in answer.failure
        assert "predict_fn (the container's default)" in answer.failure
    two = chain.invoke(f"{ROW}\n{ROW}".encode(), "text/csv", "text/csv")
    expected = estimator.predict(np.array([[float(v) for v in ROW.split(",")]] * 2, dtype=np.float32))
    assert two.status == 200 and two.content_type == "text/csv; charset=utf-8"
    assert [float(v) for v in two.body.decode().split()] == expected.tolist()


def test_json_instances_fail_with_the_default_decoder_and_a_bare_list_works(estimator: LinearRegression) -> None:
    chain = only_model_fn(estimator)
    instances = chain.invoke(b'{"instances": [[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8]]}', "application/json", None)
    assert instances.status == 500 and "input_fn (the container's default)" in instances.failure
    bare = chain.invoke(b"[[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8]]", "application/json", "application/json")
    assert bare.status == 200 and bare.content_type == "application/json"
    assert len(json.loads(bare.body)) == 2  # the encoder's bare list


def test_an_unsupported_type_is_a_500_in_the_sklearn_image_not_a_415(estimator: LinearRegression) -> None:
    # The image hands its defaults to the framework as user functions, which the framework wraps: the
    # decoder's UnsupportedFormatError becomes ClientError, and only a bare UnsupportedFormatError is a 415.
    chain = only_model_fn(estimator)
    answer = chain.invoke(b"<rows/>", "application/xml", None)
    assert answer.status == 500 and "UnsupportedFormatError" in answer.failure
    unacceptable = chain.invoke(f"{ROW}\n{ROW}".encode(), "text/csv", "image/png")
    assert unacceptable.status == 500 and "output_fn" in unacceptable.failure


def test_text_that_is_no_number_fails_in_the_default_input_fn(estimator: LinearRegression) -> None:
    answer = only_model_fn(estimator).invoke(b"1,2,x\n4,5,6", "text/csv", None)
    assert answer.status == 500 and "could not convert string to float" in answer.failure


def test_the_body_is_text_only_for_the_exact_csv_and_json_types_and_accept_falls_back() -> None:
    seen: list[tuple] = []

    def transform_fn(model, body, content_type, accept):
        seen.append((type(body), content_type, accept))
        return ("ok", "text/plain")

    chain = HandlerChain(module(model_fn=lambda d: None, transform_fn=transform_fn), default_accept="text/csv")
    chain.load("/opt/ml/model")
    chain.invoke(b"1,2", "text/csv", None)
    chain.invoke(b"1,2", "text/csv; charset=utf-8", "*/*")
    chain.invoke(b"[1]", None, "application/json")
    chain.invoke(b"\xff", "text/csv", "text/csv")
    assert seen == [
        (str, "text/csv", "text/csv"),
        (bytes, "text/csv; charset=utf-8", "text/csv"),
        (str, "application/json", "application/json"),  # no Content-Type: the container assumes JSON
        (str, "text/csv", "text/csv"),  # invalid UTF-8 arrives as text with replacement characters
    ]


@pytest.mark.parametrize(
    ("result", "status", "content_type", "body"),
    [
        (("1.5\n", "text/csv"), 200, "text/csv; charset=utf-8", b"1.5\n"),
        ((b"\x93NUMPY", "application/x-npy"), 200, "application/x-npy", b"\x93NUMPY"),
        ("plain text", 200, "text/html; charset=utf-8", b"plain text"),
        ({"predictions": [1]}, 200, "application/json", b'{"predictions": [1]}'),
        (None, 500, "text/plain; charset=utf-8", None),
        (42, 500, "text/plain; charset=utf-8", None),
    ],
)
def test_what_a_handler_returns_becomes_the_containers_response(result, status, content_type, body) -> None:
    chain = HandlerChain(module(model_fn=lambda d: None, transform_fn=lambda m, b, c, a: result))
    chain.load("/opt/ml/model")
    answer = chain.invoke(b"x", "text/csv", "text/csv")
    assert (answer.status, answer.content_type) == (status, content_type)
    if body is not None:
        assert answer.body == body


def test_a_response_object_keeps_its_status() -> None:
    class Response:
        def __init__(self, data: bytes, status: int, mimetype: str) -> None:
            self.data, self.status_code, self.mimetype = data, status, mimetype

        def get_data(self) -> bytes:
            return self.data

    chain = HandlerChain(
        module(model_fn=lambda d: None, transform_fn=lambda m, b, c, a: Response(b"no", 422, "text/plain"))
    )
    chain.load("/opt/ml/model")
    answer = chain.invoke(b"x", "text/csv", None)
    assert (answer.status, answer.body, answer.content_type, answer.failure) == (
        422,
        b"no",
        "text/plain; charset=utf-8",
        None,
    )


def test_a_handler_that_raises_is_a_500_with_its_reason_in_one_line() -> None:
    def transform_fn(model, body, content_type, accept):
        raise ArithmeticError("negative\n   income")

    chain = HandlerChain(module(model_fn=lambda d: None, transform_fn=transform_fn))
    chain.load("/opt/ml/model")
    answer = chain.invoke(b"x", "text/csv", None)
    assert answer.status == 500 and answer.failure == "transform_fn (entry_point) raised ArithmeticError: negative."
    assert b"\n" not in answer.body


def test_entry_points_the_container_refuses_to_start() -> None:
    with pytest.raises(ChainError, match="transform_fn and input_fn"):
        HandlerChain(module(model_fn=lambda d: None, transform_fn=lambda *a: None, input_fn=lambda *a: None))
    with pytest.raises(ChainError, match="no model_fn"):
        HandlerChain(module(transform_fn=lambda *a: None)).load("/opt/ml/model")


def test_the_default_codecs_as_the_container_has_them() -> None:
    assert csv_to_numpy("1,2,3\n").shape == (3,)  # squeezed
    assert csv_to_numpy("1,2\n3,4").shape == (2, 2)
    assert csv_to_numpy("1,x").dtype.kind == "U"  # left as text when it is no number
    assert array_to_csv(np.array([1.5, 0.1 + 0.2])) == "1.5\n0.30000000000000004\n"
    assert array_to_csv(np.array([[1, 2]])) == "1,2\n"
    assert array_to_csv(np.float32([0.1])) == "0.1\n"
    assert array_to_json(np.array([1.5, 2.0])) == "[1.5, 2.0]"


def test_npy_bodies_are_never_unpickled(estimator: LinearRegression) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    answer = only_model_fn(estimator).invoke(buffer.getvalue(), "application/x-npy", None)
    assert answer.status == 500 and "allow_pickle" in answer.failure
