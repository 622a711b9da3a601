"""The audit API: verify the hash chain, sign checkpoints, check saved ones.

Verifying and checkpoints are audit reads (an admin or auditor token); the public key is a
plain read (anonymous while PUBLIC_READ is on), since anyone may check a signature.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from projections.chain_verify import verify
from service.audit_keys import (
    Signer,
    SigningKeyMissing,
    check_checkpoint,
    load_signer,
    take_checkpoint,
)
from service.auth import require_read
from service.blueprints import Blueprint
from service.context import current_services
from service.errors import Problem
from service.schemas import Strict

audit = Blueprint(
    "audit",
    __name__,
    url_prefix="/api/audit",
    description="Tamper evidence: the hash chain of every event, signed checkpoints.",
)
_SIGNER = "panorama_audit_signer"
_HEX = validate.Regexp(r"^[0-9a-fA-F]{64}$", error="a SHA-256 link: 64 hex digits")


class FindingSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["altered", "inserted", "removed"]))
    position = fields.Integer(required=True, metadata={"description": "notification id"})
    stream_id = fields.String(required=True)
    version = fields.Integer(required=True)
    detail = fields.String(required=True)


class VerifySchema(Schema):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={"description": "chain links verified"})
    position = fields.Integer(required=True, metadata={"description": "how far the chain is"})
    head = fields.Integer(required=True, metadata={"description": "last notification id"})
    not_yet_chained = fields.Integer(required=True)
    chain_head = fields.String(required=True)
    finding = fields.Nested(FindingSchema, allow_none=True, required=True)


class CheckpointSchema(Strict):
    position = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=2**63 - 1)
    )
    chain_head = fields.String(required=True, validate=_HEX)
    time = fields.String(required=True, validate=validate.Length(min=1, max=64))
    key_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    signature = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CheckpointCheckSchema(Schema):
    valid = fields.Boolean(required=True)
    signature_valid = fields.Boolean(required=True)
    chain_head_matches = fields.Boolean(required=True)
    position = fields.Integer(required=True)
    chain_position = fields.Integer(required=True)
    recomputed_head = fields.String(required=True)
    detail = fields.String(required=True)


class PublicKeySchema(Schema):
    algorithm = fields.String(required=True)
    key_id = fields.String(required=True)
    public_key_pem = fields.String(required=True)
    public_key_base64 = fields.String(required=True)


def signer() -> Signer:
    """The signing key of checkpoints (503 when it is missing or unusable)."""
    found: Signer | None = current_app.extensions.get(_SIGNER)
    if found is None:
        try:
            found = load_signer(current_services().settings)
        except SigningKeyMissing as e:
            raise Problem(503, str(e)) from None
        except ValueError as e:  # a malformed AUDIT_SIGNING_KEY: say so, never echo it
            raise Problem(503, f"the audit signing key is unusable: {e}") from None
        current_app.extensions[_SIGNER] = found
    return found


@audit.route("/verify")
class Verify(MethodView):
    @audit.response(200, VerifySchema)
    @require_read(auditor_only=True)
    def get(self) -> dict[str, Any]:
        """Recompute the hash chain from the raw event table; name the first tampered event.

        `finding` is null when every chained event is intact; events past the chain's
        position are counted in `not_yet_chained`, not reported as tampering.
        """
        services = current_services()
        return verify(services.db, services.portfolio).as_dict()


@audit.route("/checkpoints/latest")
class LatestCheckpoint(MethodView):
    @audit.response(200, CheckpointSchema)
    @audit.alt_response(503, response="SERVICE_UNAVAILABLE")
    @require_read(auditor_only=True)
    def get(self) -> dict[str, Any]:
        """A checkpoint of the chain, signed now: keep it outside the system.

        The signature is Ed25519 (base64) over the canonical JSON of `position`,
        `chain_head` and `time`: keys sorted, no whitespace, ASCII only.
        """
        return take_checkpoint(current_services().db, signer())


@audit.route("/checkpoints/verify")
class CheckCheckpoint(MethodView):
    @audit.arguments(CheckpointSchema)
    @audit.response(200, CheckpointCheckSchema)
    @audit.alt_response(400, response="BAD_REQUEST")
    @audit.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @audit.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @audit.alt_response(503, response="SERVICE_UNAVAILABLE")
    @require_read(auditor_only=True)
    def post(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """Whether a saved checkpoint is signed by this key and still matches the chain.

        The chain is recomputed from the raw events up to the checkpoint's position:
        `valid` is false when any event at or before it was altered, inserted or removed.
        """
        services = current_services()
        return check_checkpoint(services.db, services.portfolio, signer(), checkpoint)


@audit.route("/public-key")
class PublicKey(MethodView):
    @audit.response(200, PublicKeySchema)
    @audit.alt_response(503, response="SERVICE_UNAVAILABLE")
    @require_read()
    def get(self) -> dict[str, str]:
        """The public key that verifies checkpoints (PEM and raw base64), with its key id."""
        return signer().public_info()
