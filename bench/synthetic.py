"""A realistic synthetic portfolio: many projects, long histories, ~2% backdated corrections."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from tqdm import tqdm

from domain.application import Portfolio
from domain.errors import DomainError
from domain.project import Project
from domain.values import PHASES, RATINGS, Provenance

MINISTRIES = ["MEF", "MI", "MJ", "MINARM", "MENJ", "MSS", "MTES", "MAA", "MC", "SPM"]
START = date(2012, 1, 1)
TODAY = date(2026, 1, 1)


def provenance(day: date, correction: bool = False) -> Provenance:
    """The generator's provenance for a change effective on `day`."""
    narrative = "correction of an earlier figure" if correction else None
    return Provenance(day, "generator", "bench", narrative, correction)


def generate(
    portfolio: Portfolio,
    *,
    projects: int,
    events_per_project: int,
    seed: int = 7,
    batch: int = 10,
    progress: Callable[[int], None] | None = None,
) -> list[Project]:
    """Record the portfolio, `batch` projects per atomic save; return the projects."""
    rng = random.Random(seed)
    made: list[Project] = []
    pending: list[Project] = []
    for i in range(projects):
        start = START + timedelta(days=rng.randrange(0, 3000))
        registered = start + timedelta(days=rng.randrange(0, 120))
        project = Project.register(
            name=f"Projet {i:05d} {rng.choice(['SI', 'Plateforme', 'Portail', 'Refonte'])}",
            ministry_code=rng.choice(MINISTRIES),
            interministerial=rng.random() < 0.3,
            start_date=start,
            phase=rng.choice(PHASES[:2]),
            cost=Decimal(rng.randrange(1_000, 400_000)) * 1000,
            planned_end=start + timedelta(days=rng.randrange(700, 2500)),
            provenance=provenance(registered),
            today=TODAY,
        )
        day = registered
        for _ in range(events_per_project - 1):
            day = min(day + timedelta(days=rng.randrange(1, 40)), TODAY)
            backdated = rng.random() < 0.02
            when = (
                max(registered, day - timedelta(days=rng.randrange(30, 400))) if backdated else day
            )
            _one_change(project, rng, provenance(when, correction=backdated))
        pending.append(project)
        if len(pending) >= batch:
            portfolio.save(*pending)
            made.extend(pending)
            if progress is not None:
                progress(len(pending))
            pending = []
    if pending:
        portfolio.save(*pending)
        made.extend(pending)
        if progress is not None:
            progress(len(pending))
    return made


def record(portfolio: Portfolio, *, projects: int, events_per_project: int) -> list[Project]:
    """`generate` with a progress bar on stderr."""
    with tqdm(total=projects, desc="generate", unit="proj", file=sys.stderr) as bar:
        return generate(
            portfolio, projects=projects, events_per_project=events_per_project, progress=bar.update
        )


def _one_change(project: Project, rng: random.Random, prov: Provenance) -> None:
    roll = rng.random()
    try:
        if roll < 0.35:
            base = project.current_cost or Decimal(1_000_000)
            factor = Decimal(rng.randrange(95, 112)) / 100
            project.reestimate_cost(
                (base * factor).quantize(Decimal(1)), provenance=prov, today=TODAY
            )
        elif roll < 0.6:
            end = project.planned_end or TODAY
            project.reestimate_schedule(
                end + timedelta(days=rng.randrange(-30, 120)), provenance=prov, today=TODAY
            )
        elif roll < 0.85:
            rating = rng.choice(RATINGS)
            if rating == "Red":
                prov = replace(prov, narrative="difficultés signalées")
            project.report_status(rating, provenance=prov, today=TODAY)
        elif roll < 0.93:
            rank = PHASES.index(project.phase)
            if rank < 3:
                project.transition_phase(PHASES[rank + 1], provenance=prov, today=TODAY)
            else:
                project.reestimate_cost(
                    (project.current_cost or Decimal(1)) + 1000, provenance=prov, today=TODAY
                )
        elif roll < 0.96 and not project.figures_withheld:
            project.withhold_figures(provenance=prov, today=TODAY)
        elif project.figures_withheld:
            project.disclose_figures(provenance=prov, today=TODAY)
        else:
            project.revise_details(
                {"interministerial": not project.interministerial}, provenance=prov, today=TODAY
            )
    except DomainError:
        project.reestimate_cost(
            (project.current_cost or Decimal(1)) + 1000, provenance=prov, today=TODAY
        )
