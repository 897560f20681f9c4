"""Moving in from PagerDuty, Opsgenie and Grafana OnCall: read the source, convert, report, apply.

Each source module turns the vendor's REST answers (fetched live or read from a saved export)
into the neutral `source.Export`; `apply.py` writes that into Tocsin idempotently, keeping each
object's source id in the import ledger; `compare.py` checks imported schedules against the
source's own rendered final schedule.
"""
