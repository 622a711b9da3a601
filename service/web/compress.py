"""gzip for text answers (pages, scripts, stylesheets, JSON) when the client accepts it.

Only GET and HEAD answers of 200 are compressed (a command's answer, which the idempotency
store keeps and replays, is left alone). A static file is compressed once per ETag and kept.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

TYPES = (
    "text/html",
    "text/css",
    "text/csv",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/problem+json",
    "image/svg+xml",
)
MIN_BYTES = 500
LEVEL = 6


def init_app(app: Flask) -> None:
    """Compress the app's text answers."""
    app.after_request(compressed)


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


_STATIC: dict[str, bytes] = {}  # a static file's ETag -> its compressed body


def _static_gzip(etag: str, body: bytes) -> bytes:
    """The compressed body of a static file version (the key: its ETag)."""
    found = _STATIC.get(etag)
    if found is None:
        if len(_STATIC) >= 64:
            _STATIC.clear()
        found = _STATIC[etag] = gzip.compress(body, LEVEL, mtime=0)
    return found


def compressed(response: Response) -> Response:
    """`response` gzip-encoded, when it is a text answer worth it and the client accepts it."""
    response.vary.add("Accept-Encoding")
    if (
        request.method not in ("GET", "HEAD")
        or response.status_code != 200
        or response.mimetype not in TYPES
        or "Content-Encoding" in response.headers
        or (response.is_streamed and not response.direct_passthrough)
        or not _accepts_gzip()
    ):
        return response
    etag, weak = response.get_etag()
    if response.direct_passthrough:  # a static file (send_file): compressed once per version
        response.direct_passthrough = False
        body = response.get_data()
        if len(body) < MIN_BYTES:
            return response
        data = _static_gzip(etag, body) if etag else gzip.compress(body, LEVEL, mtime=0)
    else:
        body = response.get_data()
        if len(body) < MIN_BYTES:
            return response
        data = gzip.compress(body, LEVEL, mtime=0)
    response.set_data(data)
    response.headers["Content-Encoding"] = "gzip"
    if etag:  # another representation: the same version, weakly
        response.set_etag(etag, weak=True)
    return response
