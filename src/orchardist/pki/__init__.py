"""Certificate authority and CMS: pure crypto, no web framework, no database."""
