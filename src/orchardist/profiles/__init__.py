"""Configuration profiles: checked against Apple's schema, built from spec files, signed,
and encrypted per device. A protocol core: no web framework, no database."""
