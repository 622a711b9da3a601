"""The access-log atoms without headers and environ give gunicorn's own line for any format
that names none of those; a format that names one gets gunicorn's atoms."""

from __future__ import annotations

import base64
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.glogging import SafeAtoms

from service.log_redaction import RedactingGunicornLogger

DEFAULT = Config().access_log_format
FORMATS = (
    DEFAULT,
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(T)s %(D)s %(M)s %(L)s %(p)s',
    "%(m)s %(U)s ?%(q)s %(H)s %(B)s %(x)s %(nothing)s",
    '%(h)s "%({content-type}i)s" %({Content-Length}o)s %({raw_uri}e)s %({absent}i)s',
)


def _environ(**extra: str) -> dict[str, Any]:
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": '/api/projects/x/cost-estimates?a="b"',
        "PATH_INFO": "/api/projects/x/cost-estimates",
        "QUERY_STRING": 'a="b"',
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": 'client "quoted"/1.0',
        "CONTENT_TYPE": "application/json",
    }
    return environ | extra


def _request() -> Any:
    return SimpleNamespace(headers=[("CONTENT-TYPE", "application/json"), ("HOST", "h")])


def _response(status: str = "201 CREATED", sent: int | None = 231) -> Any:
    return SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "application/json")])


def _line(logger: GunicornLogger, fmt: str, environ: dict[str, Any], resp: Any) -> str:
    atoms = logger.atoms(resp, _request(), environ, timedelta(seconds=1, microseconds=2345))
    return fmt % SafeAtoms(atoms)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("environ", "resp"),
    [
        (_environ(), _response()),
        (_environ(HTTP_REFERER="http://127.0.0.1/x"), _response("404 NOT FOUND", None)),
        (
            _environ(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"ann:pw").decode()),
            _response(),
        ),
        (_environ(HTTP_AUTHORIZATION="Bearer pnr_0123"), _response("200 OK", 0)),
    ],
)
def test_the_line_is_gunicorns(fmt: str, environ: dict[str, Any], resp: Any) -> None:
    config = Config()
    config.set("access_log_format", fmt)
    ours, theirs = RedactingGunicornLogger(config), GunicornLogger(config)
    now = "[03/Dec/2026:13:00:00 +0000]"
    ours.now = theirs.now = lambda: now
    assert _line(ours, fmt, environ, resp) == _line(theirs, fmt, environ, resp)


def test_headers_and_environ_are_left_out_only_when_no_format_names_them() -> None:
    config = Config()
    environ, resp = _environ(), _response()
    short = RedactingGunicornLogger(config).atoms(resp, _request(), environ, timedelta())
    assert not any(key.startswith("{") for key in short)
    config.set("access_log_format", FORMATS[3])
    full = RedactingGunicornLogger(config).atoms(resp, _request(), environ, timedelta())
    assert full["{content-type}i"] == "application/json"
    assert full["{raw_uri}e"] == environ["RAW_URI"]
