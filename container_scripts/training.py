"""Train step: fit StandardScaler + LinearRegression on the header-less training CSV (target first).

Written for SageMaker's scikit-learn training container, which sets SM_CHANNEL_TRAIN (the train channel)
and SM_MODEL_DIR (packed into model.tar.gz after the script exits). The local runner sets the same two
variables. Scaling lives inside the saved pipeline, so the endpoint takes raw feature values.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    return parser.parse_args(argv)


def load_training_data(folder: str):
    import pandas as pd

    files = sorted(glob.glob(os.path.join(folder, "*.csv")))
    if not files:
        raise ValueError(f"no .csv file in the train channel {folder}")
    frame = pd.concat([pd.read_csv(f, header=None) for f in files], ignore_index=True)
    if frame.shape[1] != 9 or len(frame) < 2:
        raise ValueError(
            f"training data has {len(frame)} row(s) of {frame.shape[1]} column(s); "
            "expected at least 2 rows of 9 (target first, then the 8 features)"
        )
    return frame.iloc[:, 1:].to_numpy(dtype="float64"), frame.iloc[:, 0].to_numpy(dtype="float64")


def main(argv: list[str] | None = None) -> int:
    import joblib
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    args = parse_args(argv)
    try:
        features, target = load_training_data(args.train)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    model = make_pipeline(StandardScaler(), LinearRegression())
    model.fit(features, target)
    print(f"fitted on {len(target)} rows; training r2 {model.score(features, target):.4f}")
    os.makedirs(args.model_dir, exist_ok=True)
    path = os.path.join(args.model_dir, "model.joblib")
    joblib.dump(model, path)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
