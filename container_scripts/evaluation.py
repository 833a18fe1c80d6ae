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
import sys
import tarfile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    return parser.parse_args(argv)


def safe_extract(archive: str, target: str) -> None:
    """Extract only regular files and folders that stay inside target; refuse anything else.

    A model.tar.gz is an input like any other: a member named ../x, /etc/x or a link must not
    write outside the extraction folder.
    """
    root = os.path.realpath(target)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            destination = os.path.realpath(os.path.join(root, member.name))
            inside = destination == root or destination.startswith(root + os.sep)
            if not inside or os.path.isabs(member.name):
                raise ValueError(f"model archive member {member.name!r} would land outside {target}")
            if not (member.isfile() or member.isdir()):
                raise ValueError(f"model archive member {member.name!r} is not a regular file")
        for member in members:
            tar.extract(member, root, set_attrs=False)


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
    import joblib
    import pandas as pd

    args = parse_args(argv)
    archive = os.path.join(args.model_dir, "model.tar.gz")
    extract_dir = os.path.join(args.model_dir, "extracted")
    os.makedirs(extract_dir, exist_ok=True)
    try:
        safe_extract(archive, extract_dir)
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
