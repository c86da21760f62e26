"""SQLModel tables: the store's schema (Alembic migrations create and upgrade it)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel

# The text search expression: queries must repeat it exactly for PostgreSQL to use the GIN
# index that migration 0014 builds on it (SQLite searches an FTS5 table kept by triggers).
# Weight A holds the id and title words (prefix search), weight B the blind-index tokens of
# the sealed text (exact words only): the text itself is never indexed.
PG_SEARCH_VECTOR = (
    "(setweight(to_tsvector('simple', regexp_replace(incident_id || ' ' || title, "
    "'[^[:alnum:]]+', ' ', 'g')), 'A') || setweight(to_tsvector('simple', search_terms), 'B'))"
)


# The latest severity as a sort rank (migration 0011 repeats it in SQL); anything else ranks 0.
SEVERITY_RANKS = {"critical": 5, "high": 4, "medium": 3, "low": 2, "info": 1, "informational": 1}
NANOS_PER_USD = 1_000_000_000


def severity_rank(severity: str | None) -> int:
    """The sort rank of a severity label: critical highest, unknown or missing 0."""
    return SEVERITY_RANKS.get((severity or "").strip().lower(), 0)


def cost_nanos(cost_usd: Decimal | None) -> int:
    """A dollar amount in whole billionths (0 when unpriced)."""
    if cost_usd is None:
        return 0
    return int((Decimal(cost_usd) * NANOS_PER_USD).to_integral_value(ROUND_HALF_UP))


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC instants; always hands back timezone-aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite keeps text; a fixed naive UTC form keeps it sortable as a string.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pk() -> Any:
    return Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Incident(SQLModel, table=True):
    """An incident, keyed by the caller's incident_id; list columns are kept denormalised."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_updated", "updated_at", "incident_id"),
        Index("ix_incidents_created", "created_at", "incident_id"),
        # Keyset indexes of the other list sorts (migration 0011).
        Index("ix_incidents_severity", "severity_rank", "updated_at", "incident_id"),
        Index("ix_incidents_analyses", "analysis_count", "updated_at", "incident_id"),
        Index("ix_incidents_cost", "cost_nano_usd", "updated_at", "incident_id"),
        Index("ix_incidents_severity_created", "severity_rank", "created_at"),
        Index("ix_incidents_search", text(PG_SEARCH_VECTOR),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
        # Id-prefix lookups with LIKE under any collation (migration 0013).
        Index("ix_incidents_id_pattern", "incident_id",
              postgresql_ops={"incident_id": "text_pattern_ops"}).ddl_if(dialect="postgresql"),
    )

    id: int | None = _pk()
    incident_id: str = Field(sa_column=Column(String(256), nullable=False, unique=True))
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    initial_findings: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    analysis_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    latest_severity: str | None = Field(default=None, sa_column=Column(String(32)))
    latest_analysis_at: datetime | None = _utc(nullable=True)
    severity_rank: int = Field(default=0, sa_column=Column(
        Integer, nullable=False, default=0, server_default="0"))
    # The known cost of the incident's model calls in billionths of a dollar: an exact sort key.
    cost_nano_usd: int = Field(default=0, sa_column=Column(
        BigInteger, nullable=False, default=0, server_default="0"))
    # The data key (hex id) the text was sealed with; NULL for clear text (migration 0014).
    key_id: str | None = Field(default=None, sa_column=Column(String(32)))
    # Blind-index tokens of the sealed text's words (store.crypto.blind_index).
    search_terms: str = Field(default="", sa_column=Column(
        Text, nullable=False, default="", server_default=""))


class Analysis(SQLModel, table=True):
    """One analysis of an incident (append-only); id is also the vector id."""

    __tablename__ = "analyses"
    __table_args__ = (
        UniqueConstraint("incident_id", "content_hash", name="uq_analyses_incident_content"),
        Index("ix_analyses_incident", "incident_id", "created_at"),
        # The `model:` facet's probe per incident, answered from the index (migration 0013).
        Index("ix_analyses_incident_model", "incident_id", "model_name"),
    )

    id: int | None = _pk()
    analysis_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    incident_id: str = Field(sa_column=Column(
        String(256),
        ForeignKey("incidents.incident_id", name="fk_analyses_incident", ondelete="CASCADE"),
        nullable=False))
    model_name: str = Field(sa_column=Column(String(256), nullable=False))
    analysis_json: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    severity: str | None = Field(default=None, sa_column=Column(String(32)))
    created_at: datetime = _utc()
    key_id: str | None = Field(default=None, sa_column=Column(String(32)))


class RunMetadata(SQLModel, table=True):
    """One model call (chat or embedding): tokens, timing and cost priced at write time."""

    __tablename__ = "run_metadata"
    __table_args__ = (
        # Covering indexes (migration 0005): usage totals never touch the table rows.
        Index("ix_run_metadata_start", "start_time", "total_tokens", "cost_usd"),
        Index("ix_run_metadata_incident", "incident_id", "input_tokens", "output_tokens",
              "total_tokens", "cost_usd"),
        Index("ix_run_metadata_model", "model_name", "start_time", "input_tokens",
              "output_tokens", "total_tokens", "cost_usd"),
    )

    id: int | None = _pk()
    request_id: str | None = Field(default=None, sa_column=Column(String(256), index=True))
    kind: str = Field(default="chat", sa_column=Column(String(16), nullable=False))
    model_name: str = Field(sa_column=Column(String(256), nullable=False))
    incident_id: str | None = Field(default=None, sa_column=Column(String(256)))
    analysis_id: str | None = Field(default=None, sa_column=Column(
        String(64),
        ForeignKey("analyses.analysis_id", name="fk_run_metadata_analysis", ondelete="SET NULL")))
    input_tokens: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    output_tokens: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    total_tokens: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    start_time: datetime = _utc()
    end_time: datetime = _utc()
    duration_seconds: float = Field(default=0.0)
    cost_usd: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 10)))
    price_source: str | None = Field(default=None, sa_column=Column(String(256)))


class Embedding(SQLModel, table=True):
    """The vector of one analysis; the vector index is always rebuildable from these rows."""

    __tablename__ = "embeddings"
    __table_args__ = (Index("ix_embeddings_embedder", "embedder", "dimension"),)

    analysis_pk: int = Field(
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"),
            ForeignKey("analyses.id", name="fk_embeddings_analysis", ondelete="CASCADE"),
            primary_key=True, autoincrement=False,
        )
    )
    embedder: str = Field(sa_column=Column(String(128), nullable=False))
    dimension: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(default="ready", sa_column=Column(String(16), nullable=False, index=True))
    vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    updated_at: datetime = _utc()
    # Grows with every vector written or refilled: readers catch up on seq > what they hold.
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))


class IncidentIndicator(SQLModel, table=True):
    """An indicator of compromise found in an incident's text or in one of its analyses
    (migration 0012). The value is stored as found (canonical form, not hashed): it is evidence
    an analyst searches for and reads, and the incident row holds the same text in clear."""

    __tablename__ = "incident_indicators"
    __table_args__ = (Index("ix_incident_indicators_incident", "incident_id", "value"),)

    # The primary key leads with the value: exact lookups and "how many incidents hold it"
    # read the key only.
    value: str = Field(sa_column=Column(String(512), primary_key=True))
    incident_id: str = Field(sa_column=Column(
        String(256),
        ForeignKey("incidents.incident_id", name="fk_incident_indicators_incident",
                   ondelete="CASCADE"),
        primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))


class StoreInfo(SQLModel, table=True):
    """The store's one row of identity and counters (migration 0007 writes it at creation)."""

    __tablename__ = "store_info"

    id: int = Field(default=1, sa_column=Column(Integer, primary_key=True, autoincrement=False))
    # A uuid written once: index snapshots and cached results name the store they came from.
    store_id: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = _utc()
    # The last embeddings.seq handed out; taken under this row's lock, so seqs commit in order.
    embedding_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    pii_key_fingerprint: str | None = Field(default=None, sa_column=Column(String(64)))
    # Set while a reindex moves the vectors to another PII key; cleared when it completes.
    pii_key_reindexing: str | None = Field(default=None, sa_column=Column(String(64)))
    # Which blind-index key (SECRETS_DIR/keyring/index.hmac) made the search terms and content
    # hashes: a keyed digest, recorded on the key's first use (store.crypto.cipher).
    index_key_fingerprint: str | None = Field(default=None, sa_column=Column(String(64)))


class PurgeTombstone(SQLModel, table=True):
    """A content-free record of one purged incident: its id hashed, when, by whom, how much."""

    __tablename__ = "purge_tombstones"

    id: int | None = _pk()
    incident_hash: str = Field(sa_column=Column(String(64), nullable=False))
    purged_at: datetime = _utc()
    purged_by: str = Field(sa_column=Column(String(256), nullable=False))
    reason: str = Field(sa_column=Column(String(32), nullable=False))
    analyses: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    run_metadata: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    embeddings: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    backups: int = Field(default=0, sa_column=Column(Integer, nullable=False))


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel table class, typed (SQLModel does not declare __table__)."""
    return cast(Table, inspect(model).local_table)
