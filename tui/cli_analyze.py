"""`incidex analyze` and `incidex incident add`: new analyses from the chat model, headless."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import click

from store import RecordError, Settings, StoreError
from tui.cli_search import _open, _progress
from tui.exit_codes import ExitCode
from tui.output import say, say_json
from widgets.format import printable

if TYPE_CHECKING:
    from store import AnalysisOutcome, BatchReport, PreparedAnalysis


@click.command()
@click.argument("incident_ids", nargs=-1, metavar="[INCIDENT_ID]...")
@click.option("--unanalysed", is_flag=True,
              help="Analyse the incidents that have no analysis yet (oldest first).")
@click.option("--limit", type=click.IntRange(1), help="With --unanalysed: at most N incidents.")
@click.option("--model", "-m", envvar="INCIDEX_CHAT_MODEL", show_envvar=True,
              help="Chat model. [default: gpt-4o-mini]")
@click.option("--refresh", is_flag=True, help="Ask the model even when the cache has an answer.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Calls in flight at once.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), metavar="USD",
              help="Start no call that could take the spend past USD (needs a priced model).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON line per incident on stdout, with the analysis.")
@click.pass_obj
def analyze(settings: Settings, incident_ids: tuple[str, ...], unanalysed: bool,
            limit: int | None, model: str | None, refresh: bool, concurrency: int,
            budget: float | None, as_json: bool) -> None:
    """Run new analyses of stored incidents with the chat model, grounded in similar
    past incidents; each is validated, cached, metered and saved like `--save`.

    \b
    Examples:
      incidex analyze INC-2026-0001
      incidex analyze INC-1 INC-2 --model gpt-4o --json
      incidex incident add new-incidents.jsonl
      incidex analyze --unanalysed --limit 50 --concurrency 4 --budget 0.50
    \b
    The server is INCIDEX_OPENAI_BASE_URL (OpenAI, vLLM, Ollama, LM Studio) with
    INCIDEX_OPENAI_API_KEY; INCIDEX_ANALYZE_OUTPUT_MODE picks json_schema,
    function_calling or json_mode. Exit 1 when an analysis failed or the budget
    stopped the run.
    """
    if bool(incident_ids) == unanalysed:
        raise click.UsageError("give INCIDENT_ID... or --unanalysed")
    if limit is not None and not unanalysed:
        raise click.UsageError("--limit goes with --unanalysed")
    with _open(settings) as store:
        ids = list(incident_ids) if incident_ids else store.unanalysed_incident_ids(limit)
        if not ids:
            say("incidex: no incident is waiting for an analysis "
                       "(add some with `incidex incident add FILE`)", err=True)
            return
        runner = store.analysis_runner(model)
        prepared, failed = _prepare(runner, ids, as_json)
        if prepared:
            _say_estimate(prepared, runner.model, budget)
            report = _run(runner, prepared, concurrency, budget, refresh, as_json)
            failed += len(report.failures)
            _say_summary(report, budget)
            if report.budget_stopped:
                failed += len(report.not_started)
                if as_json:
                    for incident_id in report.not_started:
                        say_json({"incident_id": incident_id,
                                  "status": "not_started",
                                  "error": "the budget was reached"})
    sys.exit(int(ExitCode.RECORDS_FAILED if failed else ExitCode.OK))


def _prepare(runner: Any, ids: list[str], as_json: bool
             ) -> tuple[list[PreparedAnalysis], int]:
    """Prompts and estimates (similar search for each incident), with a progress bar."""
    prepared: list[PreparedAnalysis] = []
    failed = 0
    unique = list(dict.fromkeys(ids))
    progress = _progress("prompts")
    with progress:
        task = progress.add_task("prompts", total=len(unique))
        for incident_id in unique:
            progress.advance(task)
            try:
                item = runner.prepare(incident_id)
            except StoreError as error:
                failed += 1
                progress.console.print(printable(f"incidex: {error}"), markup=False,
                                       highlight=False, soft_wrap=True)
                if as_json:
                    say_json({"incident_id": incident_id, "status": "error",
                              "error": str(error)})
                continue
            for warning in item.warnings:
                progress.console.print(printable(f"incidex: warning: {warning}"), markup=False,
                                       highlight=False, soft_wrap=True)
            prepared.append(item)
    return prepared, failed


def _say_estimate(prepared: list[PreparedAnalysis], model: str, budget: float | None) -> None:
    input_tokens = sum(item.estimate.input_tokens for item in prepared)
    output_tokens = sum(item.estimate.output_tokens for item in prepared)
    costs = [item.estimate.cost_usd for item in prepared]
    cost = ("no price known for this model" if any(c is None for c in costs)
            else f"about {_usd(sum(c for c in costs if c is not None))}")
    say(f"incidex: {len(prepared):,} incident(s) with {model}: about {input_tokens:,} "
               f"input and {output_tokens:,} output tokens, {cost} "
               "(estimated from the prompt length; cache hits cost nothing)", err=True)
    if budget is not None and all(c is not None for c in costs) and \
            sum(c for c in costs if c is not None) > Decimal(str(budget)):
        say(f"incidex: the estimate is over the budget of ${budget:g}: "
                   "the run will stop before the end", err=True)


def _run(runner: Any, prepared: list[PreparedAnalysis], concurrency: int, budget: float | None,
         refresh: bool, as_json: bool) -> BatchReport:
    progress = _progress("analyses")
    with progress:
        task = progress.add_task("analyses", total=len(prepared))

        def done(incident_id: str, outcome: AnalysisOutcome | None, error: str | None) -> None:
            progress.advance(task)
            if error is not None:
                progress.console.print(printable(f"incidex: {error}"), markup=False,
                                       highlight=False, soft_wrap=True)
                if as_json:
                    say_json({"incident_id": incident_id, "status": "error",
                              "error": error})
                return
            assert outcome is not None
            for warning in outcome.warnings:
                progress.console.print(printable(f"incidex: warning: {warning}"), markup=False,
                                       highlight=False, soft_wrap=True)
            say_json(_outcome_json(outcome)) if as_json else say(_outcome_line(outcome))

        report: BatchReport = runner.run_batch(
            prepared, concurrency=concurrency, refresh=refresh, on_done=done,
            budget_usd=None if budget is None else Decimal(str(budget)))
    return report


def _outcome_json(outcome: AnalysisOutcome) -> dict[str, Any]:
    return {
        "incident_id": outcome.incident_id, "status": outcome.status,
        "analysis_id": outcome.analysis_id, "model_name": outcome.model,
        "from_cache": outcome.from_cache, "input_tokens": outcome.input_tokens,
        "output_tokens": outcome.output_tokens,
        "cost_usd": None if outcome.cost_usd is None else str(outcome.cost_usd),
        "request_id": outcome.request_id, "similar_incidents": outcome.similar_ids,
        "analysis": outcome.analysis,
    }


def _outcome_line(outcome: AnalysisOutcome) -> str:
    where = "cache hit" if outcome.from_cache else (
        f"{outcome.input_tokens + outcome.output_tokens:,} tokens, "
        + ("no price" if outcome.cost_usd is None else _usd(outcome.cost_usd)))
    severity = outcome.analysis.get("severity", "-")
    summary = " ".join(str(outcome.analysis.get("summary", "")).split())
    summary = summary if len(summary) <= 80 else summary[:77] + "..."
    return (f"{outcome.incident_id}  {outcome.status}  {outcome.analysis_id}  {severity}  "
            f"({where})  {summary}")


def _say_summary(report: BatchReport, budget: float | None) -> None:
    hits = sum(1 for outcome in report.outcomes if outcome.from_cache)
    parts = [f"{len(report.outcomes):,} analysed ({hits:,} from the cache)"]
    if report.failures:
        parts.append(f"{len(report.failures):,} failed")
    parts.append(f"{_usd(report.spent_usd)} spent")
    say("incidex: " + ", ".join(parts), err=True)
    if report.budget_stopped:
        say(f"incidex: budget of ${budget:g} reached: {len(report.not_started):,} "
                   f"incident(s) not started ({', '.join(report.not_started[:5])}"
                   f"{', ...' if len(report.not_started) > 5 else ''})", err=True)


def _usd(amount: Decimal | int) -> str:
    """Dollars with cents, or with six decimals for the fractions of a cent one call costs."""
    return f"${amount:,.4f}" if amount == 0 or amount >= Decimal("0.01") else f"${amount:.6f}"


@click.group()
def incident() -> None:
    """Register incidents that have no analysis yet (for `incidex analyze --unanalysed`)."""


@incident.command()
@click.argument("source", metavar="FILE", type=click.File("rb"))
@click.pass_obj
def add(settings: Settings, source: IO[bytes]) -> None:
    """Add incidents from FILE ('-' for stdin): JSON objects with incident_id, title,
    description and initial_findings, as one document, an array or JSON Lines.

    \b
    Example: siem-export --json | incidex incident add -
    Known incidents are left unchanged. One JSON line per record on stdout.
    """
    from pydantic import ValidationError

    from store import IncidentIn, read_records

    failed = 0
    from store import Store

    with Store.open(settings) as store:  # registering incidents may create the store
        for raw in read_records(source):
            try:
                if raw.error is not None:
                    raise raw.error
                incident = _validated(raw.label, raw.value, IncidentIn, ValidationError)
                [new] = store.register_incidents([incident])
            except RecordError as error:
                failed += 1
                say(f"incidex: {error}", err=True)
                say_json({"record": raw.label, "status": "error",
                          "error": str(error)})
                continue
            say_json({"record": raw.label, "incident_id": incident.incident_id,
                      "status": "added" if new else "known"})
    sys.exit(int(ExitCode.RECORDS_FAILED if failed else ExitCode.OK))


def _validated(label: str, value: Any, model: Any, validation_error: type[Exception]) -> Any:
    if not isinstance(value, dict):
        raise RecordError(label, "", "expected a JSON object")
    try:
        return model.model_validate(value)
    except validation_error as error:
        first = error.errors()[0]  # type: ignore[attr-defined]
        field_name = ".".join(str(part) for part in first["loc"]) or "record"
        message = "is required" if first["type"] == "missing" else first["msg"]
        raise RecordError(label, field_name, message) from None

