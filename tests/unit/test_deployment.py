"""The production deployment files agree with the code.

No container engine runs on the development and CI machines, so docker-compose.yml, the
Dockerfile and .env.example are verified here, statically and against the code itself:
the commands they run are real `panorama` subcommands, the variables they set are read by
Settings, and every variable the code reads is documented. Renaming a subcommand or
reading a new environment variable without documenting it makes these tests fail.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import pytest
import yaml
from click.testing import CliRunner

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

APP_SERVICES = ("api", "worker", "beat")
REQUIRED_SERVICES = ("postgres", "redis", *APP_SERVICES)
# One-shot services (they run to completion) have nothing to health-check; each is
# documented as such in docker-compose.yml and must really be a one-shot (checked below).
HEALTHCHECK_EXEMPT = frozenset({"migrate"})
# The .env.example section whose variables only docker-compose.yml interpolates.
COMPOSE_ONLY_MARKER = "# docker compose only:"
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


# -- reading the files ---------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
    return found


def command_args(service: Mapping[str, Any]) -> list[str]:
    """A compose `command` (string or list) as an argument list."""
    command = service.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose `environment` (mapping or list of NAME=value) as a mapping."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {name: value for name, _, value in pairs}
    return {str(name): "" if value is None else str(value) for name, value in env.items()}


def interpolate(value: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's interpolation: $$ is a literal $, ${NAME:-default} and ${NAME-default}."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        known = env or {}
        if name in known and (known[name] != "" or operator != ":-"):
            return known[name]
        return default if operator else ""

    return INTERPOLATION.sub(replace, value)


def interpolated_names() -> set[str]:
    """The variables docker-compose.yml takes from .env or the shell."""
    text = COMPOSE.read_text(encoding="utf-8")
    return {m.group(1) for m in INTERPOLATION.finditer(text) if m.group(1)}


@dataclass(frozen=True)
class Documented:
    """One variable of .env.example: its commented assignment and its description."""

    name: str
    value: str
    description: str
    compose_only: bool


def env_example() -> dict[str, Documented]:
    """Parse .env.example: `# NAME: description` blocks ending in `# NAME=default`."""
    found: dict[str, Documented] = {}
    compose_only = False
    current: str | None = None
    lines: list[str] = []
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.lower().startswith(COMPOSE_ONLY_MARKER):
            compose_only = True
            continue
        assignment = re.fullmatch(r"#?\s?([A-Z][A-Z0-9_]*)=(.*)", line)
        if assignment:
            name, value = assignment.group(1), assignment.group(2).strip()
            assert name not in found, f".env.example lists {name} twice"
            description = "\n".join(lines) if current == name else ""
            found[name] = Documented(name, value, description, compose_only)
            current, lines = None, []
            continue
        heading = re.match(r"# ([A-Z][A-Z0-9_]*):\s", line)
        if heading:
            current, lines = heading.group(1), [line]
        elif current is not None and line.startswith("#"):
            lines.append(line)
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """A Dockerfile CMD/ENTRYPOINT argument, JSON (exec) form or shell form."""
    if arguments.startswith("["):
        parsed = yaml.safe_load(arguments)  # a JSON array is YAML too
        assert isinstance(parsed, list)
        return [str(part) for part in parsed]
    return shlex.split(arguments)


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def package_roots() -> list[str]:
    """The top-level packages pyproject.toml ships (tool.setuptools.packages.find.include)."""
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.split(".")[0].rstrip("*") for pattern in include})


# -- what the code reads -------------------------------------------------------------------


@dataclass(frozen=True)
class EnvRead:
    name: str | None  # None: the name is not a literal
    where: str


def _is_environ(node: ast.expr) -> bool:
    """os.environ or a bare `environ` (from os import environ)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _reads(tree: ast.AST, where: str, *, any_mapping: bool) -> Iterator[EnvRead]:
    """Environment reads in `tree`; with any_mapping, `x.get("NAME")` on any x counts."""
    for node in ast.walk(tree):
        location = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            func = node.func
            name = _literal(node.args[0]) if node.args else None
            if (isinstance(func, ast.Name) and func.id == "getenv") or (
                isinstance(func, ast.Attribute) and func.attr == "getenv"
            ):
                yield EnvRead(name, location)
            elif isinstance(func, ast.Attribute) and func.attr in {"get", "pop", "setdefault"}:
                if _is_environ(func.value):
                    yield EnvRead(name, location)
                elif any_mapping and name is not None and ENV_NAME.fullmatch(name):
                    yield EnvRead(name, location)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if _is_environ(node.value) or (
                any_mapping and ENV_NAME.fullmatch(_literal(node.slice) or "")
            ):
                yield EnvRead(_literal(node.slice), location)


@cache
def from_env_reads() -> tuple[EnvRead, ...]:
    """Every variable Settings.from_env reads (whatever it calls the mapping)."""
    path = ROOT / "service" / "config.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "from_env":
                    return tuple(_reads(item, "service/config.py", any_mapping=True))
    raise AssertionError("Settings.from_env not found in service/config.py")


@cache
def package_reads() -> tuple[EnvRead, ...]:
    """Every os.environ / os.getenv read in our packages, plus those of Settings.from_env."""
    reads: list[EnvRead] = list(from_env_reads())
    for root in package_roots():
        for path in sorted((ROOT / root).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            reads.extend(_reads(tree, relative, any_mapping=False))
    return tuple(reads)


def settings_names() -> set[str]:
    return {r.name for r in from_env_reads() if r.name}


def read_names() -> set[str]:
    return {r.name for r in package_reads() if r.name}


# -- the CLI -------------------------------------------------------------------------------


def console_script() -> click.Command:
    """The object behind the `panorama` console script, resolved from pyproject.toml."""
    target = pyproject()["project"]["scripts"]["panorama"]
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), f"{target} is not a click command"
    return command


def help_of(args: list[str]) -> tuple[int, str]:
    """Exit code and output of `panorama <args> --help` (never runs the command itself)."""
    result = CliRunner().invoke(console_script(), [*args, "--help"])
    return result.exit_code, result.output


# -- docker-compose.yml --------------------------------------------------------------------


def test_compose_parses_and_declares_the_production_services() -> None:
    missing = [name for name in REQUIRED_SERVICES if name not in services()]
    assert not missing, f"docker-compose.yml lacks the services {missing}"
    assert services()["postgres"]["image"].startswith("postgres:16")
    assert services()["redis"]["image"].startswith("redis:7")
    assert "version" not in compose(), "the top-level `version` key is obsolete"


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if name in HEALTHCHECK_EXEMPT:
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        assert test, f"service {name} has no healthcheck"
        assert not check.get("disable"), f"service {name} disables its healthcheck"
        assert test not in (["NONE"], "NONE"), f"service {name} disables its healthcheck"


def test_healthcheck_exemptions_are_one_shots_that_the_others_wait_for() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name in HEALTHCHECK_EXEMPT & set(services()):
        service = services()[name]
        assert str(service.get("restart", "no")) == "no", f"{name} must be a one-shot"
        assert "healthcheck" not in service
        assert "one-shot" in text.lower(), "document why the one-shot has no healthcheck"
        for app in APP_SERVICES:
            condition = services()[app]["depends_on"][name]["condition"]
            assert condition == "service_completed_successfully", (app, name)


def test_every_panorama_command_is_a_real_subcommand() -> None:
    checked = []
    for name, service in services().items():
        args = command_args(service)
        if name in APP_SERVICES:
            assert args[:1] == ["panorama"], f"{name} must run a `panorama` subcommand"
        if args[:1] != ["panorama"]:
            continue
        code, output = help_of(args[1:])
        assert code == 0, f"{name}: `{shlex.join(args)}` is not a panorama command:\n{output}"
        checked.append(name)
    assert set(APP_SERVICES) <= set(checked)


def test_the_subcommand_check_would_catch_a_renamed_command() -> None:
    assert help_of(["serve"])[0] == 0
    assert help_of(["no-such-subcommand"])[0] != 0
    assert help_of(["projections", "no-such-subcommand"])[0] != 0


@pytest.mark.parametrize(("service", "subcommand"), [("api", "serve"), ("worker", "worker")])
def test_each_role_runs_its_own_subcommand(service: str, subcommand: str) -> None:
    assert command_args(services()[service])[:2] == ["panorama", subcommand]


def test_beat_runs_beat() -> None:
    assert command_args(services()["beat"])[:2] == ["panorama", "beat"]


def test_app_services_depend_on_healthy_postgres_and_redis() -> None:
    for name in APP_SERVICES:
        depends = services()[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency in ("postgres", "redis"):
            condition = depends.get(dependency, {}).get("condition")
            assert condition == "service_healthy", f"{name} must wait for a healthy {dependency}"


def test_app_services_read_an_optional_env_file() -> None:
    for name in APP_SERVICES:
        entries = services()[name].get("env_file")
        assert isinstance(entries, list), f"{name}: env_file should be a list"
        assert {"path": ".env", "required": False} in entries, name


def test_app_services_environment_is_known_to_settings() -> None:
    known = settings_names()
    for name, service in services().items():
        if name not in APP_SERVICES and name not in HEALTHCHECK_EXEMPT:
            continue
        unknown = sorted(set(environment(service)) - known)
        assert not unknown, f"{name} sets variables Settings.from_env never reads: {unknown}"


def test_app_services_talk_to_the_compose_postgres_and_redis() -> None:
    for name in APP_SERVICES:
        env = {k: interpolate(v) for k, v in environment(services()[name]).items()}
        settings = Settings.from_env(env)
        assert settings.is_postgres, f"{name} must use PostgreSQL"
        database = urlparse(settings.database_url)
        assert (database.hostname, database.port) == ("postgres", 5432), name
        assert settings.redis_url is not None, f"{name} needs REDIS_URL"
        assert urlparse(settings.redis_url).hostname == "redis", name


def test_no_secret_is_hard_coded() -> None:
    postgres_password = environment(services()["postgres"])["POSTGRES_PASSWORD"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:-[^}]*dev[^}]*\}", postgres_password), (
        "the PostgreSQL password must come from ${POSTGRES_PASSWORD:-<clearly a dev default>}"
    )
    for name, service in services().items():
        for key, value in environment(service).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")):
                assert value.startswith("${"), f"{name}: {key} is hard-coded"
            if key == "DATABASE_URL":
                password = urlparse(value).password or ""
                assert password.startswith("${POSTGRES_PASSWORD"), f"{name}: {key} password"
    defaults = {k: interpolate(v) for k, v in environment(services()["api"]).items()}
    password = interpolate(postgres_password)
    assert urlparse(defaults["DATABASE_URL"]).password == password, "one password, two places"


def test_compose_interpolations_are_documented_as_compose_only() -> None:
    documented = env_example()
    for name in interpolated_names():
        assert name in documented, f"docker-compose.yml uses ${{{name}}}: document it"
        assert documented[name].compose_only or name in read_names(), name


def test_api_listens_on_every_interface_and_publishes_its_port() -> None:
    api = services()["api"]
    settings = Settings.from_env({k: interpolate(v) for k, v in environment(api).items()})
    assert settings.host == "0.0.0.0"
    published = [str(p) for p in api.get("ports", [])]
    assert any(p.rsplit(":", 1)[-1] == str(settings.port) for p in published), published
    assert settings.port == 8000


def test_api_healthcheck_asks_readyz_with_python() -> None:
    api = services()["api"]
    test = api["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python" and test[2] == "-c", test
    code = test[3]
    compile(code, "<api healthcheck>", "exec")
    port = Settings.from_env({k: interpolate(v) for k, v in environment(api).items()}).port
    assert f"http://127.0.0.1:{port}/readyz" in code
    assert "curl" not in " ".join(test), "python:3.11-slim has no curl"


def test_health_endpoints_answer(tmp_path: Path) -> None:
    from service.app import create_app

    app = create_app(settings=Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}))
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json()["status"] == "ready"
    finally:
        app.extensions["panorama"].close()


def test_worker_healthcheck_pings_this_worker_through_our_celery_app() -> None:
    from celery import Celery

    worker = services()["worker"]
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", test
    args = shlex.split(interpolate(test[1]))
    assert args[0] == "celery" and "inspect" in args and "ping" in args, args
    target = args[args.index("-A") + 1]
    module, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module), attribute or "app")
    assert isinstance(app, Celery), f"{target} is not a Celery app"
    destination = args[args.index("-d") + 1]
    assert destination == "celery@$HOSTNAME", "the default node name is celery@<hostname>"
    worker_args = command_args(worker)
    assert not any(a.startswith(("-n", "--hostname")) for a in worker_args), (
        "a custom node name needs the same name in the healthcheck"
    )


def test_beat_healthcheck_is_documented_and_uses_its_broker() -> None:
    beat = services()["beat"]
    test = beat["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    compile(test[3], "<beat healthcheck>", "exec")
    assert "REDIS_URL" in test[3] and "REDIS_URL" in environment(beat)
    assert "beat" in DEPLOYMENT_DOC.read_text(encoding="utf-8").lower()


# -- .env.example and the code ---------------------------------------------------------------


def test_the_code_reading_is_found() -> None:
    """Sanity of the source scan itself: it sees the reads we know of."""
    assert {"DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "PANORAMA_HOST"} <= settings_names()
    # Since the Celery app is made from Settings, every read is Settings.from_env's.
    assert any(r.name == "REDIS_URL" and r.where.startswith("service/") for r in package_reads())


def test_environment_reads_use_literal_names() -> None:
    dynamic = [r.where for r in package_reads() if r.name is None]
    assert not dynamic, f"environment read with a computed name (cannot be documented): {dynamic}"


def test_every_variable_the_code_reads_is_documented() -> None:
    documented = {n for n, d in env_example().items() if not d.compose_only}
    missing = sorted(read_names() - documented)
    where = {r.name: r.where for r in package_reads() if r.name in missing}
    assert not missing, f"read but not in .env.example: {where}"


def test_every_documented_variable_is_read_by_the_code() -> None:
    for name, documented in env_example().items():
        if documented.compose_only:
            assert name in interpolated_names(), f"{name} is not used by docker-compose.yml"
            assert name not in read_names(), f"{name} is read by the code: move it up"
        else:
            assert name in read_names(), f".env.example documents {name}, nothing reads it"


def test_every_documented_variable_has_a_meaning_a_default_and_an_example() -> None:
    for name, documented in env_example().items():
        assert documented.description, f"{name} needs a `# {name}: meaning` comment above it"
        assert "Default:" in documented.description, f"{name}: say its default"
        assert "Example:" in documented.description, f"{name}: give an example"


def test_documented_defaults_are_the_real_defaults() -> None:
    defaults = Settings.from_env({})
    for name in settings_names():
        value = env_example()[name].value
        assert Settings.from_env({name: value}) == defaults, f"{name}={value} is not the default"


def test_documented_examples_are_accepted_and_take_effect() -> None:
    defaults = Settings.from_env({})
    for name in settings_names():
        match = re.search(r"Example:\s*(\S+)", env_example()[name].description)
        assert match, name
        changed = Settings.from_env({name: match.group(1)})
        assert changed != defaults, f"{name}={match.group(1)} changes nothing"


def test_env_example_says_the_embedded_default_runs_with_nothing_set() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "embedded default" in text and "var/" in text
    assert Settings.from_env({}).database_url.startswith("sqlite:///var/")


# -- Dockerfile, .dockerignore, pyproject ----------------------------------------------------


def test_dockerfile_builds_the_package_for_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    installs = [r for r in runs if re.search(r"pip install\s+(\S+\s+)*\.(\s|$)", r)]
    assert installs, "the Dockerfile must `pip install .`"
    assert not any("[dev]" in r or " -e " in r for r in installs), "no dev extras, no editable"
    copied = " ".join(arguments for keyword, arguments in instructions if keyword == "COPY")
    for root in package_roots():
        assert re.search(rf"(^|\s){root}(/|\s)", copied), f"the Dockerfile does not copy {root}/"
    assert "pyproject.toml" in copied
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")
    assert ("EXPOSE", "8000") in instructions


def test_dockerfile_cmd_is_a_panorama_subcommand() -> None:
    commands = [exec_form(args) for keyword, args in dockerfile_instructions() if keyword == "CMD"]
    assert commands, "the Dockerfile needs a CMD"
    command = commands[-1]
    assert command[:2] == ["panorama", "serve"], command
    code, output = help_of(command[1:])
    assert code == 0, output


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", "var", ".git"} <= patterns
    shipped = {"pyproject.toml", "README.md", *package_roots()}
    assert not shipped & patterns, f".dockerignore excludes what the build needs: {shipped}"


def test_console_script_is_the_click_group() -> None:
    from service.cli import main

    assert pyproject()["project"]["scripts"]["panorama"] == "service.cli:main"
    script = console_script()
    assert script is main
    assert isinstance(script, click.Group)
    assert {"serve", "worker", "beat"} <= set(script.commands)


def test_deployment_doc_states_how_the_compose_file_is_verified() -> None:
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    for needle in ("docker compose", "no container engine", "/healthz", "/readyz", "advisory"):
        assert needle in text.lower(), f"docs/deployment.md should mention {needle!r}"
