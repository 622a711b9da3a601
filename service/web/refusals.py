"""The domain's and the schemas' refusals in the page's language.

The domain and the API speak English (their messages are part of the API's problems); a page
shows the same refusal from the catalogues. Each known message is recognised by a pattern,
its values kept; an unknown message is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask_babel import gettext

from service.web.i18n import day


def _day(text: str) -> str:
    try:
        return day(date.fromisoformat(text))
    except ValueError:
        return text


WHAT = {
    "a Red rating": lambda: gettext("A Red rating needs a narrative: say what went wrong."),
    "a correction dated before registration": lambda: gettext(
        "A correction dated before the registration needs a narrative."
    ),
    "a reopening": lambda: gettext("A reopening needs a narrative."),
}

# (pattern of the English message, its message in the page's language from the groups)
KNOWN: list[tuple[re.Pattern[str], Callable[[dict[str, str]], str]]] = [
    (
        re.compile(r"(?P<what>.+) needs a narrative"),
        lambda m: WHAT[m["what"]]() if m["what"] in WHAT else m[""],
    ),
    (
        re.compile(r"effective_date (?P<day>\S+) is in the future \(today is (?P<today>\S+)\)"),
        lambda m: gettext(
            "The effective date, %(day)s, is in the future (today is %(today)s).",
            day=_day(m["day"]),
            today=_day(m["today"]),
        ),
    ),
    (
        re.compile(
            r"effective_date (?P<day>\S+) is before the project's registration "
            r"\((?P<registered>\S+)\).*"
        ),
        lambda m: gettext(
            "The effective date, %(day)s, is before the project's registration (%(registered)s).",
            day=_day(m["day"]),
            registered=_day(m["registered"]),
        ),
    ),
    (
        re.compile(r"the project is already in phase '(?P<phase>[^']+)'"),
        lambda m: gettext("The project is already in phase %(phase)s.", phase=m["phase"]),
    ),
    (
        re.compile(r"moving back from '(?P<old>[^']+)' to '(?P<new>[^']+)' needs a narrative"),
        lambda m: gettext(
            "Moving back from %(old)s to %(new)s needs a narrative.", old=m["old"], new=m["new"]
        ),
    ),
    (
        re.compile(r"planned_end is before (the project's start|start_date)"),
        lambda m: gettext("The planned end is before the project's start."),
    ),
    (
        re.compile(r"the project is closed: only a reopening is accepted"),
        lambda m: gettext("The project is closed: only a reopening is accepted."),
    ),
    (
        re.compile(r"\w+ is implausibly large: .*"),
        lambda m: gettext("This amount is implausibly large."),
    ),
    (
        re.compile(r"\w+ has more than two decimal places: .*"),
        lambda m: gettext("An amount has at most two decimal places."),
    ),
    (
        re.compile(r"\w+ must be a positive amount, got .*"),
        lambda m: gettext("An amount must be positive."),
    ),
    (
        re.compile(r"a rating rule compares with >= \(at or worse\)"),
        lambda m: gettext("A rating rule compares with ≥ (this rating or worse)."),
    ),
    (
        re.compile(r"(?P<metric>\w+) is a portfolio metric: its scope is portfolio"),
        lambda m: gettext("This is a figure of the whole portfolio: its scope is the portfolio."),
    ),
    (
        re.compile(r"a ministry scope names a ministry code"),
        lambda m: gettext("A ministry scope names a ministry code."),
    ),
    (
        re.compile(r"a project scope names a project id"),
        lambda m: gettext("A project scope names a project id."),
    ),
    (
        re.compile(r"threshold must be a (decimal number|finite number below 1e15)"),
        lambda m: gettext("The threshold must be a number."),
    ),
    (
        re.compile(r"a webhook channel needs a url"),
        lambda m: gettext("A webhook channel needs a URL."),
    ),
    (
        re.compile(r"an e-mail channel needs an address"),
        lambda m: gettext("An e-mail channel needs an address."),
    ),
    (
        re.compile(r"(a webhook URL|the webhook URL) .*"),
        lambda m: gettext("This webhook URL cannot be used: %(why)s", why=m[""]),
    ),
    (
        re.compile(r"Missing data for required field\."),
        lambda m: gettext("This field is required."),
    ),
    (re.compile(r"Not a valid date\."), lambda m: gettext("This is not a valid date.")),
    (re.compile(r"Not a valid number\."), lambda m: gettext("This is not a valid number.")),
    (
        re.compile(r"Must be one of: .*"),
        lambda m: gettext("Choose one of the values offered."),
    ),
]


def translated(message: str) -> str:
    """`message` (a refusal of the domain or of a schema) in the page's language."""
    for pattern, shown in KNOWN:
        found = pattern.fullmatch(message.strip())
        if found is not None:
            return shown({"": message, **found.groupdict()})
    return message
