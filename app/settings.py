"""One typed settings object, read from ``INSIGHTHUB_*`` variables.

Every default serves the embedded mode, so ``insighthub serve`` needs nothing set. Modules
get the object (or a typed view of it) passed in; nothing deep in the code reads the
environment, so tests build apps with their own ``Settings(...)``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROVIDER_NAMES = ("local", "synthetic", "openai", "anthropic", "ollama", "huggingface")


@dataclass(frozen=True, slots=True)
class ProviderTimeouts:
    connect_s: float
    first_token_s: float
    idle_s: float


@dataclass(frozen=True, slots=True)
class HttpProviderConfig:
    """What a network provider needs: where, with which key, and its default model."""

    base_url: str | None
    api_key: str | None
    default_model: str
    timeouts: ProviderTimeouts


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INSIGHTHUB_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    amqp_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_ttl_s: int = 24 * 3600
    cors_origins: str | None = None
    public_url: str | None = None

    # database pool (PostgreSQL)
    db_pool_size: int = 20
    db_max_overflow: int = 10
    db_pool_timeout_s: float = 10.0

    # providers
    default_provider: str = "local"
    default_model: str | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_default_model: str = "gpt-4o-mini"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_default_model: str = "claude-sonnet-4-5"
    ollama_base_url: str | None = None
    ollama_default_model: str = "llama3.2"
    huggingface_base_url: str | None = None
    huggingface_api_key: SecretStr | None = None
    huggingface_default_model: str = "tgi"
    synthetic_provider: bool = True
    llm_connect_timeout_s: float = 10.0
    llm_first_token_timeout_s: float = 60.0
    llm_idle_timeout_s: float = 30.0
    llm_max_retries: int = 2
    llm_retry_base_delay_s: float = 0.5
    llm_max_tokens: int | None = None
    history_token_budget: int = 6000
    embedding_provider: str | None = None
    embedding_model: str | None = None

    # sign-in: failures within the window before further attempts get 429 (0: no limit)
    sign_in_failures_per_account: int = Field(default=10, ge=0)
    sign_in_failures_per_address: int = Field(default=100, ge=0)
    sign_in_failure_window_s: float = Field(default=300.0, gt=0)

    # chat turns
    worker_concurrency: int = 512
    # Turns a process stores (API) or loads and claims (worker) at once; see ChatTurns.
    turn_setup_concurrency: int = Field(default=4, ge=1)
    checkpoint_interval_s: float = 1.0
    lease_s: float = 10.0
    sweep_interval_s: float = 15.0
    pending_grace_s: float = 30.0
    # about one display frame: a page paints no more often (app/chat/chunks.py)
    chunk_min_interval_s: float = Field(default=0.016, ge=0)
    shutdown_grace_s: float = 20.0
    job_delivery_limit: int = 5
    publish_timeout_s: float = 5.0
    # at most one event message per this interval per process (app/bus/amqp_outbox.py)
    event_batch_interval_s: float = Field(default=0.003, ge=0, le=1)

    # documents and retrieval
    max_upload_bytes: int = 20 * 1024 * 1024
    chunk_size_chars: int = 1200
    chunk_overlap_chars: int = 200
    retrieval_top_k: int = 4
    parse_workers: int = 1

    # sockets
    max_frame_bytes: int = 256 * 1024
    max_send_queue: int = 2000
    sse_heartbeat_s: float = 15.0
    ping_interval_s: float = 25.0
    ping_timeout_s: float = 20.0

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'insighthub.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")

    @property
    def distributed(self) -> bool:
        return bool(self.amqp_url)

    def resolved_jwt_secret(self) -> str:
        """The explicit secret, else the one generated on first start and kept on disk."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secret)
        tmp.chmod(0o600)
        tmp.replace(path)
        return secret

    def allowed_origins(self) -> list[str] | None:
        """Comma-separated origins; None means the server's own origin only."""
        if not self.cors_origins:
            return None
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    def timeouts(self) -> ProviderTimeouts:
        return ProviderTimeouts(
            connect_s=self.llm_connect_timeout_s,
            first_token_s=self.llm_first_token_timeout_s,
            idle_s=self.llm_idle_timeout_s,
        )

    def _secret(self, value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    def openai(self) -> HttpProviderConfig | None:
        if not (self.openai_api_key or self.openai_base_url):
            return None
        return HttpProviderConfig(
            self.openai_base_url,
            self._secret(self.openai_api_key),
            self.openai_default_model,
            self.timeouts(),
        )

    def anthropic(self) -> HttpProviderConfig | None:
        if not (self.anthropic_api_key or self.anthropic_base_url):
            return None
        return HttpProviderConfig(
            self.anthropic_base_url,
            self._secret(self.anthropic_api_key),
            self.anthropic_default_model,
            self.timeouts(),
        )

    def ollama(self) -> HttpProviderConfig | None:
        if not self.ollama_base_url:
            return None
        return HttpProviderConfig(
            self.ollama_base_url, None, self.ollama_default_model, self.timeouts()
        )

    def huggingface(self) -> HttpProviderConfig | None:
        if not self.huggingface_base_url:
            return None
        return HttpProviderConfig(
            self.huggingface_base_url,
            self._secret(self.huggingface_api_key),
            self.huggingface_default_model,
            self.timeouts(),
        )

    node_id: str = Field(default_factory=lambda: secrets.token_hex(6))
    auto_migrate: bool | None = None  # None: on for SQLite, off for PostgreSQL (`migrate`)
    synthetic_record_path: str | None = None  # JSON lines of every synthetic stream (tests)

    def should_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


@lru_cache
def get_settings() -> Settings:
    return Settings()
