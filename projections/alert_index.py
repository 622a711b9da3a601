"""Incremental alert evaluation, pure: rules indexed by scope and metric, running portfolio sums.

The alerts projector keeps one `RuleIndex` and one `PortfolioSums` warm; for a project's
new facts it asks `RuleIndex.project_checks` for the checks whose value or scope moved, and
updates the sums by the project's delta. The checks are the ones of
`alert_conditions.project_checks` that can flip (a rule whose value and scope did not move
cannot: `Rule.next_active` is idempotent), so the alerts are the same.

Subscriptions with equal rules (the same metric, comparator, thresholds and scope) share
one `RuleChecks`: the value is read once and the condition computed once per prior state,
then applied to each subscription's own condition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

from domain.subscription import PORTFOLIO_METRICS, Rule
from domain.values import canonical_ministry
from projections.alert_values import Facts, metric_value
from projections.figures import q2

Bucket = dict[str, dict[Rule, dict[str, None]]]  # metric -> rule -> its subscription ids
_SUMMED = ("in_portfolio", "engaged", "drift")  # the facts the portfolio sums read
EXACT = 200  # digits of the running sums: Decimal sums stay exact, whatever the order


@dataclass(frozen=True)
class RuleChecks:
    """One rule to check on one subject (its value now), for every subscription holding it."""

    rule: Rule
    subscription_ids: Collection[str]
    value: Decimal | None


class RuleIndex:
    """The live rules, by subscription id and indexed by scope (project, ministry, all)."""

    def __init__(
        self,
        rules: Mapping[str, Rule] | None = None,
        stable: Callable[[str], str] = canonical_ministry,
    ) -> None:
        self.stable = stable  # a ministry code -> its stable code (the ministries reference)
        self.rules: dict[str, Rule] = {}
        self.by_project: dict[str, Bucket] = {}
        self.by_ministry: dict[str, Bucket] = {}
        self.everywhere: Bucket = {}
        self.portfolio: Bucket = {}
        for sid, rule in (rules or {}).items():
            self.put(sid, rule)

    def put(self, sid: str, rule: Rule) -> None:
        """Add or replace subscription `sid`'s rule."""
        self.remove(sid)
        self.rules[sid] = rule
        self._bucket(rule, create=True).setdefault(rule.metric, {}).setdefault(rule, {})[sid] = None

    def remove(self, sid: str) -> None:
        """Forget subscription `sid`'s rule (nothing if it has none)."""
        rule = self.rules.pop(sid, None)
        if rule is None:
            return
        bucket = self._bucket(rule, create=False)
        rules = bucket.get(rule.metric, {})
        sids = rules.get(rule, {})
        sids.pop(sid, None)
        if not sids:
            rules.pop(rule, None)
        if not rules:
            bucket.pop(rule.metric, None)

    def _bucket(self, rule: Rule, *, create: bool) -> Bucket:
        if rule.metric in PORTFOLIO_METRICS:
            return self.portfolio
        if rule.scope == "project":
            table, key = self.by_project, rule.scope_value or ""
        elif rule.scope == "ministry":
            table, key = self.by_ministry, self.stable(rule.scope_value or "")
        else:
            return self.everywhere
        return table.setdefault(key, {}) if create else table.get(key, {})

    def covering(self, project_id: str, facts: Facts | None) -> list[Bucket]:
        """The buckets of the project-metric rules that cover a project with these facts."""
        if facts is None:
            return []
        found = [self.everywhere]
        if project_id in self.by_project:
            found.append(self.by_project[project_id])
        code = facts.get("ministry_code")
        if code is not None and self.stable(str(code)) in self.by_ministry:
            found.append(self.by_ministry[self.stable(str(code))])
        return found

    def project_checks(
        self, project_id: str, before: Facts | None, after: Facts
    ) -> list[RuleChecks]:
        """The project-metric checks that can flip: the value moved, or the scope did."""
        old, new = self.covering(project_id, before), self.covering(project_id, after)
        moved: dict[str, bool] = {}
        checks: list[RuleChecks] = []
        same = len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))
        for bucket in new if same else _distinct(old + new):  # the same scopes: none moved
            scope_moved = not same and _within(bucket, old) != _within(bucket, new)
            for metric, rules in bucket.items():
                if not scope_moved:
                    if metric not in moved:
                        moved[metric] = before is None or metric_value(
                            metric, before
                        ) != metric_value(metric, after)
                    if not moved[metric]:
                        continue
                value = metric_value(metric, after)
                checks.extend(RuleChecks(rule, sids, value) for rule, sids in rules.items())
        return checks


class PortfolioSums:
    """The portfolio metrics' running sums over the projects followed, updated by deltas."""

    def __init__(self, projects: Iterable[Facts] = ()) -> None:
        self.engaged = Decimal(0)
        self.exponents: Counter[int] = Counter()  # a sum's exponent is its terms' smallest
        self.drift_total = Decimal(0)
        self.drifts = 0
        for facts in projects:
            self.add(facts, 1)

    def add(self, facts: Facts | None, sign: int) -> None:
        """Count a project's facts in (`sign` 1) or out (-1)."""
        if facts is None or not facts["in_portfolio"]:
            return
        with localcontext() as ctx:
            ctx.prec = EXACT
            if facts["engaged"]:
                engaged = Decimal(facts["engaged"])
                self.engaged += sign * engaged
                self.exponents[int(engaged.as_tuple().exponent)] += sign
            if facts["drift"] is not None:
                self.drift_total += sign * Decimal(facts["drift"])
                self.drifts += sign

    def value(self, metric: str) -> Decimal | None:
        """A portfolio metric's value now (as `alert_values.portfolio_value`)."""
        if metric == "portfolio_total_cost_engaged":
            exponent = min([0, *(e for e, n in self.exponents.items() if n)])
            with localcontext() as ctx:
                ctx.prec = EXACT
                total = self.engaged.quantize(Decimal(1).scaleb(exponent))
            return +total
        return q2(self.drift_total / self.drifts) if self.drifts else None

    def replace(self, rules: Bucket, before: Facts | None, after: Facts) -> list[RuleChecks]:
        """Swap a project's facts; the checks of the portfolio rules whose value moved (their
        subject: the portfolio)."""
        if before is not None and all(before[k] == after[k] for k in _SUMMED):
            return []  # the same terms out and in: every sum as it was
        values = {metric: self.value(metric) for metric in rules}
        self.add(before, -1)
        self.add(after, 1)
        checks: list[RuleChecks] = []
        for metric, by_rule in rules.items():
            value = self.value(metric)
            if value != values[metric]:
                checks.extend(RuleChecks(rule, sids, value) for rule, sids in by_rule.items())
        return checks


def _distinct(buckets: list[Bucket]) -> list[Bucket]:
    found: list[Bucket] = []
    for bucket in buckets:
        if not _within(bucket, found):
            found.append(bucket)
    return found


def _within(bucket: Bucket, buckets: list[Bucket]) -> bool:
    return any(bucket is other for other in buckets)
