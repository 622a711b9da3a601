"""A process reuses the tokens it checked only while nothing was revoked anywhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.bootstrap import Services
from service.config import Settings
from service.tokens import TokenRefused, TokenStore


def test_a_revocation_by_another_process_refuses_the_next_request(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    web = TokenStore(make_services(settings).db, cache_s=60)  # a web process, caching
    cli = TokenStore(make_services(settings).db)  # `panorama tokens revoke`, elsewhere
    web.create_table()
    kept, kept_token = cli.create("admin", name="kept")
    gone, gone_token = cli.create("manager", ministries=["MJ"], name="gone")
    assert web.authenticate(gone_token) == gone and web.authenticate(kept_token) == kept
    assert web.authenticate(gone_token) == gone  # reused from the cache

    cli.revoke(gone.id)
    with pytest.raises(TokenRefused, match="unknown or revoked"):
        web.authenticate(gone_token)
    assert web.authenticate(kept_token) == kept  # the others are checked again, and pass


def test_a_cached_token_with_another_secret_is_refused(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    web = TokenStore(make_services(settings).db, cache_s=60)
    web.create_table()
    _, token = web.create("admin", name="real")
    web.authenticate(token)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenRefused):
        web.authenticate(forged)


def test_a_token_row_deleted_by_hand_is_refused_from_the_next_request(
    settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(settings)
    web = TokenStore(services.db, cache_s=60)
    web.create_table()
    record, token = web.create("admin", name="deleted")
    web.authenticate(token)
    with services.db.transaction() as tx:  # an operator's own SQL
        tx.execute("DELETE FROM api_tokens WHERE id = %s", (record.id,))
    with pytest.raises(TokenRefused):
        web.authenticate(token)
