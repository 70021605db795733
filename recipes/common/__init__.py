"""Plumbing shared by the recipes' data scripts (standard library only)."""
