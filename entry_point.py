"""SageMaker inference entry point: the scikit-learn container calls model_fn once when it starts.

Only model loading lives here, as in the lesson: the default input_fn/predict_fn/output_fn of the
SageMaker scikit-learn container handle text/csv in and out. The local endpoint server calls this same
function on the same extracted model.tar.gz, so both backends load the model one way.
"""

import os

import joblib


def model_fn(model_dir):
    """Load the fitted StandardScaler + LinearRegression pipeline saved by training.py."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))
