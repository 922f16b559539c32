"""Orchardist: a self-hosted Apple MDM server."""

__version__ = "0.1.0"
