"""POSTing a webhook to the addresses the policy checked, never following a redirect.

The connection goes to the checked IP (urllib3 pool on the address), with the URL's host in
the Host header and, for https, as the TLS server name and the certificate's expected name.
No proxy from the environment is used, nothing is resolved again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import ConnectTimeoutError

from workers.webhook_policy import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: an HTTP status (2xx is delivered) or an error."""

    http_status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Delivered: a 2xx answer, or (e-mail) no error."""
        status = self.http_status
        return self.error is None and (status is None or 200 <= status < 300)


Sender = Callable[[Target, bytes, dict[str, str], float], Outcome]


def host_header(target: Target) -> str:
    """The Host header of the URL: its host (IPv6 in brackets) and any non-default port."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _pool(target: Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=limits,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            assert_hostname=target.host,
            server_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(address, target.port, timeout=limits, retries=False)


def post_webhook(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST the body to the first checked address that connects; any answer is an outcome.

    A 3xx is a failed attempt, "redirect refused" with its status (the Location is neither
    followed nor recorded).
    """
    error = "no address to connect to"
    for address in target.addresses:
        pool = _pool(target, address, timeout)
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": host_header(target)},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            status = int(response.status)
            response.close()
        except ConnectTimeoutError as refused:  # this address does not answer: the next one
            error = f"{type(refused).__name__}: could not connect to {address}"
            continue
        except Exception as failed:  # reset, timed out, TLS...: retried
            return Outcome(None, f"{type(failed).__name__}: {failed}"[:500])
        finally:
            pool.close()
        if 300 <= status < 400:
            log.warning("webhook %s: redirect refused (HTTP %s)", headers.get("webhook-id"), status)
            return Outcome(status, f"redirect refused (HTTP {status}); redirects are not followed")
        return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")
    return Outcome(None, error)
