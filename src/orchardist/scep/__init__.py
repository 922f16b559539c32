"""SCEP (RFC 8894): messages, the CA service, and the requester's side. No web framework."""
