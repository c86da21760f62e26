"""The analysis a chat model must return: a versioned Pydantic schema, validated by incidex."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_NAME = "incident_analysis"
# Bump on any change to the models below: it is part of every cache key and saved analysis.
SCHEMA_VERSION = "1"
TECHNIQUE_ID_PATTERN = r"^T\d{4}(\.\d{3})?$"

Severity = Literal["informational", "low", "medium", "high", "critical"]


class AttackTechnique(BaseModel):
    """One MITRE ATT&CK technique the incident shows."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=TECHNIQUE_ID_PATTERN, description="ATT&CK id, e.g. T1566.001")
    name: str = Field(description="The technique's name, e.g. Spearphishing Attachment")


class Iocs(BaseModel):
    """Indicators of compromise, by kind."""

    model_config = ConfigDict(extra="ignore")

    ip_addresses: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)
    file_hashes: list[str] = Field(default_factory=list)
    email_addresses: list[str] = Field(default_factory=list)
    other: list[str] = Field(default_factory=list)


class IncidentAnalysis(BaseModel):
    """What a model must answer about one security incident."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, description="Two to four sentences for a SOC analyst.")
    severity: Severity
    category: str = Field(min_length=1, description="e.g. phishing, ransomware, data exposure")
    attack_techniques: list[AttackTechnique]
    iocs: Iocs
    affected_assets: list[str] = Field(description="Hosts, accounts, applications, data sets.")
    recommendations: list[str] = Field(min_length=1, description="Next steps, most urgent first.")
    confidence: float = Field(ge=0.0, le=1.0, description="0 (a guess) to 1 (certain).")


def json_schema() -> dict[str, Any]:
    """The JSON schema sent to the model (no $defs: some local servers cannot resolve them)."""
    return _inline(IncidentAnalysis.model_json_schema())


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str):
                return resolve(definitions[reference.rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()
                    if not (key == "title" and isinstance(value, str))}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    inlined: dict[str, Any] = resolve(schema)
    return inlined


def validate_analysis(document: Any) -> IncidentAnalysis:
    """The reply as an IncidentAnalysis; raises ValidationError naming the first bad field."""
    return IncidentAnalysis.model_validate(document)


def first_problem(error: ValidationError) -> str:
    """The first validation problem as 'field: message' (and how many more there are)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "reply"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg'][0].lower()}{first['msg'][1:]}{more}"


def schema_key_order(schema_version: object) -> tuple[str, ...]:
    """The top-level keys of an analysis in the schema's field order (schema_version last), or ()
    when `schema_version` is not one this incidex wrote."""
    if schema_version != f"{SCHEMA_NAME}/{SCHEMA_VERSION}":
        return ()
    return (*IncidentAnalysis.model_fields, "schema_version")


def stored_form(analysis: IncidentAnalysis) -> dict[str, Any]:
    """The analysis as saved: the schema's fields plus the schema version."""
    document = analysis.model_dump(mode="json")
    document["schema_version"] = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"
    return document
