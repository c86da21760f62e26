"""Print how many ~1,500-character incident texts per CPU-second PII scrubbing handles (one core).

Texts: consecutive VCDB summaries (../shared/data/vcdb_dev.jsonl) joined and cut to 1,500
characters, plus synthetic SOC notes full of PII and IOCs. Figures are medians of several runs,
beside a baseline (one e-mail regex pass) measured in the same run to show the machine's load.
Presidio's pattern recognisers are measured too when presidio-analyzer is importable.

    .venv/bin/python bench/pii_speed.py [--texts 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VCDB = REPO / "../shared/data/vcdb_dev.jsonl"
TEXT_CHARS = 1_500
BENCH_KEY = b"benchmark-only-key-not-for-production-use"

SOC_LINES = [
    "Alert {n}: user jane.doe{n}@acme.com clicked a link in a phish from billing@evil-domain.com.",
    "EDR on WS-{n:04d}.corp.local flagged C:\\Users\\jdoe{n}\\AppData\\Roaming\\upd.exe "
    "(sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855).",
    "Beacon to 185.220.101.{m} over 443 from 10.20.{m}.7; matches T1566.001 and CVE-2024-3400.",
    "Caller claimed to be from IT, rang +44 20 7946 0{m:03d} and asked for the MFA code.",
    "Dear Priya,\nplease rotate the key AKIAIOSFODNN7EXAMPLE and the password: Winter{n}!\n",
    "Spokeswoman Christen Engel said card 4111 1111 1111 1111 was blocked; Engel added no more.",
    "Reported by: Michael Wilson\nAssigned to: Ana Souza\nSeverity: high\n",
    "Slack token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp{n:04d} was posted in #general.",
    "Lateral movement via \\\\FILESRV01\\share to dc1.ad.acme.internal at "
    "2024-03-15 10:22:{m:02d}.",
]


def vcdb_texts(count: int) -> list[str]:
    """Consecutive VCDB summaries joined and cut into TEXT_CHARS pieces, or [] without the file."""
    if not VCDB.is_file():
        return []
    with VCDB.open(encoding="utf-8") as lines:
        joined = "\n\n".join(json.loads(line)["text"] for line in lines)
    pieces = [joined[i : i + TEXT_CHARS] for i in range(0, len(joined) - TEXT_CHARS, TEXT_CHARS)]
    return pieces[:count]


def soc_texts(count: int) -> list[str]:
    """Synthetic analyst notes of about TEXT_CHARS characters, dense with PII and IOCs."""
    rng = random.Random(7)
    texts = []
    for n in range(count):
        parts: list[str] = []
        while sum(map(len, parts)) < TEXT_CHARS:
            parts.append(rng.choice(SOC_LINES).format(n=n, m=rng.randrange(256)))
        texts.append(" ".join(parts)[:TEXT_CHARS])
    return texts


def rate(run: Callable[[str], object], texts: list[str], repeats: int) -> float:
    """Median texts per second of `run` over `texts`, after one warm-up call."""
    run(texts[0])
    speeds = []
    for _ in range(repeats):
        started = time.process_time()  # CPU time: other processes on the machine do not count
        for text in texts:
            run(text)
        speeds.append(len(texts) / (time.process_time() - started))
    return statistics.median(speeds)


def presidio_analyzers() -> dict[str, Callable[[str], object]]:
    """Presidio pattern recognisers without an NLP model, or nothing when it is not installed."""
    try:
        import tldextract
        import tldextract.tldextract as tld_module
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
    except ImportError:
        return {}
    # The default extractor would fetch the public suffix list over the network first.
    tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    engine = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])
    five = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS"]
    return {
        "presidio, 5 pattern recognisers": lambda text: engine.analyze(
            text, language="en", entities=five
        ),
        "presidio, all predefined recognisers": lambda text: engine.analyze(text, language="en"),
    }


def import_milliseconds() -> float:
    """Wall time of importing the scrubber in a fresh interpreter, less the bare start."""

    def timed(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        return time.perf_counter() - started

    bare = statistics.median(timed("pass") for _ in range(3))
    scrubber = statistics.median(timed("import store.privacy.scrubber") for _ in range(3))
    return 1000 * (scrubber - bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from store.privacy.scrubber import PiiScrubber

    corpora = {"vcdb": vcdb_texts(args.texts), "soc": soc_texts(args.texts)}
    if not corpora["vcdb"]:
        print(f"{VCDB} is absent: VCDB figures skipped")
    started = time.perf_counter()
    PiiScrubber(BENCH_KEY).scrub("Dear Ann, call +1 415 555 0132")  # loads names, phonenumbers
    first_scrub_ms = 1000 * (time.perf_counter() - started)
    print(f"import store.privacy.scrubber: {import_milliseconds():.0f} ms; "
          f"first scrub: {first_scrub_ms:.0f} ms")
    email = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
    runs: dict[str, Callable[[str], object]] = {
        "baseline: one e-mail regex pass": lambda text: email.findall(text),
        "incidex scrub": PiiScrubber(BENCH_KEY).scrub,
        "incidex scrub, strip_internal_hosts": PiiScrubber(
            BENCH_KEY, strip_internal_hosts=True
        ).scrub,
    }
    runs.update(presidio_analyzers())
    if len(runs) == 3:
        print("presidio-analyzer is not installed here: its figures skipped")
    print(f"{'pipeline':40} " + " ".join(f"{name + ' texts/s':>15}" for name in corpora))
    for label, run in runs.items():
        figures = [
            f"{rate(run, texts, args.repeats):15.0f}" if texts else f"{'-':>15}"
            for texts in corpora.values()
        ]
        print(f"{label:40} " + " ".join(figures))


if __name__ == "__main__":
    main()
