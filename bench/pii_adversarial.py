"""Print how long a 1,000,000-character adversarial record takes to scrub and to save.

The record's description is built to make regular expressions backtrack: long digit runs,
digit runs with separators, repeated name-like words, private-key headers with no end, and
chains of internal host suffixes. Beside it, in the same run, an ordinary record of the same
size (SOC prose) is the baseline that shows the machine's load. Figures are medians.

    .venv/bin/python bench/pii_adversarial.py [--chars 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from store.privacy.scrubber import PiiScrubber  # noqa: E402

BENCH_KEY = b"benchmark-only-key-not-for-production-use"
PROSE = ("Alert: user jane.doe@acme.com opened an invoice macro; beacon to 185.220.101.4 from "
         "WS-0042.corp.local, matches T1566.001. Reported by: Michael Wilson. ")


def _name(i: int) -> str:
    """A distinct capitalised made-up word for each i (many different surnames)."""
    return chr(65 + i % 26) + "".join(chr(97 + (i // 26**k) % 26) for k in range(1, 6))


def adversarial_families(chars: int) -> dict[str, str]:
    """Each hostile shape at full size on its own."""
    return {
        "digit run": "7" * chars,
        "digit run, letter at the end": "7" * (chars - 1) + "x",
        "digits and separators": ("1" * 40 + "-") * (chars // 41),
        "name-like words": "John Smith " * (chars // 11),
        "many titled names": "".join(f"Mr {_name(i)} {_name(i + 7)} met. "
                                      for i in range(chars // 20)),
        "key headers, no end": "-----BEGIN PRIVATE KEY-----\n" * (chars // 28),
        "host suffix chain": "-a.corp.-" * (chars // 9),
        "spaced digits": "1 2 3 4 5 6 7 8 9 " * (chars // 18),
        "keys and colons": "password: " * (chars // 10),
    }


def adversarial_text(chars: int) -> str:
    """All the shapes in one text of `chars` characters."""
    families = adversarial_families(chars // 9)
    return "".join(families.values())[:chars].ljust(chars, "7")


def timed(action: object, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def save_seconds(description: str, repeats: int) -> float:
    """Median seconds for Store.save_analysis of one record with this description."""
    from store.schemas import AnalysisIn
    from store.settings import Settings
    from store.store import Store

    runs = []
    for attempt in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            settings = Settings(data_dir=Path(scratch) / "data",
                                secrets_dir=Path(scratch) / "secrets")
            with Store.open(settings) as store:
                store.prepare_text_search()
                record = AnalysisIn.model_validate({
                    "incident": {"incident_id": f"ADV-{attempt}", "title": "adversarial",
                                 "description": description},
                    "analysis": {"summary": "stress"}, "model_name": "gpt-4o-mini"})
                started = time.perf_counter()
                result = store.save_analysis(record)
                runs.append(time.perf_counter() - started)
                assert result.status == "saved", result
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scrubber = PiiScrubber(BENCH_KEY, strip_internal_hosts=True)
    prose = (PROSE * (args.chars // len(PROSE) + 1))[: args.chars]
    print(f"{args.chars:,} characters, median of {args.repeats}")
    baseline = timed(lambda: scrubber.scrub(prose), args.repeats)
    print(f"  scrub, ordinary SOC prose (baseline):  {baseline:6.2f} s")
    for name, text in adversarial_families(args.chars).items():
        seconds = timed(lambda text=text: scrubber.scrub(text), args.repeats)
        print(f"  scrub, {name + ':':32s}{seconds:6.2f} s")
    mixed = adversarial_text(args.chars)
    print(f"  scrub, all shapes in one text:         "
          f"{timed(lambda: scrubber.scrub(mixed), args.repeats):6.2f} s")
    print(f"  save, ordinary record (baseline):      {save_seconds(prose, args.repeats):6.2f} s")
    print(f"  save, adversarial record:              {save_seconds(mixed, args.repeats):6.2f} s")


if __name__ == "__main__":
    main()
