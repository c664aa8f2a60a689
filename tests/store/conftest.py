"""Every test here runs against both backends, the embedded SQLite file and a real PostgreSQL:
the `store_url` and `store` fixtures of tests/conftest.py."""
