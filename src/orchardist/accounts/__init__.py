"""Who may use Orchardist, and what they may do: local console accounts with Argon2
passwords, directory sign-in with group → role mapping, server-side console sessions, the
sign-in throttle, and the permission table the console and the API share.

- `permissions`: roles, permissions, `Gate` (the one check, with the audit seam).
- `passwords`: Argon2id hashing and the password rules.
- `lockout`: failures per account and per client address.
- `sessions`: server-side sessions with idle and absolute timeouts and a CSRF token.
- `service`: `Accounts` (the `orchardist admin` commands and signing in).

A core: it imports neither the web framework nor the database (import-linter checks).
"""
