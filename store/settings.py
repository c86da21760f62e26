"""Settings for incidex, read from INCIDEX_* environment variables and an optional TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from store.errors import SettingsInvalid


def default_config_file() -> Path:
    """The TOML config file looked for when INCIDEX_CONFIG_FILE is not set."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "incidex" / "config.toml"


class Settings(BaseSettings):
    """Every knob incidex has; environment variables win over the config file."""

    model_config = SettingsConfigDict(env_prefix="INCIDEX_", extra="ignore")

    config_file: Path | None = Field(
        default=None,
        description="TOML file with settings (keys are the field names); "
        "default ~/.config/incidex/config.toml when it exists.",
    )
    data_dir: Path = Field(
        default=Path("data"),
        description="Directory for the SQLite database, backups, index snapshots and cache.",
    )
    database_url: str | None = Field(
        default=None,
        repr=False,  # may hold a password; messages show store.redact.redact_url() of it
        description="SQLAlchemy URL of the store; default SQLite at DATA_DIR/incident_analysis.db.",
    )
    busy_timeout_seconds: float = Field(
        default=30.0,
        description="How long a SQLite writer waits for another process's lock before failing.",
    )
    chat_model: str = Field(
        default="gpt-4o-mini", description="Default model name for analyses when none is given."
    )
    embedder: str = Field(
        default="hashed-concepts-v1",
        description="Embedder for similar-incident search: 'hashed-concepts-v1' (offline default), "
        "'all-minilm-l6-v2' (local model, the models extra) or 'openai:<model>'.",
    )
    embed_on_save: bool = Field(
        default=True,
        description="Embed each analysis as it is saved; false leaves vectors pending for "
        "`incidex reindex --pending` (fast bulk imports).",
    )
    openai_base_url: str | None = Field(
        default=None,
        repr=False,  # may hold a password; messages show store.redact.redact_url() of it
        description="Base URL of an OpenAI-compatible API (OpenAI, vLLM, Ollama, LM Studio).",
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="API key for the OpenAI-compatible API (never shown)."
    )
    openai_timeout_seconds: float = Field(
        default=20.0, description="Timeout of one call to the OpenAI-compatible API."
    )
    analyze_output_mode: Literal["json_schema", "function_calling", "json_mode"] = Field(
        default="json_schema",
        description="How analyses ask for structured output: 'json_schema' (OpenAI, vLLM, "
        "Ollama, LM Studio), 'function_calling' (a tool call) or 'json_mode' (json_object; "
        "LM Studio rejects it).",
    )
    analyze_strip_pii: bool = Field(
        default=True,
        description="Replace PII by keyed pseudonyms in the prompt, as for embedding; the saved "
        "analysis gets the real values back. Turn off for a model you host yourself.",
    )
    analyze_similar_k: int = Field(
        default=5, ge=0, le=50,
        description="How many similar past incidents (with their analyses' gist) go into the "
        "prompt.",
    )
    analyze_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Timeout of one chat call of an analysis."
    )
    analyze_max_output_tokens: int = Field(
        default=2000, ge=1, description="Output token limit of one analysis call."
    )
    analyze_estimated_output_tokens: int = Field(
        default=600, ge=0,
        description="Output tokens assumed per analysis in cost estimates and budgets.",
    )
    analyze_rate_limit_attempts: int = Field(
        default=3, ge=1, description="Attempts of a call the server answers with HTTP 429."
    )
    analyze_max_retry_wait_seconds: float = Field(
        default=30.0, ge=0,
        description="Longest Retry-After an analysis waits for; a longer one fails the call.",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,  # may hold a password
        description="Redis URL for the shared cache; without it an on-disk cache under DATA_DIR.",
    )
    cache_memory_max_entries: int = Field(
        default=10_000, description="Entries kept in the in-process memory cache."
    )
    cache_memory_max_bytes: int = Field(
        default=64 * 1024 * 1024, description="Bytes kept in the in-process memory cache."
    )
    cache_disk_max_bytes: int = Field(
        default=1024 * 1024 * 1024, description="Size limit of the on-disk cache."
    )
    cache_ttl_seconds: float = Field(
        default=30 * 24 * 3600.0, description="How long cached results live by default."
    )
    cache_retry_seconds: float = Field(
        default=3.0, description="After a Redis failure, how long to wait before trying again."
    )
    secrets_dir: Path | None = Field(
        default=None,
        description="Directory for keys kept outside DATA_DIR (PII pseudonym key); "
        "default ~/.config/incidex/secrets.",
    )
    pii_key: SecretStr | None = Field(
        default=None,
        description="Key of the PII pseudonyms (32+ characters); default a key file in "
        "SECRETS_DIR, created on first use.",
    )
    encrypt_at_rest: bool = Field(
        default=True,
        description="Seal incident descriptions, findings, analyses and JSON backups with "
        "AES-256-GCM under per-incident data keys (keys in SECRETS_DIR/keyring).",
    )
    encryption_primary_key: str | None = Field(
        default=None,
        description="Id of the key-encryption key that wraps new data keys; default the one "
        "named in SECRETS_DIR/keyring/primary (set by `incidex keys rotate`).",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="A key-encryption key from the environment, '<key id>:<64 hex digits>' "
        "(containers); primary when no other is named.",
    )
    retention_days: int | None = Field(
        default=None, ge=1,
        description="Purge incidents this many days after their last update (`incidex "
        "purge`); default off.",
    )
    retention_days_by_severity: dict[str, int] = Field(
        default_factory=dict,
        description='Per-severity retention in days, e.g. {"info": 30, "critical": 730}; a '
        "severity not named falls back to RETENTION_DAYS.",
    )
    internal_domains: tuple[str, ...] = Field(
        default=(),
        description="Your internal DNS suffixes, pseudonymised with STRIP_INTERNAL_HOSTS.",
    )
    strip_internal_hosts: bool = Field(
        default=False,
        description="Also pseudonymise internal host names and private IP ranges before embedding.",
    )
    index_kind: Literal["auto", "flat", "hnsw", "hnsw-sq8", "ivf", "ivf-sq8"] = Field(
        default="auto",
        description="Vector index: exact 'flat', approximate 'hnsw' (a graph over the float "
        "vectors), 'hnsw-sq8' (a graph over 8-bit codes), 'ivf' or 'ivf-sq8' (8-bit codes), "
        "or 'auto': exact below INDEX_APPROXIMATE_FROM vectors, 'hnsw-sq8' above if its "
        "recall@10 measured on the store's vectors reaches 0.95.",
    )
    index_approximate_from: int = Field(
        default=200_000, description="Vector count from which 'auto' tries 'hnsw-sq8'."
    )
    index_nprobe: int = Field(
        default=32, description="Inverted lists an approximate search visits."
    )
    similar_seen_min_score: float = Field(
        default=0.65,
        description="Score from which a past incident counts as 'seen before' in the list.",
    )
    keymap: dict[str, str] = Field(
        default_factory=dict,
        description='Remapped keys of the app: binding id -> keys, e.g. {"list.down": "down,n"} '
        "(the ? screen lists every binding id).",
    )
    max_text_chars: int = Field(
        default=1_000_000,
        description="Largest incident title, description or findings accepted, in characters.",
    )
    max_analysis_bytes: int = Field(
        default=5_000_000, description="Largest analysis JSON accepted, in bytes."
    )
    max_document_bytes: int = Field(
        default=100_000_000,
        description="Largest single JSON document, array or line read by `incidex --save`, in "
        "bytes; larger input is refused before it is read into memory.",
    )
    save_batch_size: int = Field(
        default=500, description="Records committed per transaction by `incidex --save`."
    )
    backup_keep_daily: int = Field(
        default=7, ge=1, description="Daily snapshots `incidex backup run-due` keeps."
    )
    backup_keep_weekly: int = Field(
        default=4, ge=0, description="Weekly snapshots (the newest of each ISO week) kept."
    )
    backup_auto: bool = Field(
        default=True, description="The TUI runs `incidex backup run-due` in a background "
        "worker at start when a snapshot (daily) or a drill (weekly) is due."
    )
    backup_pg_wal_dir: Path | None = Field(
        default=None, description="PostgreSQL: the folder the server's archive_command copies "
        "WAL segments into (readable here). With it (and archive_mode on, a role with "
        "REPLICATION), `incidex backup now` takes a pg_basebackup and restores replay WAL to "
        "the exact time; without it, pg_dump snapshots plus the journal."
    )
    backup_pg_server_user: str = Field(
        default="postgres", description="The OS user that runs the temporary PostgreSQL of a "
        "WAL restore when incidex runs as root (PostgreSQL refuses to run as root)."
    )
    backup_mirrors: tuple[str, ...] = Field(
        default=(), description="Further copies of every snapshot and journal day, as a JSON "
        "list: folders (other disks, mounts) or S3-compatible buckets as s3://bucket/prefix "
        "(keys from the usual AWS_* variables; needs the `incidex[s3]` extra)."
    )
    backup_s3_endpoint: str | None = Field(
        default=None, description="The endpoint URL of the S3-compatible service of s3:// "
        "mirrors (default: boto3's, AWS_ENDPOINT_URL or AWS itself)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = config_file_to_read()
        if toml_path is not None:
            sources.append(_checked_toml_source(settings_cls, toml_path))
        return tuple(sources)


def config_file_to_read() -> Path | None:
    """The TOML file to read: INCIDEX_CONFIG_FILE (which must exist), else the default if any."""
    named = os.environ.get("INCIDEX_CONFIG_FILE")
    if not named:
        default = default_config_file()
        return default if default.is_file() else None
    path = Path(named).expanduser()
    if path.is_dir():
        raise SettingsInvalid(f"INCIDEX_CONFIG_FILE: {path} is a directory, not a TOML file")
    if not path.is_file():
        raise SettingsInvalid(f"INCIDEX_CONFIG_FILE: no such file {path}")
    return path


def _checked_toml_source(settings_cls: type[BaseSettings], path: Path
                         ) -> TomlConfigSettingsSource:
    """The config file's settings; a file that is not TOML or has unknown keys is refused."""
    import tomllib

    try:
        source = TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as error:
        raise SettingsInvalid(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise SettingsInvalid(f"{path}: cannot read: {error.strerror}") from None
    unknown = sorted(set(source.toml_data) - set(settings_cls.model_fields))
    if unknown:
        known = ", ".join(sorted(settings_cls.model_fields))
        raise SettingsInvalid(f"{path}: unknown setting {unknown[0]!r} (known: {known})")
    return source


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment, the config file and explicit overrides;
    SettingsInvalid names the first bad setting and where it came from."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**clean)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        problem = first["msg"][0].lower() + first["msg"][1:]
        raise SettingsInvalid(f"{_origin(name, clean)}: {problem}") from None
    except SettingsError as error:
        # pydantic-settings' message starts 'error parsing value for field "keymap" ...'.
        name = str(error).split('"')[1] if str(error).count('"') >= 2 else ""
        cause = error.__cause__ or error
        problem = str(cause).splitlines()[0] if str(cause) else "cannot be parsed"
        raise SettingsInvalid(f"{_origin(name, clean)}: not valid JSON ({problem})") from None


def _origin(name: str, overrides: dict[str, Any]) -> str:
    """Where setting `name` came from: an option, an environment variable or the config file."""
    if name in overrides:
        return f"--{name.replace('_', '-')}"
    variable = f"INCIDEX_{name.upper()}"
    if variable in os.environ:
        return variable
    config = config_file_to_read()
    return f"{config}: {name}" if config is not None else name
