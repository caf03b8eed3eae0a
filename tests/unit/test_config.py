"""Production configuration guards."""

import subprocess
import sys

import pytest

from app.core.config import DEVELOPMENT_SECRET, ConfigurationError
from app.main import create_app
from tests.conftest import make_settings

GOOD_SECRET = "p" * 64


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"secret_key": "short"}, "SECRET_KEY"),
        ({"secret_key": "x" * 63}, "SECRET_KEY"),
        ({"secret_key": DEVELOPMENT_SECRET}, "SECRET_KEY"),  # not set: the development default
        ({"debug": True}, "DEBUG"),
        ({"allowed_origins": "*"}, "ALLOWED_ORIGINS"),
        ({"allowed_origins": "https://a.example, *"}, "ALLOWED_ORIGINS"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], reason: str, tmp_path: object) -> None:
    values: dict[str, object] = {"env": "production", "secret_key": GOOD_SECRET, **overrides}
    settings = make_settings("sqlite:///:memory:", **values)
    with pytest.raises(ConfigurationError, match=reason):
        create_app(settings)


def test_production_starts_with_safe_settings() -> None:
    settings = make_settings("sqlite:///:memory:", env="production", secret_key=GOOD_SECRET,
                             allowed_origins="https://ops.example")
    assert create_app(settings).state.settings.is_production


def test_refusal_exits_non_zero_with_a_clear_message(tmp_path: object) -> None:
    env = {"ENV": "production", "SECRET_KEY": "too-short", "PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:///:memory:"}
    r = subprocess.run([sys.executable, "-c", "import app.main"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "refusing to start" in r.stderr and "SECRET_KEY" in r.stderr
    assert "Traceback" not in r.stderr
