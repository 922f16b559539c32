"""`/api/v1`: JSON over HTTPS with bearer tokens; OpenAPI at /api/v1/openapi.json."""
