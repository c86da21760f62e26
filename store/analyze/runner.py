"""The analysis runner: prompt from an incident and its similar past incidents, one cached and
metered chat call, validation by incidex's schema, and the save path `incidex --save` uses."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from store.analyze.client import AnalyzeError, ChatCall, ChatClient, RetryPolicy
from store.analyze.metering import call_cost, calls_cost
from store.analyze.prompt import PROMPT_VERSION, Prompt, SimilarCase, build_prompt, repair_message
from store.analyze.redact import Redaction
from store.analyze.schema import SCHEMA_VERSION, first_problem, stored_form, validate_analysis
from store.cache import Savings, cached
from store.errors import StoreError
from store.ingest.pricing import price_call
from store.ingest.records import canonical_json, utc_now
from store.schemas import AnalysisIn, IncidentDetail, IncidentIn, UsageIn
from store.vectors.text import embedding_text, techniques_of

if TYPE_CHECKING:
    from store.store import Store

log = logging.getLogger("incidex.analyze")
ANALYSIS_NAMESPACE = "analysis"


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a call is expected to use, from the prompt's length, before it is made."""

    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class PreparedAnalysis:
    """Everything one call needs, built from the store without calling the model."""

    incident: IncidentIn
    model: str
    prompt: Prompt
    redaction: Redaction
    content_hash: str
    estimate: Estimate
    warnings: tuple[str, ...] = ()

    @property
    def incident_id(self) -> str:
        """The incident analysed."""
        return self.incident.incident_id


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    """A new (or already saved) analysis of one incident and what producing it cost."""

    incident_id: str
    model: str
    status: Literal["saved", "duplicate"]
    analysis_id: str
    analysis: dict[str, Any]
    from_cache: bool
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    request_id: str | None
    similar_ids: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BatchReport:
    """How a batch went: outcomes, one-line failures, spend and whether the budget stopped it."""

    outcomes: list[AnalysisOutcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    spent_usd: Decimal = Decimal(0)
    budget_stopped: bool = False
    not_started: list[str] = field(default_factory=list)


_fresh = threading.local()


class AnalysisRunner:
    """Runs analyses for one model against the store's OpenAI-compatible chat API."""

    def __init__(self, store: Store, model: str | None = None,
                 retry: RetryPolicy | None = None) -> None:
        settings = store.settings
        self.store = store
        self.settings = settings
        self.model = model or settings.chat_model
        self.client = ChatClient(
            self.model, base_url=settings.openai_base_url, api_key=settings.openai_api_key,
            mode=settings.analyze_output_mode, timeout_seconds=settings.analyze_timeout_seconds,
            max_output_tokens=settings.analyze_max_output_tokens,
            retry=retry or RetryPolicy(settings.analyze_rate_limit_attempts,
                                       settings.analyze_max_retry_wait_seconds))
        self._ask: Callable[..., dict[str, Any]] = cached(
            lambda: store.cache, namespace=ANALYSIS_NAMESPACE,
            version=f"prompt-{PROMPT_VERSION}.schema-{SCHEMA_VERSION}", model=self.model,
            savings=_savings, ignore=("prompt",),
        )(self._ask_model)

    # Preparing -----------------------------------------------------------------------------

    def prepare(self, incident_id: str) -> PreparedAnalysis:
        """The prompt and estimate for one stored incident; StoreError if there is none."""
        detail = self.store.incident(incident_id)
        if detail is None:
            raise AnalyzeError(f"incident {incident_id!r}: no such incident in this store")
        if detail.unreadable:
            raise AnalyzeError(f"incident {incident_id!r}: {detail.unreadable}")
        scrubber = self.store.vectors.scrubber if self.settings.analyze_strip_pii else None
        redaction = Redaction(scrubber)
        cases, warnings = self._similar_cases(detail)
        prompt = build_prompt(detail.incident_id, detail.title, detail.description,
                              detail.initial_findings, cases, redaction)
        incident = IncidentIn(incident_id=detail.incident_id, title=detail.title,
                              description=detail.description,
                              initial_findings=detail.initial_findings)
        content_hash = hashlib.sha256(canonical_json(incident.model_dump()).encode()).hexdigest()
        return PreparedAnalysis(incident, self.model, prompt, redaction, content_hash,
                                self._estimate(prompt), tuple(warnings))

    def _similar_cases(self, detail: IncidentDetail) -> tuple[list[SimilarCase], list[str]]:
        k = self.settings.analyze_similar_k
        text = embedding_text(detail.title, detail.description, detail.initial_findings, {})
        if k == 0 or not text.strip():
            return [], []
        try:
            # The incident's own text, not its latest analysis: the context must not depend
            # on what an earlier model said about it.
            hits = self.store.similar(text=text, k=k + 1).hits
        except StoreError as error:
            return [], [f"incident {detail.incident_id!r}: no similar incidents as context "
                        f"({error})"]
        cases = []
        for hit in [hit for hit in hits if hit.incident_id != detail.incident_id][:k]:
            analyses = self.store.analyses(hit.incident_id)
            chosen = next((a for a in analyses if a.analysis_id == hit.analysis_id),
                          analyses[0] if analyses else None)
            document = chosen.analysis if chosen is not None else {}
            summary = document.get("summary")
            cases.append(SimilarCase(hit.incident_id, hit.title, hit.score, hit.severity,
                                     summary if isinstance(summary, str) else "",
                                     sorted(techniques_of(document))))
        return cases, []

    def _estimate(self, prompt: Prompt) -> Estimate:
        output = min(self.settings.analyze_estimated_output_tokens,
                     self.settings.analyze_max_output_tokens)
        price = price_call(self.model, prompt.estimated_input_tokens, output, utc_now())
        return Estimate(prompt.estimated_input_tokens, output, price.cost_usd)

    # Running -------------------------------------------------------------------------------

    def run(self, incident_id: str, *, refresh: bool = False) -> AnalysisOutcome:
        """Prepare and run one analysis; AnalyzeError (one line) when it fails."""
        return self.execute(self.prepare(incident_id), refresh=refresh)

    def execute(self, prepared: PreparedAnalysis, *, refresh: bool = False) -> AnalysisOutcome:
        """Ask the model (or the cache), validate, and save; nothing is saved on a failure."""
        label = f"incident {prepared.incident_id!r}"
        _fresh.ran = False
        try:
            reply = self._ask(prepared.content_hash, prepared.prompt.similar_ids,
                              prepared.prompt.digest, prepared.prompt, cache_refresh=refresh)
        except AnalyzeError as error:
            self.store.record_calls(error.calls, prepared.incident_id, None)
            raise AnalyzeError(f"{label}: {error}", error.calls) from None
        fresh = bool(getattr(_fresh, "ran", False))
        calls = [ChatCall.from_json(data) for data in reply["calls"]]
        analysis = prepared.redaction.restore(reply["analysis"])
        return self._save(prepared, analysis, calls if fresh else [], label)

    def _save(self, prepared: PreparedAnalysis, analysis: dict[str, Any],
              calls: list[ChatCall], label: str) -> AnalysisOutcome:
        warnings = list(prepared.warnings)
        final = calls[-1] if calls else None
        usage = None
        if final is not None and final.input_tokens is not None:
            usage = UsageIn(input_tokens=final.input_tokens, output_tokens=final.output_tokens or 0,
                            start_time=final.start_time, end_time=final.end_time,
                            request_id=final.request_id, model_name=final.model_name)
        elif final is not None:
            warnings.append(f"{label}: the reply carried no token usage; its call is recorded "
                            "with 0 tokens and no price")
        record = AnalysisIn(incident=prepared.incident, analysis=analysis, model_name=self.model,
                            usage=usage)
        result = self.store.save_analysis(record, label="analysis")
        if result.status == "error" or result.analysis_id is None:
            self.store.record_calls(calls, prepared.incident_id, None)
            raise AnalyzeError(f"{label}: not saved: {result.error}", calls)
        # Calls the save did not write: earlier attempts, a reply without usage, and every
        # call when the same analysis was already saved (the model repeated itself).
        written_with_save = result.status == "saved" and usage is not None
        unwritten = calls[:-1] if written_with_save else calls
        self.store.record_calls(unwritten, prepared.incident_id, result.analysis_id)
        return AnalysisOutcome(
            incident_id=prepared.incident_id, model=self.model, status=result.status,
            analysis_id=result.analysis_id, analysis=analysis, from_cache=not calls,
            input_tokens=sum(call.input_tokens or 0 for call in calls),
            output_tokens=sum(call.output_tokens or 0 for call in calls),
            cost_usd=calls_cost(calls) if calls else Decimal(0),
            request_id=final.request_id if final is not None else None,
            similar_ids=list(prepared.prompt.similar_ids), warnings=warnings,
        )

    def _ask_model(self, content_hash: str, similar_ids: list[str], prompt_digest: str,
                   prompt: Prompt) -> dict[str, Any]:
        """The validated reply (pseudonyms kept) and its calls; cached by every argument but
        the prompt itself, whose digest stands for it."""
        _fresh.ran = True
        calls = [self.client.complete(prompt.messages())]
        analysis, problem = _checked(calls[0], self.settings.analyze_max_output_tokens)
        if problem is not None and calls[0].finish_reason != "length":
            repair = repair_message(calls[0].text, problem)
            calls.append(self.client.complete(prompt.messages(repair=repair)))
            analysis, problem = _checked(calls[-1], self.settings.analyze_max_output_tokens)
            if problem is not None:
                problem += " (after one repair attempt)"
        if analysis is None:
            raise AnalyzeError(f"{self.model}: {problem}", calls)
        return {"analysis": analysis, "calls": [call.as_json() for call in calls]}

    # Batches -------------------------------------------------------------------------------

    def run_batch(self, prepared: Sequence[PreparedAnalysis], *, concurrency: int = 1,
                  budget_usd: Decimal | None = None, refresh: bool = False,
                  on_done: Callable[[str, AnalysisOutcome | None, str | None], None] | None
                  = None, stop: threading.Event | None = None) -> BatchReport:
        """Run analyses C at a time; with a budget, none starts that could pass it.

        A call is started only if what was spent, plus the estimates of the calls in flight,
        plus its own estimate stay within the budget; actual costs replace estimates as
        calls end. on_done(incident_id, outcome, error) is called from this thread.
        """
        if budget_usd is not None and any(p.estimate.cost_usd is None for p in prepared):
            raise StoreError(f"no price is known for {self.model!r}, so a budget cannot be "
                             "kept: run without --budget")
        report = BatchReport()
        waiting = deque(prepared)
        running: dict[Future[AnalysisOutcome], PreparedAnalysis] = {}
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            while waiting or running:
                while waiting and len(running) < concurrency and not (stop and stop.is_set()):
                    if budget_usd is not None and not self._affordable(
                            report.spent_usd, running.values(), waiting[0], budget_usd):
                        # Calls in flight may cost less than estimated: decide when they end.
                        report.budget_stopped = not running
                        break
                    item = waiting.popleft()
                    running[pool.submit(self.execute, item, refresh=refresh)] = item
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self._collect(future, running.pop(future), report, on_done)
        report.not_started = [item.incident_id for item in waiting]
        return report

    @staticmethod
    def _affordable(spent: Decimal, running: Any, candidate: PreparedAnalysis,
                    budget: Decimal) -> bool:
        reserved = sum((item.estimate.cost_usd or Decimal(0) for item in running), Decimal(0))
        return spent + reserved + (candidate.estimate.cost_usd or Decimal(0)) <= budget

    @staticmethod
    def _collect(future: Future[AnalysisOutcome], item: PreparedAnalysis, report: BatchReport,
                 on_done: Callable[[str, AnalysisOutcome | None, str | None], None] | None
                 ) -> None:
        try:
            outcome = future.result()
        except StoreError as error:
            billed = error.calls if isinstance(error, AnalyzeError) else []
            report.spent_usd += calls_cost(billed)
            report.failures.append(str(error))
            if on_done is not None:
                on_done(item.incident_id, None, str(error))
            return
        report.spent_usd += outcome.cost_usd or Decimal(0)
        report.outcomes.append(outcome)
        if on_done is not None:
            on_done(item.incident_id, outcome, None)


def _checked(call: ChatCall, max_output_tokens: int) -> tuple[dict[str, Any] | None, str | None]:
    """(the stored form of a valid reply, None) or (None, the one-line problem)."""
    if call.finish_reason == "length":
        return None, (f"the reply was cut at the output limit of {max_output_tokens} tokens "
                      "(finish_reason length; INCIDEX_ANALYZE_MAX_OUTPUT_TOKENS)")
    if call.document is None:
        start = " ".join(call.text.split())[:60]
        return None, f"the reply is not JSON (it starts {start!r})"
    try:
        return stored_form(validate_analysis(call.document)), None
    except ValidationError as error:
        return None, f"the reply does not follow the analysis schema: {first_problem(error)}"


def _savings(reply: dict[str, Any]) -> Savings:
    """What a cached reply cost to make: every call behind it, repairs included."""
    calls = [ChatCall.from_json(data) for data in reply["calls"]]
    tokens = sum((call.input_tokens or 0) + (call.output_tokens or 0) for call in calls)
    return Savings(tokens=tokens, cost_usd=sum((call_cost(c) or Decimal(0) for c in calls),
                                                Decimal(0)))

