"""Hostile stored text: markup and terminal control sequences in every field a record shows."""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.tui.conftest import fixed_record

OSC_TITLE = "\x1b]0;title\x07"
CLEAR = "\x1b[2J"
OSC_LINK = "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\"
C1_CSI = "\x9b2J"
BIDI = "\u202egpj.exe"
MARKUP = "[bold red]x"
ACTION = "[@click=app.quit]y[/]"

HOSTILE_ID = f"[/]{CLEAR}"
HOSTILE_TITLE = f"{MARKUP} {ACTION} {OSC_TITLE}"
HOSTILE_MODEL = f"[/]{OSC_TITLE}"
HOSTILE_SEVERITY = "[/]"
# Characters a terminal obeys instead of printing (tab and newline are laid out, not written).
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_record(incident_id: str = HOSTILE_ID, hours_earlier: int = 0) -> dict[str, Any]:
    """A record like the phishing fixture whose every shown string is hostile."""
    record = copy.deepcopy(fixed_record(0, hours_earlier=hours_earlier))
    record["incident"].update({
        "incident_id": incident_id,
        "title": HOSTILE_TITLE + " phishing invoice macro",
        "description": f"{OSC_LINK} {C1_CSI} {BIDI} [/] invoice macro phishing",
        "initial_findings": f"{ACTION} {CLEAR}",
    })
    record["analysis"].update({
        "summary": f"{ACTION} {OSC_TITLE} phishing",
        "severity": HOSTILE_SEVERITY,
        MARKUP: {CLEAR: OSC_TITLE, "[/]": [ACTION, C1_CSI, BIDI]},
        "iocs": {"indicators": ["invoice-pay.example.net", f"[/]{OSC_TITLE}"]},
        "attack_techniques": [{"id": "T1566.001"}, {"id": f"{MARKUP}{CLEAR}"}],
    })
    record["model_name"] = HOSTILE_MODEL
    record["usage"]["request_id"] = f"req-{incident_id}-{hours_earlier}"
    return record
