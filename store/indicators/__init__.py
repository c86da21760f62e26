"""Indicators of compromise: extraction from free text and analyses (no I/O).

Invariants: extraction is a pure function of the text; every indicator has one canonical form
(lower-case values; CVE and ATT&CK ids upper-case; IPv6 compressed; defanged forms refanged),
so an indicator typed in a query equals the one stored from an incident.
"""

from store.indicators.extract import (
    KINDS,
    Indicator,
    indicator_of,
    indicators_in,
    indicators_in_all,
    indicators_of_incident,
    json_strings,
)

__all__ = ["KINDS", "Indicator", "indicator_of", "indicators_in", "indicators_in_all",
           "indicators_of_incident", "json_strings"]
