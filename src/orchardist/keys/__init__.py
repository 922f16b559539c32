"""The master key that seals secrets at rest (tokens, profile bodies, secret-bearing
commands): where it comes from (`sources`) and how it seals (`master`). A core: no web
framework, no database."""
