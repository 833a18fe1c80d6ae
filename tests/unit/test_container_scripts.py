"""The container scripts, run as processes the way the runner (and SageMaker) runs them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from core.spec import FEATURES
from tests.conftest import BUNDLED, REPO

SCRIPTS = REPO / "container_scripts"
HEADER = "MedInc,HouseAge,AveRooms,AveBedrms,Population,AveOccup,Latitude,Longitude,MedHouseVal"


def run_script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def preprocess(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_script(
        "preprocessing.py",
        "--input-path",
        str(source),
        "--train-dir",
        str(out / "train"),
        "--test-dir",
        str(out / "test"),
        *extra,
    )


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def sample_rows(count: int, seed: int = 0) -> list[str]:
    frame = pd.read_csv(BUNDLED).sample(count, random_state=seed)
    return [",".join(repr(float(v)) for v in row) for row in frame.to_numpy()]


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Preprocess, Train and Evaluate on the bundled data, once for the module."""
    work = tmp_path_factory.mktemp("bundled")
    result = preprocess(BUNDLED, work)
    assert result.returncode == 0, result.stderr
    train = run_script(
        "training.py", env={"SM_MODEL_DIR": str(work / "model"), "SM_CHANNEL_TRAIN": str(work / "train")}
    )
    assert train.returncode == 0, train.stderr
    (work / "evalin").mkdir()
    with tarfile.open(work / "evalin" / "model.tar.gz", "w:gz") as tar:
        tar.add(work / "model" / "model.joblib", arcname="model.joblib")
    evaluate = run_script(
        "evaluation.py",
        "--model-dir",
        str(work / "evalin"),
        "--test-dir",
        str(work / "test"),
        "--output-dir",
        str(work / "evaluation"),
    )
    assert evaluate.returncode == 0, evaluate.stderr
    return work


def test_bundled_data_reproduces_the_reference_figures(bundled_run: Path) -> None:
    report = json.loads((bundled_run / "evaluation" / "evaluation.json").read_text())
    metrics = report["regression_metrics"]
    # ../shared/data/README.md: the lesson's cleaning learned on the training split, target not capped.
    assert metrics["r2_score"] == pytest.approx(0.643281, abs=1e-6)
    assert metrics["mse"] == pytest.approx(0.467447, abs=1e-6)
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["mse"]), rel=1e-12)
    assert metrics["mae"] == pytest.approx(0.502899, abs=1e-6)
    assert (report["n_train"], report["n_test"]) == (16512, 4128)


def test_splits_are_headerless_with_the_target_first(bundled_run: Path) -> None:
    train = pd.read_csv(bundled_run / "train" / "train.csv", header=None)
    test = pd.read_csv(bundled_run / "test" / "test.csv", header=None)
    assert train.shape == (16512, 9) and test.shape == (4128, 9)
    original = pd.read_csv(BUNDLED)
    # Every training row is a row of the data set, reordered as target + features.
    reordered = original[["MedHouseVal", *original.columns[:8]]].to_numpy()
    first = train.to_numpy()[0]
    assert (np.abs(reordered - first).max(axis=1) == 0).any()


def _lesson_recipe(train: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
    """The lesson's cleaning written out with pandas, fitted on the training split: what the model must do."""
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    features = train.iloc[:, 1:].set_axis(list(FEATURES), axis=1)
    caps = features[list(FEATURES[:6])].quantile(0.95)

    def clean(frame: pd.DataFrame) -> pd.DataFrame:
        capped = frame.copy()
        capped[caps.index] = capped[caps.index].clip(upper=caps, axis=1)
        capped["RoomsPerHousehold"] = capped["AveRooms"] / capped["AveOccup"]
        return capped

    scaler = StandardScaler().fit(clean(features).to_numpy())
    regression = LinearRegression().fit(scaler.transform(clean(features).to_numpy()), train.iloc[:, 0].to_numpy())
    rows = pd.DataFrame(raw, columns=list(FEATURES))
    return regression.predict(scaler.transform(clean(rows).to_numpy()))


def test_the_model_cleans_inside_so_it_takes_raw_features(bundled_run: Path) -> None:
    model = joblib.load(bundled_run / "model" / "model.joblib")
    assert [name for name, _ in model.steps] == ["cap", "features", "standardscaler", "linearregression"]
    train = pd.read_csv(bundled_run / "train" / "train.csv", header=None)
    test = pd.read_csv(bundled_run / "test" / "test.csv", header=None).iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(model.predict(test), _lesson_recipe(train, test), rtol=1e-10, atol=1e-10)


def test_caps_are_learned_on_the_training_split_only(bundled_run: Path) -> None:
    caps = joblib.load(bundled_run / "model" / "model.joblib").named_steps["cap"].kw_args["a_max"]
    train = pd.read_csv(bundled_run / "train" / "train.csv", header=None).iloc[:, 1:7].to_numpy()
    everything = pd.read_csv(BUNDLED)[list(FEATURES[:6])].to_numpy()
    np.testing.assert_array_equal(caps[:6], np.quantile(train, 0.95, axis=0))
    assert np.isinf(caps[6:]).all()  # Latitude and Longitude are not capped
    # The test rows' quantiles would have moved them: the held-out split has not leaked in.
    assert not np.allclose(caps[:6], np.quantile(everything, 0.95, axis=0), rtol=1e-9)


def test_the_pickle_holds_no_code_of_this_project(bundled_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Evaluate's processing job ships evaluation.py alone and the serving container only entry_point.py:
    # any module of ours named in the pickle would not import there. Record every class the pickle names.
    from joblib import numpy_pickle

    named: set[str] = set()
    find_class = numpy_pickle.NumpyUnpickler.find_class

    def recording(self: object, module: str, name: str) -> object:
        named.add(module)
        return find_class(self, module, name)

    monkeypatch.setattr(numpy_pickle.NumpyUnpickler, "find_class", recording)
    joblib.load(bundled_run / "model" / "model.joblib")
    assert "sklearn.pipeline" in named
    assert {m.split(".")[0] for m in named} <= {"sklearn", "numpy", "joblib", "builtins", "copyreg", "_codecs"}


def test_the_repacked_model_loads_with_only_its_own_files_and_site_packages(bundled_run: Path, tmp_path: Path) -> None:
    """As in the serving container: sys.path holds code/ (the repacked entry point) and the packages, nothing
    of this project; model_fn loads model.joblib and transform_fn answers a single row."""
    import sysconfig

    from core.local.runner import repack_model
    from core.sources import ENTRY_POINT

    trained = tmp_path / "trained.tar.gz"
    with tarfile.open(trained, "w:gz") as tar:
        tar.add(bundled_run / "model" / "model.joblib", arcname="model.joblib")
    repack_model(trained, ENTRY_POINT, tmp_path / "model.tar.gz")
    extracted = tmp_path / "opt-ml-model"
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["code/entry_point.py", "model.joblib"]
        tar.extractall(extracted, filter="data")
    script = """
import importlib.util, sys
code, model_dir, *packages = sys.argv[1:]
sys.path[:0] = [code]
sys.path += packages
assert all(importlib.util.find_spec(name) is None for name in ("core", "container_scripts", "tui"))
import entry_point
assert entry_point.__file__.startswith(code)
model = entry_point.model_fn(model_dir)
answer = entry_point.transform_fn(model, "8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23", "text/csv", "text/csv")
print(answer.status_code, answer.get_data().decode().strip(), type(model.estimator).__module__)
"""
    packages = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    # -S: no site module, so no .pth file (the editable install of this project) runs; -I: no PYTHONPATH, no cwd.
    result = subprocess.run(
        [sys.executable, "-S", "-I", "-c", script, str(extracted / "code"), str(extracted), *packages],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    status, prediction, module = result.stdout.split()
    expected = joblib.load(bundled_run / "model" / "model.joblib").predict(
        np.array([[8.3252, 41.0, 6.98, 1.02, 322.0, 2.55, 37.88, -122.23]])
    )
    assert (status, module) == ("200", "sklearn.pipeline") and float(prediction) == pytest.approx(
        expected[0], abs=1e-12
    )


def test_the_scripts_and_the_entry_point_name_the_features_as_the_spec_does() -> None:
    # They ship alone to SageMaker, so each holds its own copy of the feature list.
    import importlib

    from core import spec

    for module in ("container_scripts.preprocessing", "container_scripts.training", "entry_point"):
        assert tuple(importlib.import_module(module).FEATURES) == spec.FEATURES, module


def test_missing_values_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = sample_rows(20)
    blank = rows[3].split(",")
    blank[1] = ""  # an empty cell
    rows[3] = ",".join(blank)
    rows[7] = "NA," + ",".join(rows[7].split(",")[1:])  # pandas' usual missing-value marker
    source = write_csv(tmp_path / "in.csv", rows)
    result = preprocess(source, tmp_path / "out", "--test-size", "0.25")
    assert result.returncode == 0, result.stderr
    assert "dropped 2 row(s) with missing or infinite values; 18 row(s) remain" in result.stdout
    train = pd.read_csv(tmp_path / "out" / "train" / "train.csv", header=None)
    test = pd.read_csv(tmp_path / "out" / "test" / "test.csv", header=None)
    assert len(train) + len(test) == 18 and not train.isna().any().any()


def test_a_folder_with_one_csv_is_read_like_a_processing_input(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    write_csv(tmp_path / "input" / "data.csv", sample_rows(10))
    result = preprocess(tmp_path / "input", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "out" / "test" / "test.csv", header=None)) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        (HEADER + "\n", "has a header but no data rows"),
        (HEADER.replace(",AveOccup", "") + "\n1,2,3,4,5,6,7,8\n", "missing column(s) AveOccup"),
        ("a,b\n1,2\n", "missing column(s) MedInc, HouseAge"),
        (
            HEADER + "\n" + "8.3,41,7,1,322,2.5,37.9,-122.2,4.5\n" * 3 + "8.3,old,7,1,322,2.5,37.9,-122.2,4.5\n",
            "column HouseAge has a non-numeric value 'old' on line 5",
        ),
        (HEADER + "\n" + "8.3,41,7,1,322,2.5,37.9,-122.2,4.5\n" * 3, "too few to split"),
        (
            HEADER + "\n" + "8.3,41,7,1,322,2.5,37.9,-122.2,4.5\n" * 5 + "8.3,41,1e308,1,322,2.5,37.9,-122.2,4.5\n",
            "column AveRooms has '1e308' on line 7, beyond the bound of 1e+100 in magnitude",
        ),
        (
            HEADER + "\n" + "8.3,41,7,1,322,2.5,37.9,-122.2,4.5\n" * 5 + "8.3,41,7,1,322,2.5,37.9,-122.2,-2e200\n",
            "column MedHouseVal has '-2e200' on line 7",
        ),
    ],
    ids=[
        "empty-file",
        "header-only",
        "missing-column",
        "wrong-columns",
        "non-numeric",
        "too-few-rows",
        "overflowing-feature",
        "overflowing-target",
    ],
)
def test_bad_input_fails_with_one_sentence(tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text(content)
    result = preprocess(source, tmp_path / "out")
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and message in last_line
    assert not (tmp_path / "out" / "train").exists()


def test_an_input_that_does_not_exist_is_named(tmp_path: Path) -> None:
    result = preprocess(tmp_path / "nope.csv", tmp_path / "out")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_test_size_outside_zero_one_is_refused(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", sample_rows(10))
    result = preprocess(source, tmp_path / "out", "--test-size", "1.5")
    assert result.returncode == 1 and "outside (0, 1)" in result.stderr


def test_training_without_data_says_so(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    result = run_script(
        "training.py", env={"SM_MODEL_DIR": str(tmp_path / "model"), "SM_CHANNEL_TRAIN": str(tmp_path / "train")}
    )
    assert result.returncode == 1 and "no .csv file in the train channel" in result.stderr


def _archive_with(tmp_path: Path, add) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        add(tar)
    return folder


def _evaluate(tmp_path: Path, model_dir: Path, bundled_run: Path) -> subprocess.CompletedProcess[str]:
    return run_script(
        "evaluation.py",
        "--model-dir",
        str(model_dir),
        "--test-dir",
        str(bundled_run / "test"),
        "--output-dir",
        str(tmp_path / "evaluation"),
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_evaluation_refuses_an_archive_member_escaping_the_folder(tmp_path: Path, bundled_run: Path) -> None:
    model_dir = _archive_with(tmp_path, lambda tar: _add_bytes(tar, "../escaped.txt", b"x"))
    result = _evaluate(tmp_path, model_dir, bundled_run)
    assert result.returncode == 1 and "would land outside" in result.stderr
    assert not (model_dir / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "evaluation").exists()


def test_evaluation_refuses_links_in_the_archive(tmp_path: Path, bundled_run: Path) -> None:
    def add_link(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("model.joblib")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)

    result = _evaluate(tmp_path, _archive_with(tmp_path, add_link), bundled_run)
    assert result.returncode == 1 and "is not a regular file" in result.stderr


def test_evaluation_needs_model_joblib_at_the_archive_root(tmp_path: Path, bundled_run: Path) -> None:
    model_dir = _archive_with(tmp_path, lambda tar: _add_bytes(tar, "model/model.joblib", b"x"))
    result = _evaluate(tmp_path, model_dir, bundled_run)
    assert result.returncode == 1 and "has no model.joblib at its root" in result.stderr
