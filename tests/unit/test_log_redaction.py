"""What the log redaction removes from a line, and what it leaves for the operator to read."""

from __future__ import annotations

import logging

import pytest

from service.log_redaction import REDACTED, RedactingFilter, redact

TOKEN = "pnr_0123456789abcdef_Zm9vYmFyYmF6cXV4"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'GET /api/projects?access_token={TOKEN} HTTP/1.1" 200', TOKEN),
        ("GET /api/x?page=2&api_key=hunter2&sort=name HTTP/1.1", "hunter2"),
        ("GET /api/x?token=abc123;q=1", "abc123"),
        ("/cb?client_secret=s3cr3t&password=pw0rd#frag", "s3cr3t"),
        ("/cb?client_secret=s3cr3t&password=pw0rd#frag", "pw0rd"),
        ("/hook?X-Amz-Signature=deadbeef&sig=cafe", "deadbeef"),
        ("/hook?X-Amz-Signature=deadbeef&sig=cafe", "cafe"),
        ("/x?access%5Ftoken=encoded-secret", "encoded-secret"),
        (f"/x?next={TOKEN}", TOKEN),  # any value with the token prefix
        ("/x?next=pnr%5F0123456789abcdef%5Fabc", "0123456789abcdef"),
        (f"Authorization failed for Bearer {TOKEN}", TOKEN),
        ("delivering to https://alice:wonderland@example.org/hook", "wonderland"),
        ("/x?passwd=p&pwd=q&apikey=r&session_id=s", "=p&"),
    ],
)
def test_a_secret_never_survives_redaction(line: str, secret: str) -> None:
    clean = redact(line)
    assert secret not in clean and REDACTED in clean


def test_ordinary_parameters_and_paths_stay_readable() -> None:
    line = 'GET /api/projects?as_of=2024-06-01&known_at=2024-06-01T00:00:00Z&q=paie HTTP/1.1" 200'
    assert redact(line) == line
    assert redact("/api/x?access_token=&q=1") == "/api/x?access_token=&q=1"  # nothing to hide
    assert redact("/x?api_key=k1&q=visible") == f"/x?api_key={REDACTED}&q=visible"


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    try:
        raise RuntimeError(f"upstream refused /hook?token={TOKEN}")
    except RuntimeError as e:
        record = logging.LogRecord(
            "service.x",
            logging.ERROR,
            __file__,
            1,
            "calling %s",
            ("/a?key=v9",),
            (type(e), e, None),
        )
    assert RedactingFilter().filter(record)
    text = logging.Formatter("%(message)s").format(record)
    assert "v9" not in text and TOKEN not in text and "calling /a?key=" in text
    assert "RuntimeError: upstream refused /hook?token=" in text
