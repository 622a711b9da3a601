"""The hash chain on the embedded SQLite store: chaining, verifying, keys, CSV, CLI, tasks."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg import sql

from projections import hashchain
from projections.catchup import status
from projections.chain_verify import verify
from projections.registry import catch_up
from service.audit_keys import KEY_FILE, SigningKeyMissing, load_signer
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

T = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def chained(sqlite_settings: Settings, make_services: Callable[..., Services]) -> Services:
    services = make_services(sqlite_settings, today=lambda: TODAY)
    write_history(services, 30)  # the embedded trigger catches both projections up
    return services


def test_links_are_sha256_over_length_prefixed_fields() -> None:
    g = hashchain.GENESIS
    assert g == hashlib.sha256(b"panorama:hash_chain:genesis:v1").digest()
    one = hashchain.link(g, "ab", 1, "c", T, b"{}")
    assert one == hashchain.link(g, "ab", 1, "c", T, b"{}")
    assert one != hashchain.link(g, "a", 1, "bc", T, b"{}")  # no ambiguous concatenation
    assert one != hashchain.link(g, "ab", 11, "c", T, b"{}")
    assert one != hashchain.link(one, "ab", 1, "c", T, b"{}")
    fields = [g, b"ab", b"1", b"c", T.encode(), b"{}"]
    expected = hashlib.sha256(b"".join(len(f).to_bytes(8, "big") + f for f in fields)).digest()
    assert one == expected


def test_the_embedded_trigger_chains_every_event_and_it_verifies(chained: Services) -> None:
    rows = all_events(chained)
    report = verify(chained.db, chained.portfolio, batch_size=4)
    assert report.ok and report.finding is None
    assert report.checked == len(rows) == report.position == report.head > 20
    assert report.not_yet_chained == 0
    names = {s.name: s.position for s in status(chained.db, chained.portfolio)}
    assert names["hash_chain"] == names["project_states"] == report.head
    with chained.db.transaction(write=False) as tx:
        chain = tx.fetch("SELECT position, originator_id, link FROM pr_hash_chain ORDER BY 1")
    assert [r["position"] for r in chain] == [r["notification_id"] for r in rows]
    assert chain[-1]["link"].hex() == report.chain_head


def test_catching_up_twice_and_in_small_batches_gives_the_same_chain(chained: Services) -> None:
    before = verify(chained.db, chained.portfolio).chain_head
    assert catch_up(chained.db, chained.portfolio, hashchain.NAME) == 0
    execute(chained, sql.SQL("DELETE FROM pr_hash_chain"))
    execute(chained, sql.SQL("UPDATE pr_tracking SET position = 0 WHERE name = 'hash_chain'"))
    assert catch_up(chained.db, chained.portfolio, hashchain.NAME, batch_size=3, stop_after=7) == 7
    catch_up(chained.db, chained.portfolio, hashchain.NAME, batch_size=5)
    assert verify(chained.db, chained.portfolio).chain_head == before


def test_tampering_on_sqlite_is_named(chained: Services) -> None:
    target = events(chained)[11]
    change_byte(chained, target, actor_offset(target), ord("X"))
    finding = verify(chained.db, chained.portfolio).finding
    assert finding is not None
    assert dataclasses.asdict(finding) | {"detail": ""} == finding_of(target, "altered") | {
        "detail": ""
    }
    gone = events(chained)[20]
    execute(
        chained,
        sql.SQL("DELETE FROM {} WHERE rowid = %s").format(table(chained)),
        (gone["notification_id"],),
    )
    assert verify(chained.db, chained.portfolio).finding == finding  # the first one


def test_the_audit_api_on_sqlite(chained: Services) -> None:
    client = audit_client(chained)
    assert client.get("/api/audit/verify").get_json()["ok"] is True
    saved = client.get("/api/audit/checkpoints/latest").get_json()
    assert saved["position"] == events(chained)[-1]["notification_id"]
    assert client.post("/api/audit/checkpoints/verify", json=saved).get_json()["valid"]
    key = client.get("/api/audit/public-key").get_json()
    assert key["key_id"] == saved["key_id"] and "PRIVATE" not in str(key)
    bad = client.post("/api/audit/checkpoints/verify", json=saved | {"position": -1})
    assert bad.status_code == 422


def test_csv_answers_carry_the_chain_head(chained: Services) -> None:
    client = audit_client(chained)
    head = verify(chained.db, chained.portfolio).chain_head
    for url in (
        "/api/portfolio/summary?format=csv",
        "/api/projects?format=csv",
        "/api/portfolio/changes?from=2020-01-01&to=2024-01-01&format=csv",
    ):
        answer = client.get(url)
        assert answer.status_code == 200, answer.get_data(True)
        assert answer.headers["X-Panorama-Chain-Head"] == head
    assert "chain_head" not in client.get("/api/portfolio/summary").get_json()


def test_the_chain_head_of_a_read_is_at_its_position(chained: Services) -> None:
    rows = events(chained)
    with chained.db.transaction(write=False) as tx:
        at = int(rows[9]["notification_id"])
        assert hashchain.chain_head(tx, at) == hashchain.link_at(tx, at).hex()  # type: ignore[union-attr]
        assert hashchain.chain_head(tx, 0) == hashchain.GENESIS.hex()


def test_the_embedded_key_is_generated_once_mode_600_and_never_logged(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        first = load_signer(sqlite_settings)
        second = load_signer(sqlite_settings)
    path = sqlite_settings.sqlite_path.parent / KEY_FILE
    assert first.key_id == second.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert [r for r in caplog.records if "generated" in r.getMessage()]
    assert secret not in caplog.text and secret not in repr(first)


def test_the_configured_key_is_used_and_never_shown() -> None:
    settings = Settings(audit_signing_key=KEY)
    assert KEY not in repr(settings)
    signer = load_signer(settings)
    assert KEY not in str(signer.public_info()) and KEY not in repr(signer)
    with pytest.raises(ValueError) as refused:
        load_signer(Settings(audit_signing_key=base64.b64encode(b"short").decode()))
    assert "c2hvcnQ" not in str(refused.value)
    with pytest.raises(SigningKeyMissing):
        load_signer(Settings(database_url="postgresql://x@127.0.0.1/y"))
    assert Settings.from_env({"AUDIT_SIGNING_KEY": KEY}).audit_signing_key == KEY


def test_panorama_verify_exit_codes(chained: Services, tmp_path: Path) -> None:
    env = {"DATABASE_URL": chained.settings.database_url, "REDIS_URL": ""}
    result = CliRunner().invoke(main, ["verify"], env=env)
    assert result.exit_code == 0, result.output
    target = events(chained)[4]
    change_byte(chained, target, 0, ord("X"))
    result = CliRunner().invoke(main, ["verify"], env=env)
    assert result.exit_code == 1
    assert f"altered at position {target['notification_id']}" in result.output


def test_the_task_and_beat_cover_the_chain() -> None:
    from workers.celery_app import CATCH_UP_TASK, make_celery
    from workers.tasks import catch_up_projection

    schedule = make_celery("redis://127.0.0.1:6379/0", "q").conf.beat_schedule
    assert sorted(e["args"][0] for e in schedule.values() if e["task"] == CATCH_UP_TASK) == [
        "alerts",
        "editions",
        "hash_chain",
        "programmes",
        "project_states",
    ]
    with pytest.raises(ValueError):
        catch_up_projection.run("nonsense")


def test_audit_reads_need_an_auditor_and_the_public_key_is_public(chained: Services) -> None:
    pytest.importorskip("service.tokens")
    anonymous = audit_client(chained)
    anonymous.environ_base.pop("HTTP_AUTHORIZATION", None)
    assert anonymous.get("/api/audit/verify").status_code == 401
    assert anonymous.get("/api/audit/checkpoints/latest").status_code == 401
    assert anonymous.get("/api/audit/public-key").status_code == 200
    assert audit_client(chained, "subscriber").get("/api/audit/verify").status_code == 403
    assert audit_client(chained, "admin").get("/api/audit/verify").status_code == 200


def test_a_fresh_store_chains_its_reference_data(
    sqlite_settings: Settings, make_services: Callable[..., Services]
) -> None:
    services = make_services(sqlite_settings)
    head = len(all_events(services))  # the currency and the ministries seeded at start-up
    report = verify(services.db, services.portfolio)
    assert head > 0
    assert (report.ok, report.checked, report.position, report.head) == (True, head, head, head)
    assert report.chain_head != hashchain.GENESIS.hex()
    client = audit_client(services)
    saved = client.get("/api/audit/checkpoints/latest").get_json()
    assert saved["chain_head"] == report.chain_head
    assert client.post("/api/audit/checkpoints/verify", json=saved).get_json()["valid"]
