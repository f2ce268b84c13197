"""Security events: what the server logs when it refuses a request (R23), and how it is read.

Rooms: `schema` (field and event names, the timestamp format: the one definition the writer,
the readers and the CLI columns share), `writer` (the server's event log, and what E9107 checks
its CloudWatch filter against), `records` (window, line parsing, read counters), `local`
(JSON-lines files with rotations and gzip, and following one live).
CloudWatch Logs is read by aws/logs.py; `monitoring` answers a query from either source.
Not to be confused with the admin audit trail (store: who changed keys).
"""
