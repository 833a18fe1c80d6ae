"""Settings: defaults, then the config file, then HOUSING_TUI_* variables, then command-line flags."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from core import spec
from core.errors import UserError

APP_NAME = "housing-tui"
BACKENDS = ("local", "sagemaker")
# Keys of the [sagemaker] section; each can also come from HOUSING_TUI_<KEY> and a --<key> flag.
SAGEMAKER_KEYS = (
    "region",
    "role_arn",
    "bucket",
    "prefix",
    "pipeline_name",
    "model_package_group",
    "processing_instance_type",
    "training_instance_type",
    "framework_version",
    "memory",
    "max_concurrency",
    "profile",
)


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def config_path() -> Path:
    if "HOUSING_TUI_CONFIG" in os.environ:
        return Path(os.environ["HOUSING_TUI_CONFIG"])
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    backend: str = "local"
    home: Path | None = None  # None: the platform's user data folder
    group: str = spec.DEFAULT_GROUP
    threshold: float = 0.6  # R2Threshold for new runs
    sagemaker: dict[str, str] = field(default_factory=dict)  # raw [sagemaker] values, checked by that backend

    def resolved_home(self) -> Path:
        return (self.home or default_home()).expanduser()

    def with_overrides(self, sagemaker: dict[str, object] | None = None, **values: object) -> Settings:
        given = {k: v for k, v in values.items() if v is not None}
        merged = {**self.sagemaker, **{k: str(v) for k, v in (sagemaker or {}).items() if v is not None}}
        return validate(replace(self, sagemaker=merged, **given))


def validate(settings: Settings) -> Settings:
    if settings.backend not in BACKENDS:
        raise UserError(f"backend {settings.backend!r} is not one of {', '.join(BACKENDS)}")
    spec.validate_name("model package group", settings.group)
    spec.validate_threshold(settings.threshold)
    return settings


def _coerce(name: str, value: object, source: str) -> object:
    try:
        if name == "home":
            return Path(str(value))
        if name == "threshold":
            number = float(value)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise ValueError
            return number
        return str(value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {name} = {value!r} is not valid") from None


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the config file (if any) and HOUSING_TUI_* variables; flags are applied by the caller."""
    environ = dict(os.environ if environ is None else environ)
    path = path or config_path()
    known = {f.name for f in fields(Settings)}
    values: dict[str, object] = {}
    sagemaker: dict[str, str] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"config file {path} cannot be read ({exc}); fix or remove it") from None
        for key, value in data.items():
            if key == "sagemaker" and isinstance(value, dict):
                unknown = sorted(set(value) - set(SAGEMAKER_KEYS))
                if unknown:
                    raise UserError(
                        f"config file {path}: unknown [sagemaker] setting {unknown[0]!r}; "
                        f"known: {', '.join(SAGEMAKER_KEYS)}"
                    )
                sagemaker.update({k: str(v) for k, v in value.items()})
                continue
            if key not in known or key == "sagemaker" or isinstance(value, dict):
                raise UserError(f"config file {path}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
            values[key] = _coerce(key, value, f"config file {path}")
    for name in known - {"sagemaker"}:
        variable = f"HOUSING_TUI_{name.upper()}"
        if environ.get(variable):
            values[name] = _coerce(name, environ[variable], variable)
    for key in SAGEMAKER_KEYS:
        variable = f"HOUSING_TUI_{key.upper()}"
        if environ.get(variable):
            sagemaker[key] = environ[variable]
    return validate(Settings(**values, sagemaker=sagemaker))  # type: ignore[arg-type]


def save_threshold(value: float, path: Path | None = None) -> Path:
    """Persist the threshold for next runs in the config file, keeping every other line as it was."""
    import re

    spec.validate_threshold(value)
    path = path or config_path()
    text = path.read_text() if path.exists() else ""
    line = f"threshold = {value!r}"
    # Only the top-level key: a `threshold` inside a [section] belongs to that section.
    top, section, rest = text.partition("\n[") if not text.startswith("[") else ("", "", text[1:])
    if re.search(r"(?m)^threshold\s*=.*$", top):
        top = re.sub(r"(?m)^threshold\s*=.*$", line, top, count=1)
    else:
        top = f"{line}\n{top}" if top else f"{line}\n"
    new_text = top + (("\n[" if top else "[") + rest if rest or section else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(new_text)
    os.replace(temporary, path)
    return path
