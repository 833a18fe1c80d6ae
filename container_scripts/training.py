"""Train step: the lesson's cleaning and LinearRegression, fitted on the header-less training CSV (target first).

Written for SageMaker's scikit-learn training container, which sets SM_CHANNEL_TRAIN (the train channel)
and SM_MODEL_DIR (packed into model.tar.gz after the script exits). The local runner sets the same two
variables.

The model is one scikit-learn pipeline that takes the 8 raw features and applies the lesson's cleaning
itself, learned on the training split only:

1. cap MedInc, HouseAge, AveRooms, AveBedrms, Population and AveOccup at their 95th percentile;
2. add RoomsPerHousehold = AveRooms / AveOccup (of the capped values);
3. StandardScaler, LinearRegression.

Because the cleaning travels inside model.joblib, the endpoint applies exactly what training applied (no
training/serving skew) and the test split's quantiles never leak into the model. The target is not capped:
capping it would make r2 look better on a target that is easier to predict, and the model would then
predict the capped value instead of the real house value.

Only scikit-learn's and numpy's own objects are pickled (no class or function of ours), so model.joblib
loads wherever scikit-learn does: in the Evaluate processing job, which ships evaluation.py alone, and in
the serving container, whose sys.path holds only entry_point.py.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]
# Latitude and Longitude are places, not quantities with outliers: the lesson leaves them alone.
CAPPED = FEATURES[:6]
CAP_QUANTILE = 0.95
ROOMS, OCCUPANTS = FEATURES.index("AveRooms"), FEATURES.index("AveOccup")


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
    # Read as text, converted by numpy: pandas 1.1 (the 1.2-1 image's) parses some decimals one ulp off.
    frame = pd.concat([pd.read_csv(f, header=None, dtype=str) for f in files], ignore_index=True)
    if frame.shape[1] != 9 or len(frame) < 2:
        raise ValueError(
            f"training data has {len(frame)} row(s) of {frame.shape[1]} column(s); "
            "expected at least 2 rows of 9 (target first, then the 8 features)"
        )
    return frame.iloc[:, 1:].to_numpy(dtype="float64"), frame.iloc[:, 0].to_numpy(dtype="float64")


def upper_caps(features):
    """The 95th percentile of each capped feature in the training rows; no cap (inf) for the others."""
    import numpy as np

    caps = np.full(len(FEATURES), np.inf)
    caps[: len(CAPPED)] = np.quantile(features[:, : len(CAPPED)], CAP_QUANTILE, axis=0)
    return caps


def build_model(caps):
    """The serving pipeline: raw 8 features in, a house value out."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    # np.divide.reduce over the two columns [AveRooms, AveOccup] is AveRooms / AveOccup, one column wide.
    rooms_per_household = FunctionTransformer(np.divide.reduce, kw_args={"axis": 1, "keepdims": True})
    return Pipeline(
        [
            # validate=True: the first step checks its input as every scikit-learn estimator does (a 2-D
            # array of 8 finite numbers), so a 1-D row fails with "Expected 2D array" here as well.
            ("cap", FunctionTransformer(np.clip, validate=True, kw_args={"a_min": None, "a_max": caps})),
            (
                "features",
                ColumnTransformer(
                    [
                        ("raw", "passthrough", list(range(len(FEATURES)))),
                        ("rooms_per_household", rooms_per_household, [ROOMS, OCCUPANTS]),
                    ]
                ),
            ),
            ("standardscaler", StandardScaler()),
            ("linearregression", LinearRegression()),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    import joblib

    args = parse_args(argv)
    try:
        features, target = load_training_data(args.train)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    caps = upper_caps(features)
    model = build_model(caps)
    model.fit(features, target)
    shown = ", ".join(f"{name} {cap:.6g}" for name, cap in zip(CAPPED, caps))
    print(f"caps at the {CAP_QUANTILE:.0%} quantile of the training rows: {shown}")
    print(f"fitted on {len(target)} rows; training r2 {model.score(features, target):.4f}")
    os.makedirs(args.model_dir, exist_ok=True)
    path = os.path.join(args.model_dir, "model.joblib")
    joblib.dump(model, path)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
