"""The SageMaker scikit-learn image the pipeline runs on: its framework version and its Python packages, pinned.

The one place for both: the pipeline definition's default framework_version, the tests' image URI and the
container venv (tools/container_venv.sh, `make container-venv`) all come from here.

    python -m core.sklearn_image requirements   # the pins, one per line, for pip install --no-deps -r
    python -m core.sklearn_image digest         # a short sha256 of the Python version and the pins: the cache key

Standard library only, and Python 3.9 syntax: the container venv's own interpreter runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys

FRAMEWORK_VERSION = "1.2-1"
PYTHON_VERSION = "3.9"

# Source: github.com/aws/sagemaker-scikit-learn-container, branch 1.2-1, head b440c40 (2025-09-22), which the image
# is built from: docker/1.2-1/base/Dockerfile.cpu (conda Python 3.9, then `pip install -I scikit-learn==1.2.1`),
# then docker/1.2-1/final/Dockerfile.cpu (`pip install -r requirements.txt`).
#
# The set is closed, every transitive dependency pinned, so pip installs it with --no-deps and `pip check` passes.
# Anything the sources leave open is pinned to what pip resolves for these pins on Python 3.9 from releases
# uploaded before 2025-09-23, i.e. what a build of that head picks. That is an approximation for the few the image
# takes from conda instead (pip leaves an unversioned requirement that is already met alone: setuptools, wheel,
# certifi, cryptography). Two of the dated pins matter: setuptools 80.9.0 (81+ drops pkg_resources, which
# sagemaker_containers._server imports at import time) and joblib 1.5.2 (it writes and reads the model file).
# pandas 1.1.3 (2020) with numpy 1.24.1 installs and works on 3.9: it uses none of the aliases numpy 1.24 removed.
#
# Left out on purpose, as nothing of ours imports them: requirements.txt's multi-model-server, model-archiver,
# sagemaker-inference and sagemaker-training (the multi-model server, Java, and the training launcher that
# SageMaker runs around our scripts); the image's conda-only packages (pyarrow 14.0.1, mlio); and
# sagemaker_sklearn_container itself (built from that repository, not on PyPI; its serving module wraps
# sagemaker_containers' worker, transformer and encoders, which are here).
PINS = (
    # requirements.txt, pinned there.
    "boto3==1.28.57",
    "Flask==1.1.1",
    "itsdangerous==2.0.1",
    "gunicorn==23.0.0",
    "pandas==1.1.3",
    "protobuf==3.20.2",
    "psutil==5.7.2",
    "python-dateutil==2.8.1",
    "retrying==1.3.3",
    "sagemaker-containers==2.8.6.post2",
    "scikit-learn==1.2.1",
    "scipy==1.8.0",
    "urllib3==1.26.17",
    "six==1.15.0",
    "jinja2==3.0.3",
    "MarkupSafe==2.1.1",
    "numpy==1.24.1",
    "gevent==23.9.1",
    "Werkzeug==2.0.3",
    # requirements.txt, open there (botocore>=1.31.57,<1.32.0; the others unversioned).
    "botocore==1.31.85",
    "cryptography==46.0.1",
    "certifi==2025.8.3",
    "pip==25.2",
    "setuptools==80.9.0",
    "wheel==0.45.1",
    # scikit-learn 1.2.1's own dependencies, installed by the base Dockerfile and pinned nowhere.
    "joblib==1.5.2",
    "threadpoolctl==3.6.0",
    # sagemaker-containers 2.8.6.post2's install_requires (inotify_simple pinned there) and theirs.
    "inotify-simple==1.2.1",
    "paramiko==4.0.0",
    "bcrypt==4.3.0",
    "PyNaCl==1.6.0",
    "invoke==2.2.0",
    "cffi==2.0.0",
    "pycparser==2.23",
    "typing==3.7.4.3",
    # The rest of the closure: boto3, Flask, pandas, gevent, gunicorn and cryptography's dependencies.
    "jmespath==1.0.1",
    "s3transfer==0.7.0",
    "click==8.1.8",
    "pytz==2025.2",
    "greenlet==3.2.4",
    "zope.event==6.0",
    "zope.interface==8.0",
    "packaging==25.0",
    "typing_extensions==4.15.0",
)


def requirements() -> str:
    return "".join(f"{pin}\n" for pin in PINS)


def digest() -> str:
    text = f"python=={PYTHON_VERSION}\n{requirements()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m core.sklearn_image", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("requirements", "digest"))
    args = parser.parse_args(argv)
    if args.what == "requirements":
        sys.stdout.write(requirements())
    else:
        print(digest())


if __name__ == "__main__":
    main()
