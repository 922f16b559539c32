"""APNs for MDM: the push certificate, and (later) the HTTP/2 sender. No web framework."""
