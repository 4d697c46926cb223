"""Data protection: retention, erasure and access (README "Data protection").

- :mod:`.settings` — how long what is kept (``retention:`` in buergerchat.yaml,
  per department in departments.yaml) and the Art. 13 notice (``privacy:``);
- :mod:`.purge` — erasing one case everywhere: Synapse room, media, ghost, the
  team notices, the bridge's rows and files (each bot adds its part);
- :mod:`.service` — the durable jobs (erase, expire, export, the daily sweep),
  the audit and what the CLI and ``!erase`` call.
"""
