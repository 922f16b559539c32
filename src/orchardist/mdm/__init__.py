"""The MDM protocol core: check-in, commands, queue semantics, results → inventory.
Plists in, decisions out; no web framework, no database."""
