"""The Date header gunicorn sends, formatted once per second, reads as gunicorn's own."""

from __future__ import annotations

import time

from service.gunicorn_app import GUNICORN_HTTP_DATE, http_date


def _gunicorn(timestamp: float) -> str:
    assert GUNICORN_HTTP_DATE is not http_date  # the comparison is with gunicorn's own
    return GUNICORN_HTTP_DATE(timestamp)


def test_the_cached_date_is_the_current_second_as_gunicorn_formats_it() -> None:
    for _ in range(3):
        before = time.time()
        text = http_date()
        after = time.time()
        assert text in {_gunicorn(before), _gunicorn(after)}
        time.sleep(0.4)  # across a second's boundary at least once


def test_an_explicit_timestamp_is_formatted_as_gunicorn_does() -> None:
    assert http_date(0.0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(1_800_000_000.9) == _gunicorn(1_800_000_000.9)
