"""Container parity: the scripts and the entry point in the SageMaker scikit-learn 1.2-1 image's Python and pins.

.venv-container (tools/container_venv.sh, built once by `make test`) holds Python 3.9 with exactly the image's
scikit-learn 1.2.1, pandas 1.1.3, numpy 1.24.1, scipy 1.8.0 and sagemaker-containers 2.8.6.post2. Here:

- the three container scripts run there on the bundled data and give the local run's figures;
- the model trained there loads with entry_point.model_fn, from a repacked archive, and is served by the real
  sagemaker_containers Transformer and Flask Worker: 1 row, 1,000 rows, both JSON forms and bad rows get
  the same statuses and answers as the local server's handler chain gives them;
- the lesson's entry point (model_fn only) fails one CSV row there and locally alike;
- the local chain's copies of the container's decoder and encoder agree with sagemaker_containers' own.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest

from core.local.runner import repack_model
from core.local.serving import handler_chain
from core.local.serving.artifacts import _import_entry_point
from core.sources import ENTRY_POINT, SCRIPTS_DIR
from core.spec import DEFAULT_INVOCATIONS_ACCEPT
from tests.conftest import BUNDLED, LESSON_ENTRY_POINT, REPO

DRIVER = Path(__file__).resolve().parent / "container_driver.py"
ROW = "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"


@pytest.fixture(scope="session")
def container_python() -> Path:
    """The image's Python; built here if `make test` did not build it first (cached: well under a second)."""
    built = subprocess.run(["bash", str(REPO / "tools" / "container_venv.sh")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    python = REPO / ".venv-container" / "bin" / "python"
    version = subprocess.run(
        [python, "-c", "import sys, sklearn; print(sys.version[:3], sklearn.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.split() == ["3.9", "1.2.1"]
    return python


def _run_steps(python: Path | str, work: Path) -> dict:
    """Preprocess, Train, Evaluate as the runner runs them; returns evaluation.json."""

    def script(name: str, *args: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            [str(python), str(SCRIPTS_DIR / name), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": "", **(env or {})},
            cwd=work,
            timeout=300,
        )
        assert done.returncode == 0, f"{name} failed in {python}:\n{done.stderr}"

    script("preprocessing.py", "--input-path", str(BUNDLED), "--train-dir", "train", "--test-dir", "test")
    script("training.py", env={"SM_MODEL_DIR": str(work / "model"), "SM_CHANNEL_TRAIN": str(work / "train")})
    (work / "evalin").mkdir()
    with tarfile.open(work / "evalin" / "model.tar.gz", "w:gz") as tar:
        tar.add(work / "model" / "model.joblib", arcname="model.joblib")
    script("evaluation.py", "--model-dir", "evalin", "--test-dir", "test", "--output-dir", "evaluation")
    return json.loads((work / "evaluation" / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def runs(container_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled data through the three scripts, in the image's Python and in ours."""
    folders = {"image": tmp_path_factory.mktemp("image-run"), "local": tmp_path_factory.mktemp("local-run")}
    for key, python in (("image", container_python), ("local", sys.executable)):
        _run_steps(python, folders[key])
    return folders


def test_the_scripts_give_the_local_figures_in_the_image(runs: dict[str, Path]) -> None:
    image, local = (json.loads((runs[k] / "evaluation" / "evaluation.json").read_text()) for k in ("image", "local"))
    for name in ("r2_score", "mse", "rmse", "mae"):
        assert image["regression_metrics"][name] == pytest.approx(local["regression_metrics"][name], abs=1e-6)
    assert image["regression_metrics"]["r2_score"] == pytest.approx(0.643281, abs=1e-6)
    assert (image["n_train"], image["n_test"]) == (local["n_train"], local["n_test"]) == (16512, 4128)
    for split in ("train", "test"):  # the same rows in the same order, value for value
        ours = np.loadtxt(runs["local"] / split / f"{split}.csv", delimiter=",")
        theirs = np.loadtxt(runs["image"] / split / f"{split}.csv", delimiter=",")
        np.testing.assert_array_equal(ours, theirs)


def _repacked(model_dir: Path, work: Path, entry_point: str | None = None) -> Path:
    """model.joblib repacked with an entry point as SageMaker's repack step leaves it, extracted."""
    work.mkdir(parents=True)
    trained = work / "trained.tar.gz"
    with tarfile.open(trained, "w:gz") as tar:
        tar.add(model_dir / "model.joblib", arcname="model.joblib")
    source = ENTRY_POINT
    if entry_point is not None:
        source = work / "custom" / "entry_point.py"
        source.parent.mkdir()
        source.write_text(entry_point)
    repack_model(trained, source, work / "model.tar.gz")
    extracted = work / "opt-ml-model"
    with tarfile.open(work / "model.tar.gz") as tar:
        tar.extractall(extracted, filter="data")
    return extracted


def _request(body: str | bytes, content_type: str | None = "text/csv", accept: str | None = "text/csv") -> dict:
    data = body.encode() if isinstance(body, str) else body
    return {"body": base64.b64encode(data).decode(), "content_type": content_type, "accept": accept}


def _driver(python: Path, mode: str, spec: dict, work: Path) -> dict:
    """container_driver.py in the image's Python, given a JSON spec; its JSON answer."""
    path = work / f"{mode}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [str(python), str(DRIVER), mode, str(path)],
        capture_output=True,
        text=True,
        cwd=work,
        env={**os.environ, "PYTHONPATH": "", "PYTHONWARNINGS": "ignore"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _in_the_image(python: Path, model: Path, requests: list[dict], work: Path) -> list[dict]:
    spec = {"model_dir": str(model), "default_accept": DEFAULT_INVOCATIONS_ACCEPT, "requests": requests}
    return _driver(python, "serve", spec, work)["answers"]


def _locally(model: Path, requests: list[dict]) -> list[dict]:
    module, _ = _import_entry_point(str(model))
    chain = handler_chain.HandlerChain(module, default_accept=DEFAULT_INVOCATIONS_ACCEPT)
    chain.load(str(model))
    answers = []
    for request in requests:
        answer = chain.invoke(base64.b64decode(request["body"]), request["content_type"], request["accept"])
        answers.append({"status": answer.status, "content_type": answer.content_type, "body": answer.body})
    return answers


def _numbers(body: bytes, content_type: str) -> list[float]:
    text = body.decode()
    if content_type.startswith("application/json"):
        document = json.loads(text)
        return document["predictions"] if isinstance(document, dict) else np.ravel(document).tolist()
    return [float(v) for v in text.replace(",", " ").split()]


def _assert_same(image: list[dict], local: list[dict], requests: list[dict]) -> None:
    for theirs, ours, request in zip(image, local, requests, strict=True):
        sent = base64.b64decode(request["body"])[:60]
        assert theirs["status"] == ours["status"], (sent, theirs, ours)
        if ours["status"] >= 500:
            continue  # Flask's 500 is an HTML page there; the reason is in the log on both sides
        assert theirs["content_type"] == ours["content_type"], sent
        body = base64.b64decode(theirs["body"])
        if ours["status"] == 200:
            # Two trainings of the same recipe (scikit-learn 1.2.1 there, ours here) agree to rounding.
            np.testing.assert_allclose(
                _numbers(body, ours["content_type"]), _numbers(ours["body"], ours["content_type"]), rtol=1e-9
            )
        else:
            assert body == ours["body"], sent


def test_the_entry_point_answers_alike_in_the_image_and_locally(
    container_python: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    rows = (runs["image"] / "test" / "test.csv").read_text().splitlines()[:1000]
    features = [row.split(",", 1)[1] for row in rows]
    instances = [[float(v) for v in row.split(",")] for row in features[:3]]
    requests = [
        _request(features[0]),
        _request(features[0] + "\n"),
        _request("\n".join(features)),
        _request(json.dumps({"instances": instances}), "application/json", "application/json"),
        _request(json.dumps(instances), "application/json", None),
        _request(features[0], "text/csv", "application/json"),
        _request(features[0], "text/csv; charset=utf-8", "*/*"),
        _request("1,2,3"),
        _request(ROW.replace("322.0", "3_22")),
        _request(ROW.replace("41.0", "٤١")),
        _request(ROW.replace("37.88", "1e308")),
        _request(b"\xff\xfe1,2"),
        _request("<rows/>", "application/xml"),
        _request(ROW, "text/csv", "image/png"),
        _request("[[" + "9" * 5000 + ",1,2,3,4,5,6,7]]", "application/json"),
    ]
    image = _in_the_image(container_python, _repacked(runs["image"] / "model", tmp_path / "image"), requests, tmp_path)
    local = _locally(_repacked(runs["local"] / "model", tmp_path / "local"), requests)
    _assert_same(image, local, requests)
    assert [a["status"] for a in image] == [200] * 7 + [400] * 5 + [415, 406, 400]
    assert len(_numbers(base64.b64decode(image[2]["body"]), "text/csv")) == 1000


def test_the_lessons_entry_point_fails_one_row_in_the_image_and_locally(
    container_python: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    two = f"{ROW}\n{ROW}"
    requests = [
        _request(ROW),  # squeezed to 1-D: "Expected 2D array"
        _request(ROW + "\n"),
        _request(two),
        _request(json.dumps({"instances": [[float(v) for v in ROW.split(",")]] * 2}), "application/json", "text/csv"),
        _request(json.dumps([[float(v) for v in ROW.split(",")]] * 2), "application/json", "application/json"),
        _request("<rows/>", "application/xml"),  # the image's wrapped default decoder: a 500, not a 415
        _request(two, "text/csv", "image/png"),
        _request(two, "text/csv", None),
    ]
    image = _in_the_image(
        container_python, _repacked(runs["image"] / "model", tmp_path / "image", LESSON_ENTRY_POINT), requests, tmp_path
    )
    local = _locally(_repacked(runs["local"] / "model", tmp_path / "local", LESSON_ENTRY_POINT), requests)
    _assert_same(image, local, requests)
    assert [a["status"] for a in image] == [500, 500, 200, 500, 200, 500, 500, 200]


DECODE = [
    ("1,2,3\n", "text/csv"),
    ("1,2\n3,4", "text/csv"),
    ("1\n", "text/csv"),
    ("1,x\n2,3", "text/csv"),
    ('"1",2\n3,4', "text/csv"),
    ("", "text/csv"),
    ("[[1, 2], [3, 4]]", "application/json"),
    ("[1.5]", "application/json"),
    ('{"instances": [[1, 2]]}', "application/json"),
    ("[[1, 2], [3]]", "application/json"),
    ("1,2", "text/plain"),
]
ENCODE = [
    ([1.5, 0.30000000000000004, -2.5e-300], "float64", "text/csv"),
    ([[1.0, 2.0], [3.0, 4.0]], "float64", "text/csv"),
    ([0.1, 2.5], "float32", "text/csv"),
    ([1, 2], "int64", "text/csv"),
    ([1.5, 0.1], "float64", "application/json"),
    ([0.1], "float32", "application/json"),
    ([1.0], "float64", "text/html"),
]


def test_the_local_codecs_agree_with_sagemaker_containers(container_python: Path, tmp_path: Path) -> None:
    spec = {
        "decode": [{"body": body, "content_type": kind} for body, kind in DECODE],
        "encode": [{"values": values, "dtype": dtype, "accept": accept} for values, dtype, accept in ENCODE],
    }
    theirs = _driver(container_python, "codecs", spec, tmp_path)
    for (body, kind), expected in zip(DECODE, theirs["decoded"], strict=True):
        decoder = handler_chain.DECODERS.get(kind)
        try:
            if decoder is None:
                raise handler_chain.UnsupportedFormatError(kind)
            array = decoder(body)
        except Exception:
            assert "error" in expected, (body, expected)
            continue
        assert "error" not in expected, (body, expected)
        assert (list(array.shape), array.dtype.kind, array.tolist()) == (
            expected["shape"],
            expected["dtype"],
            expected["values"],
        ), body
    for (values, dtype, accept), expected in zip(ENCODE, theirs["encoded"], strict=True):
        encoder = handler_chain.ENCODERS.get(accept)
        if encoder is None:
            assert "error" in expected
            continue
        assert encoder(np.array(values, dtype=dtype)) == expected["text"], (values, dtype, accept)


def test_the_handler_chain_refuses_what_the_image_refuses_to_start() -> None:
    # sagemaker_sklearn_container.serving raises UserError at import for both kinds of handlers.
    both = types.ModuleType("entry_point")
    both.model_fn, both.transform_fn, both.output_fn = (lambda *a: None,) * 3
    with pytest.raises(handler_chain.ChainError):
        handler_chain.HandlerChain(both)
