"""AWS fixtures (moto server mode) live in tests/conftest.py: the audit tests use them too."""
