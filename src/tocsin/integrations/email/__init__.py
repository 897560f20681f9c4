"""The email integration: mail to <integration key>@<domain> becomes an alert.

`message` turns one email into a normalised alert (pure), `addresses` finds the integration a
recipient names, `threads` remembers which Message-ID got which dedup key so replies join
their incident, and `listener` is the SMTP server that puts them together.
"""
