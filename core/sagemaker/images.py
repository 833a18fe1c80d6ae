"""Where SageMaker publishes the scikit-learn container, read from the SDK's own table of images.

The table ships with the SageMaker Python SDK as a JSON file; it is read without importing the SDK, which
takes seconds to import.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _sklearn_table() -> dict[str, Any]:
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "image_uri_config" / "sklearn.json"
    try:
        return json.loads(path.read_text())["inference"]["versions"]
    except (OSError, ValueError, KeyError):
        return {}


def sklearn_versions() -> list[str]:
    return list(_sklearn_table())


def sklearn_image_uri(region: str, version: str) -> str | None:
    """The image URI in `region`, or None where SageMaker does not publish that version."""
    entry = _sklearn_table().get(version)
    account = (entry or {}).get("registries", {}).get(region)
    if account is None:
        return None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{entry['repository']}:{version}-cpu-py3"
