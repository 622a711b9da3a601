"""flask-smorest's Blueprint, with one schema instance per argument schema class.

webargs instantiates a schema given as a class on every request (`Parser._get_schema`):
about 0.1 ms of CPU per command. The instances are configuration only (their fields and
options; nothing per request is stored on them), so one per class serves every request and
thread.
"""

from __future__ import annotations

import threading
from typing import Any

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser


class SchemaReusingParser(FlaskParser):
    """A FlaskParser that builds each argument schema class once, not once per request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}
        self._lock = threading.Lock()

    def _get_schema(self, argmap: Any, req: Any) -> ma.Schema:
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                with self._lock:
                    schema = self._schemas.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose `arguments` reuse one schema instance per class."""

    ARGUMENTS_PARSER = SchemaReusingParser()
