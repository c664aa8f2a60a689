"""PiAPI provider."""
