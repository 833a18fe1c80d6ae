"""Settings: defaults, then the config file, then HOUSING_TUI_* variables, then command-line flags."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from core import spec
from core.errors import UserError

APP_NAME = "housing-tui"
BACKENDS = ("local",)


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

    def resolved_home(self) -> Path:
        return (self.home or default_home()).expanduser()

    def with_overrides(self, **values: object) -> Settings:
        given = {k: v for k, v in values.items() if v is not None}
        return validate(replace(self, **given))


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
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"config file {path} cannot be read ({exc}); fix or remove it") from None
        for key, value in data.items():
            if isinstance(value, dict):
                continue  # sections such as [sagemaker] belong to their backend
            if key not in known:
                raise UserError(f"config file {path}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
            values[key] = _coerce(key, value, f"config file {path}")
    for name in known:
        variable = f"HOUSING_TUI_{name.upper()}"
        if environ.get(variable):
            values[name] = _coerce(name, environ[variable], variable)
    return validate(Settings(**values))  # type: ignore[arg-type]
