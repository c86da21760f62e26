"""One incident with every analysis and its usage, as a JSON or Markdown document."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from store import AnalysisRecord, IncidentDetail


def incident_document(detail: IncidentDetail, analyses: list[AnalysisRecord]) -> dict[str, Any]:
    """The incident's fields, each analysis with its usage, and the usage summed."""
    costs = [record.cost_usd for record in analyses if record.cost_usd is not None]
    return {
        "incident": {
            "incident_id": detail.incident_id,
            "title": detail.title,
            "description": detail.description,
            "initial_findings": detail.initial_findings,
            "created_at": detail.created_at.isoformat(),
            "updated_at": detail.updated_at.isoformat(),
        },
        "analyses": [_analysis(record) for record in analyses],
        "usage": {
            "analyses": len(analyses),
            "input_tokens": sum(record.input_tokens or 0 for record in analyses),
            "output_tokens": sum(record.output_tokens or 0 for record in analyses),
            # Unpriced analyses add nothing; None says no analysis had a price at all.
            "cost_usd": str(sum(costs, Decimal(0))) if costs else None,
        },
    }


def incident_json(detail: IncidentDetail, analyses: list[AnalysisRecord]) -> str:
    """The incident document as indented JSON."""
    return json.dumps(incident_document(detail, analyses), indent=2, ensure_ascii=False) + "\n"


def incident_markdown(detail: IncidentDetail, analyses: list[AnalysisRecord]) -> str:
    """The incident document as Markdown: fields as text, each analysis as a JSON block."""
    document = incident_document(detail, analyses)
    incident, usage = document["incident"], document["usage"]
    lines = [f"# {_one_line(detail.incident_id)}: {_one_line(detail.title)}", "",
             f"Created {incident['created_at']}, updated {incident['updated_at']}.", "",
             "## Description", "", detail.description or "(no description)", "",
             "## Initial findings", "", detail.initial_findings or "(none)", "",
             "## Usage", "",
             f"{usage['analyses']} analyses, {usage['input_tokens']} input and "
             f"{usage['output_tokens']} output tokens, cost "
             f"{'unknown' if usage['cost_usd'] is None else '$' + usage['cost_usd']}.", ""]
    for number, entry in enumerate(document["analyses"], start=1):
        body = json.dumps(entry["analysis"], indent=2, ensure_ascii=False)
        fence = _fence(body)
        lines += [f"## Analysis {number}: {_one_line(entry['model_name'])}, {entry['created_at']}",
                  "", f"Usage: {json.dumps(entry['usage'])}", "",
                  f"{fence}json", body, fence, ""]
    return "\n".join(lines)


def _analysis(record: AnalysisRecord) -> dict[str, Any]:
    return {
        "analysis_id": record.analysis_id,
        "model_name": record.model_name,
        "created_at": record.created_at.isoformat(),
        "severity": record.severity,
        "usage": {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
                  "cost_usd": None if record.cost_usd is None else str(record.cost_usd)},
        "analysis": record.analysis,
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fence(body: str) -> str:
    """A backtick fence longer than any run of backticks in body, so stored text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)
