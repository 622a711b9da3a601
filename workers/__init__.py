"""Celery workers: projection catch-up and periodic safety nets."""
