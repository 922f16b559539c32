"""The HTTP surfaces: the only package that imports the web framework."""
