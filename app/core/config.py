"""The one place that reads the environment (and `.env`)."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-key-do-not-use-in-production"  # noqa: S105 - refused in production
MIN_PRODUCTION_SECRET_LENGTH = 64


class ConfigurationError(RuntimeError):
    """Raised at start-up when the configuration is unsafe for the chosen environment."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    env: Literal["development", "production"] = "development"
    debug: bool = False
    database_url: str = "sqlite:///./var/loans.db"
    database_read_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    algorithm: Literal["HS256"] = "HS256"
    access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    principal_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a worker reuses a token holder's row (active, role, branch, credentials) before "
        "reading it again; 0 reads it on every request",
    )
    console_session_max_hours: int = Field(
        default=12, ge=1, le=7 * 24, description="A console session ends this long after sign-in, however active"
    )
    allowed_origins: str = ""
    docs_enabled: bool | None = Field(
        default=None, description="Serve /docs and /openapi.json; default: on, except in production"
    )
    rate_limit_per_minute: int = Field(default=60, ge=1, description="Per client address, requests not signed in")
    user_rate_limit_per_minute: int = Field(default=600, ge=1, description="Per signed-in user")
    login_failures_per_minute: int = Field(default=5, ge=1)
    redis_url: str | None = None
    sentry_dsn: str | None = None
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    admin_password: SecretStr | None = None
    min_borrower_age_years: int = Field(default=18, ge=0, le=100)
    idempotency_key_ttl_hours: int = Field(default=48, ge=24)
    prometheus_multiproc_dir: str | None = None
    amqp_url: SecretStr | None = Field(default=None, description="RabbitMQ: publish events to exchange loan-events")
    amqp_exchange: str = "loan-events"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_backoff_base_seconds: float = Field(default=5.0, ge=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    webhook_retry_window_hours: float = Field(default=24.0, ge=0)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_concurrency: int = Field(default=8, ge=1, le=64)
    payment_batch_chunk_rows: int = Field(default=200, ge=1, le=10_000)
    cob_fault_after_chunks: int | None = Field(
        default=None, description="Test-only fault injection: close of business kills itself after N chunks"
    )

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def serve_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    def production_problems(self) -> list[str]:
        """Why this configuration must not serve production traffic (empty when it may)."""
        if not self.is_production:
            return []
        problems = []
        secret = self.secret_key.get_secret_value()
        if secret == DEVELOPMENT_SECRET or len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
            problems.append(
                f"SECRET_KEY must be set to a random value of at least {MIN_PRODUCTION_SECRET_LENGTH} characters "
                '(python3 -c "import secrets; print(secrets.token_urlsafe(64))")'
            )
        if self.debug:
            problems.append("DEBUG must be false in production")
        if "*" in self.origins:
            problems.append("ALLOWED_ORIGINS must list origins explicitly, not '*', in production")
        return problems

    def startup_warnings(self) -> list[str]:
        """What an operator must hear about a configuration that is allowed to start but is not safe to expose."""
        if self.is_production:
            return []
        if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET:
            return [
                "SECRET_KEY is the built-in development key: anyone can sign tokens for any user of this server. "
                "Set SECRET_KEY before it is reachable by anyone but you (ENV=production refuses to start with it)."
            ]
        return []

    def check_safe_to_start(self) -> None:
        problems = self.production_problems()
        if problems:
            raise ConfigurationError("refusing to start with ENV=production: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()
