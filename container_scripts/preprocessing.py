"""Preprocess step: validate the California housing CSV, drop incomplete rows, split, write train/test.

Runs unchanged in SageMaker's scikit-learn processing container (paths under /opt/ml/processing) and
locally, where the runner only points the path options at local folders. Kept free of project imports
because SageMaker uploads this one file on its own. An input problem ends the script with exit code 1
and one line starting with "error:" as the last line of its output; the runner shows that line as the
step's failure reason.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys

FEATURES = [
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
]
TARGET = "MedHouseVal"
# Values beyond this cannot be features or house values, and their squares summed over the rows (the
# scaler's variance, the metrics) would overflow float64 into inf and NaN: refuse them here, with the line,
# instead of failing in Train with "does not accept missing values encoded as NaN".
MAX_MAGNITUDE = 1e100


class InputError(Exception):
    """A problem with the input data that the user has to fix."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--split-seed", type=int, default=42)
    parser.add_argument(
        "--input-path",
        default="/opt/ml/processing/input",
        help="a CSV file (optionally .gz), or a folder holding exactly one",
    )
    parser.add_argument("--train-dir", default="/opt/ml/processing/train")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    return parser.parse_args(argv)


def find_input_file(path: str) -> str:
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise InputError(f"input {path} does not exist; pass a CSV file or a folder holding one")
    candidates = sorted(glob.glob(os.path.join(path, "*.csv")) + glob.glob(os.path.join(path, "*.csv.gz")))
    if len(candidates) != 1:
        raise InputError(f"expected exactly one .csv or .csv.gz file in {path}, found {len(candidates)}")
    return candidates[0]


def load_frame(path: str):
    import pandas as pd

    try:
        # Read everything as text first, so a non-numeric value can be reported with its line.
        frame = pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        raise InputError(f"input {path} is empty; it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"input {path} is not a readable CSV file ({first})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in [*FEATURES, TARGET] if c not in frame.columns]
    if missing:
        raise InputError(
            f"input CSV is missing column(s) {', '.join(missing)}; it needs {', '.join([*FEATURES, TARGET])}"
        )
    if frame.empty:
        raise InputError(f"input {path} has a header but no data rows")
    return frame[[*FEATURES, TARGET]]


def to_numbers(text_frame):
    """Convert every column to float; empty and NA cells become NaN, other non-numbers are an error."""
    import pandas as pd

    numeric = {}
    for column in text_frame.columns:
        text = text_frame[column].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna() & (text != "")
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(
                f"column {column} has a non-numeric value {text.iloc[row]!r} on line {row + 2}; "
                "every value must be a number (or empty, to drop the row)"
            )
        # pandas 1.1 (the scikit-learn 1.2-1 image's) parses some decimals one ulp off; numpy's conversion of
        # the text is correctly rounded, so both images write the same numbers. pd.to_numeric only finds the bad.
        try:
            numeric[column] = text.where(values.notna()).astype("float64")
        except ValueError:  # text pandas reads as a number and Python does not: keep pandas' reading
            numeric[column] = values.astype("float64")
        check_magnitude(column, numeric[column], text)
    return pd.DataFrame(numeric)


def check_magnitude(column: str, values, text) -> None:
    """Refuse a finite value too large to compute with; infinities are dropped with their row by `clean`."""
    import numpy as np

    magnitude = np.abs(values.to_numpy())
    huge = np.isfinite(magnitude) & (magnitude > MAX_MAGNITUDE)
    if huge.any():
        row = int(huge.nonzero()[0][0])
        raise InputError(
            f"column {column} has {text.iloc[row]!r} on line {row + 2}, beyond the bound of {MAX_MAGNITUDE:g} in "
            "magnitude where sums of squares overflow; correct the value or leave the cell empty to drop the row"
        )


def clean(frame):
    """Drop rows with a missing or infinite value and say how many went."""
    import numpy as np

    finite = np.isfinite(frame.to_numpy()).all(axis=1)
    dropped = int((~finite).sum())
    kept = frame[finite]
    print(f"dropped {dropped} row(s) with missing or infinite values; {len(kept)} row(s) remain")
    return kept


def split(frame, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0 or not math.isfinite(test_size):
        raise InputError(f"test size {test_size} is outside (0, 1); use a fraction such as 0.2")
    n_test = math.ceil(test_size * len(frame))
    n_train = len(frame) - n_test
    if n_test < 2 or n_train < 2:
        raise InputError(
            f"{len(frame)} usable row(s) are too few to split with test size {test_size}: "
            "training and the test set need at least 2 rows each"
        )
    return train_test_split(frame, test_size=test_size, random_state=seed)


def write_split(frame, folder: str, name: str) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    # Header-less with the target first: the layout SageMaker's built-in algorithms expect.
    frame[[TARGET, *FEATURES]].to_csv(path, header=False, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source = find_input_file(args.input_path)
        print(f"reading {source}")
        frame = clean(to_numbers(load_frame(source)))
        train, test = split(frame, args.test_size, args.split_seed)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    train_path = write_split(train, args.train_dir, "train.csv")
    test_path = write_split(test, args.test_dir, "test.csv")
    print(f"wrote {len(train)} training rows to {train_path}")
    print(f"wrote {len(test)} test rows to {test_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
