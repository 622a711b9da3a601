"""`/audit`: the hash chain's verification, a signed checkpoint to keep, how to check it.

The page shows what the API's audit endpoints give, to the same people: an auditor or an
admin (`GET /api/audit/verify` and the checkpoints are audit reads). Verifying reads the
whole chain, so the page shows the last recorded result and runs a new one on request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Response, redirect, request, url_for

from projections.chain_verify import verify
from projections.verify_log import record
from service.audit import signer
from service.audit_keys import take_checkpoint
from service.auth import AUDIT_ROLES, current_actor
from service.errors import Problem
from service.web.blueprint import web
from service.web.pages import download, render_page
from service.web.reads import audit as read_audit
from service.web.reads import services
from service.web.session import require_page_role
from service.web.state import page_state


@web.route("/audit")
@require_page_role(*AUDIT_ROLES)
def audit() -> Any:
    """The last verification, the chain head, the checkpoint download and the procedure."""
    state = page_state()
    data = read_audit(state)
    if state.format:
        return download(state, "audit", ("item", "value"), _facts(data), data["reflects"])
    try:
        key_id: str | None = signer().key_id
        key_problem = None
    except Problem as problem:  # production without AUDIT_SIGNING_KEY: no checkpoint
        key_id, key_problem = None, problem.detail
    return render_page(
        "web/audit.html",
        state=state,
        key_id=key_id,
        key_problem=key_problem,
        base=request.host_url.rstrip("/"),
        **data,
    )


def _facts(data: dict[str, Any]) -> list[list[Any]]:
    """The page's figures as rows: the chain now, then the last recorded verification."""
    rows: list[list[Any]] = [
        ["chain_position", data["chain_position"]],
        ["chain_head", data["chain_head"]],
    ]
    last = data["last"]
    if last is not None:
        rows += [["verified_at", last.at.isoformat()], ["verified_by", last.actor]]
        rows += [[f"verification_{k}", v] for k, v in last.report.items() if k != "finding"]
        finding = last.report.get("finding") or {}
        rows += [[f"finding_{k}", v] for k, v in finding.items()]
    return rows


@web.route("/audit/verify", methods=["POST"])
@require_page_role(*AUDIT_ROLES)
def run_verification() -> Any:
    """Verify the chain now (as `panorama verify`), record the result, show the page."""
    page_state()
    found = services()
    record(found.db, verify(found.db, found.portfolio), datetime.now(UTC), current_actor())
    return redirect(url_for("web.audit", lang=request.args.get("lang")) + "#verification", 303)


@web.route("/audit/checkpoint.json")
@require_page_role(*AUDIT_ROLES)
def checkpoint() -> Response:
    """The chain signed now, as `GET /api/audit/checkpoints/latest` gives it, to download."""
    page_state()
    saved = take_checkpoint(services().db, signer())
    name = f"panorama-checkpoint-{saved['position']}.json"
    return Response(
        json.dumps(saved, indent=2) + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
