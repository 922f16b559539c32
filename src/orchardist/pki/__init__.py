"""Certificate authority and CMS: pure crypto, no web framework, no database."""

from orchardist.pki import asn1_limits as _asn1_limits  # noqa: F401  (bounds asn1crypto's OIDs)
