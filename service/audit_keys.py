"""Signed checkpoints of the hash chain: Ed25519, key from AUDIT_SIGNING_KEY.

A checkpoint is {position, chain_head, time, key_id, signature}; the signature is Ed25519
over the canonical JSON of {"chain_head", "position", "time"} (keys sorted, no spaces,
ASCII). An auditor keeps checkpoints outside the system and later asks whether each is
still consistent with the chain recomputed from the raw events.

The key is the base64 of the 32-byte Ed25519 private seed in AUDIT_SIGNING_KEY. When it
is unset in the embedded default (SQLite), one is generated once and kept beside the
database (var/audit-signing-key, mode 600). Production (PostgreSQL) must set it. The
private key is never returned, logged or put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.application import Portfolio
from projections.chain_verify import recompute_head
from projections.db import Database
from projections.hashchain import chain_head, chain_position
from service.config import Settings

log = logging.getLogger(__name__)
KEY_FILE = "audit-signing-key"


class SigningKeyMissing(Exception):
    """No AUDIT_SIGNING_KEY in a deployment that does not generate one."""


def canonical(position: int, chain_head: str, time: str) -> bytes:
    """The signed bytes of a checkpoint."""
    body = {"chain_head": chain_head, "position": position, "time": time}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The checkpoint signing key; only its public half ever leaves this object."""

    _private: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"

    @property
    def public(self) -> Ed25519PublicKey:
        return self._private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def public_info(self) -> dict[str, str]:
        pem = self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "algorithm": "Ed25519",
            "key_id": self.key_id,
            "public_key_pem": pem,
            "public_key_base64": base64.b64encode(raw).decode(),
        }


def _from_seed(text: str, where: str) -> Signer:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where} is not valid base64") from None
    if len(seed) != 32:
        raise ValueError(f"{where} must be the base64 of a 32-byte Ed25519 seed")
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


def _generated(path: Path) -> Signer:
    """Read the embedded default's key file, creating it (mode 600) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")  # mode 600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(seed).decode() + "\n")
            os.chmod(tmp, 0o600)
            os.link(tmp, path)  # atomic, and never replaces a key another process made
            signer = _from_seed(path.read_text(), str(path))
            log.warning(
                "AUDIT_SIGNING_KEY is not set: generated an audit signing key in %s "
                "(key id %s); back it up, or set AUDIT_SIGNING_KEY",
                path,
                signer.key_id,
            )
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return _from_seed(path.read_text(), str(path))


def load_signer(settings: Settings) -> Signer:
    """The signing key of this deployment (SigningKeyMissing in production without one)."""
    if settings.audit_signing_key:
        return _from_seed(settings.audit_signing_key, "AUDIT_SIGNING_KEY")
    if settings.is_postgres or settings.is_memory:
        raise SigningKeyMissing("AUDIT_SIGNING_KEY is not set: checkpoints cannot be signed")
    return _generated(settings.sqlite_path.parent / KEY_FILE)


def take_checkpoint(db: Database, signer: Signer, now: datetime | None = None) -> dict[str, Any]:
    """A signed checkpoint of the chain as it stands."""
    with db.transaction(write=False) as tx:
        at = chain_position(tx)
        head = chain_head(tx, at)
    time = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    signature = signer.sign(canonical(at, head, time))
    return {
        "position": at,
        "chain_head": head,
        "time": time,
        "key_id": signer.key_id,
        "signature": base64.b64encode(signature).decode(),
    }


def signature_valid(public: Ed25519PublicKey, checkpoint: dict[str, Any]) -> bool:
    """Whether the checkpoint's signature verifies with `public`."""
    try:
        signature = base64.b64decode(str(checkpoint["signature"]), validate=True)
        data = canonical(
            int(checkpoint["position"]), str(checkpoint["chain_head"]), str(checkpoint["time"])
        )
        public.verify(signature, data)
    except (InvalidSignature, binascii.Error, ValueError, KeyError, TypeError):
        return False
    return True


def check_checkpoint(
    db: Database, portfolio: Portfolio, signer: Signer, checkpoint: dict[str, Any]
) -> dict[str, Any]:
    """Whether a saved checkpoint is signed by this key and consistent with the chain now.

    Consistent: the chain recomputed from GENESIS over the raw events up to its position
    ends in its chain_head (so an altered, removed or inserted event at or before it is
    caught even when the stored links were rewritten), and the stored link agrees.
    """
    at = int(checkpoint["position"])
    expected = str(checkpoint["chain_head"]).lower()
    signed = signature_valid(signer.public, checkpoint)
    recomputed, stored, reached = recompute_head(db, portfolio, at)
    if at > reached:
        matches, detail = False, f"the chain has only reached position {reached}, not {at}"
    elif recomputed != expected:
        matches = False
        detail = (
            f"chain head mismatch: the events up to position {at} now hash to {recomputed}, "
            f"not {expected}"
        )
    elif stored != expected:
        matches, detail = False, f"chain head mismatch: the stored link at {at} is {stored}"
    else:
        matches, detail = True, "the chain up to this position is unchanged"
    if not signed:
        detail = f"the signature does not verify with key {signer.key_id}; {detail}"
    return {
        "valid": signed and matches,
        "signature_valid": signed,
        "chain_head_matches": matches,
        "position": at,
        "chain_position": reached,
        "recomputed_head": recomputed,
        "detail": detail,
    }
