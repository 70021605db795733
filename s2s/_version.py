"""The version of s2s (the distribution's, pyproject.toml)."""

__version__ = "0.1.0"
