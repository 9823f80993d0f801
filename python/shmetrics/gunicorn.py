"""gunicorn server hooks (work in progress)."""
