"""Evaluate step: score the trained model on the test split and write evaluation.json.

Runs in SageMaker's scikit-learn processing container with the training job's model.tar.gz under
/opt/ml/processing/model and the test split under /opt/ml/processing/test; the pipeline reads
evaluation.json through the EvaluationReport property file (regression_metrics.r2_score).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import sys
import tarfile
import tempfile

# A model archive may expand to this many times its own size, and never past MAX_EXTRACTED_BYTES: a pickled
# scikit-learn model compresses 2-5x, a decompression bomb 1,000x. Small archives may always reach
# EXTRACT_FLOOR_BYTES (a 2 KB archive of a 60 KB entry point is no bomb). The endpoint server has the same
# defaults (core/local/serving/config.py); this script ships alone, so it states them itself.
MAX_EXTRACT_RATIO = 20.0
MAX_EXTRACTED_BYTES = 2 * 1024**3
EXTRACT_FLOOR_BYTES = 1024 * 1024
# Files and folders: a model and its code are a handful; a million empty members is an attack on our time.
MAX_ARCHIVE_MEMBERS = 10000
_COPY_CHUNK = 1024 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--max-extract-ratio", type=float, default=MAX_EXTRACT_RATIO)
    parser.add_argument("--max-extracted-bytes", type=int, default=MAX_EXTRACTED_BYTES)
    parser.add_argument("--max-archive-members", type=int, default=MAX_ARCHIVE_MEMBERS)
    return parser.parse_args(argv)


def _size(count: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def private_copy(archive: str, folder: str) -> str:
    """Copy the archive into a private folder of ours, opening it once; the copy's path.

    safe_extract reads an archive twice (its headers, then the members' bytes): on a copy nobody else can
    write, both readings see the same bytes, whatever happens to the original meanwhile.
    """
    copy = os.path.join(folder, "model.tar.gz")
    with open(archive, "rb") as source:
        descriptor = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(descriptor, "wb") as target:
            shutil.copyfileobj(source, target, _COPY_CHUNK)
    return copy


def safe_extract(
    archive: str,
    target: str,
    max_ratio: float = MAX_EXTRACT_RATIO,
    max_bytes: int = MAX_EXTRACTED_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> None:
    """Extract only regular files and folders that stay inside target, within the size bounds; refuse otherwise.

    A model.tar.gz is an input like any other: a member named ../x, /etc/x or a link must not write outside
    the extraction folder, and a few kilobytes must not expand to fill the disk. Every header is checked
    before anything is written (tarfile writes exactly the size a header declares); on a refusal or a failure
    midway, what was extracted is removed.
    """
    root = os.path.realpath(target)
    allowed = min(max_bytes, max(EXTRACT_FLOOR_BYTES, int(os.path.getsize(archive) * max_ratio)))
    with tarfile.open(archive, "r:*") as tar:
        members = []
        total = 0
        for member in tar:  # one header at a time: an archive of a million members stops at the bound
            if len(members) == max_members:
                raise ValueError(f"model archive holds more than {max_members} members (files and folders)")
            destination = os.path.realpath(os.path.join(root, member.name))
            inside = destination == root or destination.startswith(root + os.sep)
            if not inside or os.path.isabs(member.name):
                raise ValueError(f"model archive member {member.name!r} would land outside {target}")
            # tarfile counts a sparse member as a regular file, but it writes more than its declared size.
            if member.issparse() or not (member.isfile() or member.isdir()):
                raise ValueError(f"model archive member {member.name!r} is not a regular file")
            total += member.size if member.isfile() else 0
            if total > allowed:
                raise ValueError(
                    f"model archive ({_size(os.path.getsize(archive))}) would expand to more than {_size(allowed)} "
                    f"({max_ratio:g} times its size, at most {_size(max_bytes)}); --max-extract-ratio and "
                    "--max-extracted-bytes raise the bound for a model that is really this large"
                )
            members.append(member)
        try:
            for member in members:
                tar.extract(member, root, set_attrs=False)
        except BaseException:
            _empty(root)
            raise


def _empty(folder: str) -> None:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def regression_metrics(y_true, y_pred) -> dict:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "r2_score": float(r2_score(y_true, y_pred)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }


def training_rows(model) -> int | None:
    # The scaler counts the rows it was fitted on, so the model itself says how big the training set was.
    scaler = getattr(model, "named_steps", {}).get("standardscaler")
    seen = getattr(scaler, "n_samples_seen_", None)
    return int(seen) if seen is not None and getattr(seen, "ndim", 0) == 0 else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    archive = os.path.join(args.model_dir, "model.tar.gz")
    # A fresh folder only this process can enter (mkdtemp: 0700): the model loaded is the one extracted
    # from the archive, never a file that was waiting in a shared folder under that name.
    work = tempfile.mkdtemp(prefix="evaluation-model-")
    try:
        return _evaluate(args, archive, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _evaluate(args: argparse.Namespace, archive: str, work: str) -> int:
    import joblib
    import pandas as pd

    extract_dir = os.path.join(work, "extracted")
    os.mkdir(extract_dir, 0o700)
    try:
        copy = private_copy(archive, work)
        safe_extract(copy, extract_dir, args.max_extract_ratio, args.max_extracted_bytes, args.max_archive_members)
        model_path = os.path.join(extract_dir, "model.joblib")
        if not os.path.isfile(model_path):
            raise ValueError(f"{archive} has no model.joblib at its root")
        files = sorted(glob.glob(os.path.join(args.test_dir, "*.csv")))
        if not files:
            raise ValueError(f"no .csv file in the test folder {args.test_dir}")
    except (ValueError, OSError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    model = joblib.load(model_path)
    # Read as text, converted by numpy: pandas 1.1 (the 1.2-1 image's) parses some decimals one ulp off.
    test = pd.concat([pd.read_csv(f, header=None, dtype=str) for f in files], ignore_index=True)
    y_true = test.iloc[:, 0].to_numpy(dtype="float64")
    y_pred = model.predict(test.iloc[:, 1:].to_numpy(dtype="float64"))
    report = {
        "regression_metrics": regression_metrics(y_true, y_pred),
        "n_train": training_rows(model),
        "n_test": len(test),
    }
    os.makedirs(args.output_dir, exist_ok=True)
    output = os.path.join(args.output_dir, "evaluation.json")
    with open(output, "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
