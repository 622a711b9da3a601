"""Who is asking: one function, so that bearer tokens can replace the header later."""

from __future__ import annotations

import unicodedata

from flask import request

from service.errors import Problem

ACTOR_HEADER = "X-Actor"
ANONYMOUS = "anonymous"
MAX_ACTOR_LENGTH = 200


def current_actor() -> str:
    """The request's actor: the X-Actor header for now, "anonymous" when absent."""
    actor = request.headers.get(ACTOR_HEADER, "").strip()
    if not actor:
        return ANONYMOUS
    if len(actor) > MAX_ACTOR_LENGTH or any(unicodedata.category(c) == "Cc" for c in actor):
        raise Problem(
            400,
            f"{ACTOR_HEADER} must be at most {MAX_ACTOR_LENGTH} printable characters",
            field=ACTOR_HEADER,
        )
    return actor
