"""The production shape end to end: API commands, a real Celery worker, reads through the API."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from projections.figures import project_figures
from projections.state import fold
from service.app import create_app
from service.query_schemas import ProjectStateSchema
from tests.e2e.conftest import authorize, make_token
from tests.integration.conftest import Production


def test_commands_are_projected_by_the_worker_and_read_back_through_the_api(
    production: Production,
) -> None:
    services = production.services(min_position_wait_s=30)  # the worker catches up
    production.workers.start()
    client = authorize(create_app(services).test_client(), make_token(services, "admin"))
    rng = random.Random(11)
    ids, stamps, position = [], [], 0
    for n in range(4):
        body = {
            "name": f"Projet {n}",
            "ministry_code": ["MJ", "MEF"][n % 2],
            "effective_date": "2022-01-10",
            "start_date": "2021-06-01",
            "planned_end": "2024-06-01",
            "cost": f"{1_000_000 + n * 1000}.00",
        }
        response = client.post("/api/projects", json=body)
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    for _ in range(40):
        pid = rng.choice(ids)
        day = date(2022, 1, 10) + timedelta(days=rng.randrange(0, 900))
        if rng.random() < 0.6:
            resource, body = "cost-estimates", {"amount": f"{rng.randrange(900, 2000)}000.00"}
        else:
            resource, body = "schedule-estimates", {"planned_end": str(day + timedelta(days=500))}
        body["effective_date"] = str(day)  # about half are backdated relative to the last
        response = client.post(f"/api/projects/{pid}/{resource}", json=body)
        assert response.status_code == 201, response.get_json()
        position = response.get_json()["position"]
        stamps.append(datetime.now(UTC))

    # read-your-writes: the API waits for the worker to reach the last command's position
    first = client.get(f"/api/projects/{ids[0]}?min_position={position}")
    assert first.status_code == 200 and first.get_json()["position"] >= position

    schema = ProjectStateSchema()
    for pid in ids:
        events = services.portfolio.project_events(pid)  # type: ignore[arg-type]
        for as_of in (date(2022, 1, 9), date(2022, 6, 1), date(2023, 3, 1), date(2024, 9, 1)):
            for known_at in (None, stamps[10], stamps[25]):
                query: dict[str, str] = {"as_of": as_of.isoformat()}
                if known_at is not None:
                    query["known_at"] = known_at.isoformat()
                answer = client.get(f"/api/projects/{pid}", query_string=query)
                expected = fold(events, as_of=as_of, known_at=known_at)
                if expected is None:
                    assert answer.status_code == 404
                    continue
                assert answer.status_code == 200
                got = {k: v for k, v in answer.get_json().items() if k in schema.fields}
                assert got == schema.dump(project_figures(expected, as_of))
    summary = client.get("/api/portfolio/summary?as_of=2024-09-01").get_json()
    assert summary["projects"] == 4
    total = sum(
        (
            s.current_cost
            for p in ids
            if (s := fold(services.portfolio.project_events(p))) and s.current_cost
        ),  # type: ignore[arg-type]
        Decimal(0),
    )
    assert Decimal(summary["total_cost"]) == total
