"""entry_point.py in-process: what it accepts, what it refuses with which status and sentence, and its predictions.

The same functions run in SageMaker's container (tests/parity runs them there) and behind the local server
(tests/unit/test_serving.py); here they are called directly, with a model trained by training.py's recipe.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

import entry_point
from container_scripts import training
from entry_point import CSV, JSON, RequestError, ServingModel, parse_csv, parse_json, transform_fn
from tests.conftest import BUNDLED

ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"
VALUES = [float(v) for v in ROW.split(",")]


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(BUNDLED)
    features, target = frame.iloc[:, :8].to_numpy(), frame.iloc[:, 8].to_numpy()
    train_x, test_x, train_y, _ = train_test_split(features, target, test_size=0.2, random_state=42)
    return train_x, train_y, test_x


@pytest.fixture(scope="module")
def pipeline(split):
    train_x, train_y, _ = split
    return training.build_model(training.upper_caps(train_x)).fit(train_x, train_y)


@pytest.fixture(scope="module")
def model(pipeline) -> ServingModel:
    return ServingModel(pipeline)


def answer(model: ServingModel, body: str | bytes, content_type: str = CSV, accept: str = CSV) -> tuple[int, str]:
    response = transform_fn(model, body, content_type, accept)
    return response.status_code, response.get_data().decode()


# ------------------------------------------------------------------------------------ predictions


def test_the_compiled_recipe_is_used_and_equals_the_pipeline(model: ServingModel, pipeline, split) -> None:
    assert model.compiled
    test_x = split[2]
    np.testing.assert_allclose(model.predict(test_x), pipeline.predict(test_x), rtol=1e-12, atol=1e-12)
    # Rows far beyond every cap and a tiny occupancy: the cap and the ratio act as in the pipeline.
    odd = np.array([[50.0, 52.0, 200.0, 30.0, 30000.0, 0.01, 41.9, -114.3], [0.1, 1, 1, 0.5, 3, 1000, 32.5, -124]])
    np.testing.assert_allclose(model.predict(odd), pipeline.predict(odd), rtol=1e-12, atol=1e-12)


def test_a_pipeline_of_another_shape_is_served_by_its_own_predict(pipeline) -> None:
    from sklearn.base import clone

    # Same step names, but the ratio now reads other columns in the spec than the fitted copy used:
    # the shortcut would disagree with predict, so it is not used.
    changed = clone(pipeline).fit(np.abs(np.random.default_rng(1).normal(size=(50, 8))) + 1, np.arange(50.0))
    changed.named_steps["features"].transformers[1] = (
        "rooms_per_household",
        changed.named_steps["features"].transformers[1][1],
        [2, 3],
    )
    served = ServingModel(changed)
    assert not served.compiled and served.predict == changed.predict

    from sklearn.linear_model import LinearRegression

    plain = LinearRegression().fit(np.eye(8), np.arange(8.0))
    assert not ServingModel(plain).compiled


def test_one_row_with_or_without_a_trailing_newline(model: ServingModel, pipeline) -> None:
    expected = pipeline.predict(np.array([VALUES]))[0]
    for body in (ROW, ROW + "\n", ROW + "\r\n", "\n" + ROW + "\n\n"):
        status, text = answer(model, body)
        assert status == 200 and float(text) == pytest.approx(expected, abs=1e-12)
        assert text.endswith("\n") and text.count("\n") == 1


def test_a_thousand_rows_take_the_batch_path_and_agree(model: ServingModel, pipeline, split) -> None:
    rows = split[2][:1000]
    body = "\n".join(",".join(repr(v) for v in row) for row in rows.tolist())
    assert len(body) >= entry_point._PANDAS_MIN_CHARS
    status, text = answer(model, body)
    assert status == 200
    np.testing.assert_allclose([float(v) for v in text.split()], pipeline.predict(rows), rtol=1e-12, atol=1e-12)


def test_json_instances_and_bare_list_and_the_accept_header(model: ServingModel, pipeline) -> None:
    expected = pipeline.predict(np.array([VALUES, VALUES]))
    for document in ({"instances": [VALUES, VALUES]}, [VALUES, VALUES]):
        status, text = answer(model, json.dumps(document), JSON, JSON)
        assert status == 200
        np.testing.assert_allclose(json.loads(text)["predictions"], expected, rtol=1e-12)
    status, text = answer(model, json.dumps([VALUES]), JSON, "text/csv, application/json;q=0.5")
    assert status == 200 and float(text) == pytest.approx(expected[0], abs=1e-12)
    status, text = answer(model, ROW, CSV, JSON)
    assert status == 200 and json.loads(text)["predictions"] == pytest.approx([expected[0]], abs=1e-12)
    # The container hands the body over as bytes when the content type carries parameters.
    status, text = answer(model, ROW.encode(), "text/csv; charset=utf-8", "*/*")
    assert status == 200 and float(text) == pytest.approx(expected[0], abs=1e-12)


def test_predictions_keep_full_precision(model: ServingModel) -> None:
    status, text = answer(model, "\n".join([ROW] * 3))
    values = model.predict(np.array([VALUES] * 3)).tolist()
    assert status == 200 and [float(line) for line in text.splitlines()] == values
    assert entry_point.format_predictions(values, JSON) == json.dumps({"predictions": values})


# ----------------------------------------------------------------------------------------- refusals

REFUSED = [
    # (id, body, content type, accept, status, words in the sentence)
    ("too-few-values", "1,2,3", CSV, CSV, 400, ["Row 1 has 3 values", "8"]),
    ("too-many-on-row-3", f"{ROW}\n\n{ROW},1", CSV, CSV, 400, ["Row 3 has 9 values"]),
    ("not-a-number", ROW.replace("41.0", "forty"), CSV, CSV, 400, ["Row 1, column 2", "'forty'"]),
    ("empty", "", CSV, CSV, 400, ["empty"]),
    ("blank-lines", "\n \n", CSV, CSV, 400, ["empty"]),
    ("header", "MedInc,HouseAge,AveRooms", CSV, CSV, 400, ["header"]),
    ("words-as-header", "a,b,c,d,e,f,g,h\n" + ROW, CSV, CSV, 400, ["header"]),
    ("empty-fields", ",,,,,,,", CSV, CSV, 400, ["Row 1, column 1: '' is not a plain decimal number"]),
    ("nan", ROW.replace("41.0", "nan"), CSV, CSV, 400, ["'nan'", "finite"]),
    ("infinity", ROW.replace("-122.23", "-inf"), CSV, CSV, 400, ["'-inf'", "finite"]),
    ("overflow-to-inf", ROW.replace("322.0", "1e999"), CSV, CSV, 400, ["'1e999'", "finite"]),
    ("underscore-digits", ROW.replace("322.0", "3_22"), CSV, CSV, 400, ["column 5", "'3_22'", "plain decimal"]),
    ("arabic-indic-digits", ROW.replace("41.0", "٤١"), CSV, CSV, 400, ["column 2", "plain decimal"]),
    ("fullwidth-digits", ROW.replace("41.0", "４１"), CSV, CSV, 400, ["column 2", "plain decimal"]),
    ("latitude-1e308", ROW.replace("37.88", "1e308"), CSV, CSV, 400, ["column 7", "Latitude 1e+308", "-90 and 90"]),
    ("negative-huge", ROW.replace("8.3252", "-1e308"), CSV, CSV, 400, ["column 1", "MedInc -1e+308", "at least 0"]),
    ("zero-occupancy", ROW.replace("2.55", "0"), CSV, CSV, 400, ["column 6", "AveOccup 0.0", "above 0"]),
    ("tiny-occupancy", ROW.replace("2.55", "1e-300"), CSV, CSV, 400, ["Row 1's prediction", "not a house value"]),
    ("not-utf8", b"\xff\xfe1,2", "text/csv; charset=utf-8", CSV, 400, ["UTF-8"]),
    ("json-nan", '{"instances": [[NaN, 1, 2, 3, 4, 5, 6, 7]]}', JSON, CSV, 400, ["instances[0][0]", "finite"]),
    ("json-malformed", '{"instances": [[1, 2,', JSON, CSV, 400, ["not valid", "line 1", "text/csv"]),
    ("json-csv-body", ROW, JSON, CSV, 400, ["not valid", "Content-Type text/csv"]),
    ("json-deep", "[" * 100000, JSON, CSV, 400, ["nested too deeply"]),
    ("json-object", '{"rows": []}', JSON, CSV, 400, ['"instances"']),
    ("json-empty", '{"instances": []}', JSON, CSV, 400, ["no rows"]),
    ("json-flat-row", "[1, 2, 3, 4, 5, 6, 7, 8]", JSON, CSV, 400, ["instances[0]", "not a list"]),
    ("json-short-row", '{"instances": [[1, 2]]}', JSON, CSV, 400, ["instances[0] has 2 values"]),
    ("json-string", '{"instances": [["1",2,3,4,5,6,7,8]]}', JSON, CSV, 400, ["instances[0][0]", "not a number"]),
    ("json-true", '{"instances": [[true,2,3,4,5,6,7,8]]}', JSON, CSV, 400, ["instances[0][0]", "true"]),
    ("json-5000-digits", "[[" + "9" * 5000 + ",1,2,3,4,5,6,7]]", JSON, CSV, 400, ["instances[0][0]", "finite"]),
    ("xml", "<rows/>", "application/xml", CSV, 415, ["'application/xml'", "text/csv"]),
    ("no-content-type", ROW, "", CSV, 415, ["no Content-Type"]),
    ("png-accept", ROW, CSV, "image/png", 406, ["'image/png'", "text/csv"]),
]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_bad_input_gets_a_4xx_and_one_sentence(
    model: ServingModel, body: str | bytes, content_type: str, accept: str, status: int, words: list[str]
) -> None:
    got, text = answer(model, body, content_type, accept)
    assert got == status, text
    assert "\n" not in text and text.endswith(".") and len(text) < 400
    assert "sys.set_int_max_str_digits" not in text and "Traceback" not in text
    for word in words:
        assert word in text


def test_refusals_on_the_batch_path_name_the_same_row() -> None:
    good = [ROW] * (entry_point._PANDAS_MIN_CHARS // len(ROW) + 50)
    cases = [
        (200, ROW.replace("-122.23", "west"), "Row 201, column 8: 'west' is not a plain decimal number"),
        (150, "1,2", "Row 151 has 2 values"),
        (99, ROW.replace("2.55", "NaN"), "Row 100, column 6: 'NaN' is not a finite number"),
        (120, ROW.replace("41.0", "4_1"), "Row 121, column 2: '4_1' is not a plain decimal number"),
        (0, ",".join(["MedInc", "HouseAge", "AveRooms", "AveBedrms"] * 2), "Row 1 is a header"),
    ]
    for index, line, message in cases:
        lines = list(good)
        lines[index] = line
        with pytest.raises(RequestError, match=message):
            parse_csv("\n".join(lines))


def test_a_byte_order_mark_is_not_data(model: ServingModel) -> None:
    assert answer(model, "\ufeff" + ROW)[0] == 200


_FIELD = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=5),
    st.sampled_from(["", " 1", "1 ", '"1"', "nan", "1e999", "1_0", "+.5", "5.", ".", "-", "1e", "\x00", "#1", "٣"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_FIELD, min_size=7, max_size=9).map(",".join), min_size=1, max_size=6),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_batch_path_never_accepts_what_the_precise_path_refuses(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    accepted = entry_point._parse_csv_pandas(text)
    if accepted is None:
        return  # the precise path decides these
    precise = entry_point._parse_csv_rows(text)
    # The C parser may round a decimal string differently from Python's float() by at most one ulp.
    np.testing.assert_array_max_ulp(accepted, precise, maxulp=1)


def test_small_and_batch_paths_give_the_same_matrix() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(400, 8)) * 10.0 ** rng.integers(-5, 6, size=(400, 8))
    text = "\n".join(",".join(repr(v) for v in row) for row in matrix.tolist()) + "\n"
    assert len(text) >= entry_point._PANDAS_MIN_CHARS
    np.testing.assert_array_max_ulp(parse_csv(text), entry_point._parse_csv_rows(text), maxulp=1)
    np.testing.assert_array_max_ulp(parse_csv(text), matrix, maxulp=1)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)), st.sampled_from([CSV, JSON]))
def test_arbitrary_bodies_get_an_answer_never_an_exception(model: ServingModel, body: str | bytes, kind: str) -> None:
    status, text = answer(model, body, kind, CSV)
    assert status in (200, 400), text
    if status == 200:
        assert all(abs(float(v)) <= entry_point.MAX_ABS_PREDICTION for v in text.split())


def test_parse_json_takes_both_forms() -> None:
    assert parse_json(json.dumps({"instances": [VALUES, VALUES]})).shape == (2, 8)
    assert parse_json(json.dumps([VALUES])).tolist() == [VALUES]


def test_model_fn_loads_model_joblib_and_warms_the_batch_parser(tmp_path, pipeline) -> None:
    import sys

    import joblib

    joblib.dump(pipeline, tmp_path / "model.joblib")
    loaded = entry_point.model_fn(str(tmp_path))
    assert isinstance(loaded, ServingModel) and loaded.compiled
    assert "pandas" in sys.modules


def test_the_stand_in_response_is_a_wsgi_application_with_its_status() -> None:
    # Outside the container (no sagemaker_containers), Response is the stand-in; Flask accepts a WSGI app too.
    started: list = []
    body = entry_point.Response("Row 1 has 3 values.", status=400, mimetype="text/plain")(
        {}, lambda *a: started.append(a)
    )
    assert body == [b"Row 1 has 3 values."]
    assert started[0][0] == "400 Error" and ("Content-Type", "text/plain") in started[0][1]
