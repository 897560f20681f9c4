"""Escalation timers as rows: the table, and the writers every layer above uses to schedule
and cancel them. It sits below `incidents`, so a lifecycle change writes the timers it
implies and returns; the worker (escalation/step.py) fires them."""
