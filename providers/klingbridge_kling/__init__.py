"""Kling provider."""
