"""Who may call what: API keys, session tokens, per-key limits, rate limits and CORS.
The `access` CLI flags live here too (cli.py)."""
