"""Tamper evidence on the real PostgreSQL: the hash chain, its verification, signed checkpoints.

Each test records a history of a few dozen events (with a gap in the notification ids, as
rolled-back inserts leave), chains it, then tampers with `panorama_events` by hand in SQL.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask.testing import FlaskClient
from psycopg import sql

from projections import hashchain
from projections.chain_verify import verify
from projections.registry import catch_up
from projections.schema import PROJECTION
from service.audit_keys import canonical
from service.bootstrap import Services
from service.cli import main
from service.config import Settings
from tests.chain_helpers import (
    KEY,
    actor_offset,
    all_events,
    audit_client,
    change_byte,
    events,
    execute,
    finding_of,
    table,
    write_history,
)
from tests.histories import TODAY


@pytest.fixture
def chained(pg_settings: Settings, make_services: Callable[..., Services]) -> Services:
    services = make_services(
        dataclasses.replace(pg_settings, audit_signing_key=KEY), today=lambda: TODAY
    )
    write_history(services, 24)
    # A gap in the notification ids, as a rolled-back insert leaves one: not tampering.
    execute(
        services,
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence('panorama_events', 'notification_id'), "
            "(SELECT max(notification_id) FROM {}) + 4)"
        ).format(table(services)),
    )
    write_history(services, 24, start=24)
    return services


@pytest.fixture
def client(chained: Services) -> FlaskClient:
    return audit_client(chained)


def _finding(client: FlaskClient) -> dict[str, Any] | None:
    answer = client.get("/api/audit/verify")
    assert answer.status_code == 200
    finding: dict[str, Any] | None = answer.get_json()["finding"]
    if finding is not None:
        finding.pop("detail")
    return finding


def _reported(services: Services) -> dict[str, Any] | None:
    finding = verify(services.db, services.portfolio, batch_size=7).finding
    if finding is None:
        return None
    found = dataclasses.asdict(finding)
    found.pop("detail")
    return found


def _cli(services: Services, *args: str) -> Any:
    env = {
        "DATABASE_URL": services.settings.database_url,
        "DATABASE_SCHEMA": services.settings.database_schema,
        "AUDIT_SIGNING_KEY": KEY,
        "REDIS_URL": "",
    }
    return CliRunner().invoke(main, ["verify", *args], env=env)


def test_an_untouched_history_verifies(chained: Services, client: FlaskClient) -> None:
    rows = all_events(chained)
    ids = [int(r["notification_id"]) for r in rows]
    assert len(rows) >= 36 and ids[-1] - ids[0] + 1 > len(ids), "a gap in the ids"
    report = verify(chained.db, chained.portfolio, batch_size=7)
    assert report.ok and report.finding is None
    assert (report.checked, report.position, report.head) == (len(rows), ids[-1], ids[-1])
    assert report.not_yet_chained == 0
    answer = client.get("/api/audit/verify").get_json()
    assert answer == report.as_dict() | {"finding": None}
    result = _cli(chained)
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


@pytest.mark.parametrize("where", ["inside a value", "first byte: no longer decodes"])
def test_one_changed_byte_names_the_altered_event(
    chained: Services, client: FlaskClient, where: str
) -> None:
    target = events(chained)[17]
    offset = actor_offset(target) if where == "inside a value" else 0
    change_byte(chained, target, offset, ord("X"))
    expected = finding_of(target, "altered")
    assert _reported(chained) == expected
    assert _finding(client) == expected
    result = _cli(chained)
    assert result.exit_code == 1
    assert f"position {expected['position']}" in result.output
    assert expected["stream_id"] in result.output


def test_a_deleted_event_is_named_removed(chained: Services, client: FlaskClient) -> None:
    target = events(chained)[9]
    deleted = execute(
        chained,
        sql.SQL("DELETE FROM {} WHERE notification_id = %s").format(table(chained)),
        (target["notification_id"],),
    )
    assert deleted == 1
    expected = finding_of(target, "removed")
    assert _reported(chained) == expected
    assert _finding(client) == expected


def test_a_forged_event_is_named_inserted(chained: Services, client: FlaskClient) -> None:
    rows = events(chained)
    ids = {int(r["notification_id"]) for r in rows}
    hole = min(set(range(min(ids), max(ids))) - ids)
    model = rows[12]
    version = 1 + max(
        int(r["originator_version"]) for r in rows if r["originator_id"] == model["originator_id"]
    )
    execute(
        chained,
        sql.SQL(
            "INSERT INTO {tbl} (originator_id, originator_version, topic, state, notification_id) "
            "SELECT originator_id, %s, topic, state, %s FROM {tbl} WHERE notification_id = %s"
        ).format(tbl=table(chained)),
        (version, hole, model["notification_id"]),
    )
    expected = finding_of(model, "inserted", version) | {"position": hole}
    assert _reported(chained) == expected
    assert _finding(client) == expected


def test_a_changed_topic_is_named_altered(chained: Services, client: FlaskClient) -> None:
    rows = events(chained)
    target = next(r for r in rows[5:] if r["topic"].endswith("CostReestimated"))
    execute(
        chained,
        sql.SQL("UPDATE {} SET topic = %s WHERE notification_id = %s").format(table(chained)),
        ("domain.project:Project.ScheduleReestimated", target["notification_id"]),
    )
    expected = finding_of(target, "altered")
    assert _reported(chained) == expected
    assert _finding(client) == expected


def test_events_past_the_chain_are_not_yet_chained(chained: Services) -> None:
    chained.after_commit = lambda position: None  # nothing catches the chain up
    chained_up_to = events(chained)[-1]["notification_id"]
    head = write_history(chained, 6, start=48)
    # Appended by hand past the chain's position: to a hash chain, just another append.
    execute(
        chained,
        sql.SQL(
            "INSERT INTO {tbl} (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version + 1000, topic, state FROM {tbl} "
            "WHERE notification_id = %s"
        ).format(tbl=table(chained)),
        (head,),
    )
    pending = [r for r in events(chained) if r["notification_id"] > chained_up_to]
    report = verify(chained.db, chained.portfolio)
    assert report.ok and report.finding is None
    assert report.position == chained_up_to and report.not_yet_chained == len(pending) > 3
    assert report.head == pending[-1]["notification_id"]


def test_a_checkpoint_stays_valid_as_events_are_appended(
    chained: Services, client: FlaskClient
) -> None:
    saved = client.get("/api/audit/checkpoints/latest").get_json()
    assert saved["position"] == events(chained)[-1]["notification_id"]
    head = write_history(chained, 8, start=48)  # the in-process trigger chains them
    with chained.db.transaction(write=False) as tx:
        assert hashchain.chain_position(tx) == head > saved["position"]
    check = client.post("/api/audit/checkpoints/verify", json=saved).get_json()
    assert check["valid"] and check["signature_valid"] and check["chain_head_matches"]
    later = events(chained)[-2]  # altering what came after the checkpoint leaves it valid
    change_byte(chained, later, actor_offset(later), ord("X"))
    assert client.post("/api/audit/checkpoints/verify", json=saved).get_json()["valid"]
    assert not verify(chained.db, chained.portfolio).ok


@pytest.mark.parametrize("which", ["at its position", "before it, chain rewritten"])
def test_altering_the_past_invalidates_a_checkpoint(
    chained: Services, client: FlaskClient, which: str
) -> None:
    saved = client.get("/api/audit/checkpoints/latest").get_json()
    write_history(chained, 4, start=48)
    rows = events(chained)
    target = next(r for r in rows if r["notification_id"] == saved["position"])
    if which != "at its position":
        target = rows[3]
    change_byte(chained, target, actor_offset(target), ord("X"))
    if which != "at its position":
        # A forger who also rewrites the stored chain: verify() sees a consistent chain...
        execute(chained, sql.SQL("DELETE FROM pr_hash_chain"))
        execute(chained, sql.SQL("UPDATE pr_tracking SET position = 0 WHERE name = 'hash_chain'"))
        catch_up(chained.db, chained.portfolio, hashchain.NAME)
        assert verify(chained.db, chained.portfolio).ok
    # ...but the checkpoint kept outside does not match the recomputed chain any more.
    check = client.post("/api/audit/checkpoints/verify", json=saved).get_json()
    assert check["signature_valid"] and not check["valid"] and not check["chain_head_matches"]
    assert "chain head mismatch" in check["detail"]


def test_the_signature_verifies_with_the_public_key(client: FlaskClient) -> None:
    saved = client.get("/api/audit/checkpoints/latest").get_json()
    published = client.get("/api/audit/public-key").get_json()
    public = load_pem_public_key(published["public_key_pem"].encode())
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes_raw()
    assert base64.b64decode(published["public_key_base64"]) == raw
    assert published["key_id"] == saved["key_id"]
    signed = canonical(saved["position"], saved["chain_head"], saved["time"])
    signature = base64.b64decode(saved["signature"])
    public.verify(signature, signed)
    flipped = bytearray(signature)
    flipped[10] ^= 0x01
    with pytest.raises(InvalidSignature):
        public.verify(bytes(flipped), signed)
    forged = saved | {"signature": base64.b64encode(bytes(flipped)).decode()}
    check = client.post("/api/audit/checkpoints/verify", json=forged).get_json()
    assert check["chain_head_matches"] and not check["signature_valid"] and not check["valid"]
    head = saved["chain_head"]
    other = saved | {"chain_head": head[:-1] + ("0" if head[-1] != "0" else "1")}
    assert not client.post("/api/audit/checkpoints/verify", json=other).get_json()["valid"]


def test_the_cli_checks_a_saved_checkpoint(
    chained: Services, client: FlaskClient, tmp_path: Path
) -> None:
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(client.get("/api/audit/checkpoints/latest").get_json()))
    result = _cli(chained, "--checkpoint", str(saved))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    target = events(chained)[2]
    change_byte(chained, target, actor_offset(target), ord("X"))
    result = _cli(chained, "--checkpoint", str(saved), "--json")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines[0]["finding"]["position"] == target["notification_id"]
    assert lines[1]["valid"] is False


def test_csv_answers_carry_the_chain_head_of_their_read(
    chained: Services, client: FlaskClient
) -> None:
    catch_up(chained.db, chained.portfolio, PROJECTION)
    answer = client.get("/api/portfolio/summary?format=csv")
    report = verify(chained.db, chained.portfolio)
    assert answer.headers["X-Panorama-Position"] == str(report.position)
    assert answer.headers["X-Panorama-Chain-Head"] == report.chain_head
