"""flask-smorest's Blueprint, with one schema instance per argument schema class and no
runtime layer for an alternative response.

webargs instantiates a schema given as a class on every request (`Parser._get_schema`):
about 0.1 ms of CPU per command. The instances are configuration only (their fields and
options; nothing per request is stored on them), so one per class serves every request and
thread.

`alt_response` only documents a response, yet flask-smorest wraps the view in one more
function per use, each calling `current_app.ensure_sync(view)` on every request: nine
layers on a command (its refusals, 401 and 403), 9 µs of CPU a call. For a plain
synchronous function that call is the function itself, so the view is given the
documentation instead, on a copy of the function (the same code, globals, defaults and
closure: the same calls), its attributes those of flask-smorest's wrapper (`_apidoc`,
`__wrapped__`, the policy of `auth`).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from types import FunctionType
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


def _documented_copy(func: FunctionType, wrapper: Callable[..., Any]) -> FunctionType:
    """`func` again, a new function object carrying `wrapper`'s attributes (its docs)."""
    copy = FunctionType(
        func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__qualname__ = func.__qualname__
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    copy.__annotations__ = func.__annotations__
    copy.__dict__.update(wrapper.__dict__)
    return copy


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose `arguments` reuse one schema instance per class, and
    whose `alt_response` adds documentation without a layer run on every request."""

    ARGUMENTS_PARSER = SchemaReusingParser()

    def alt_response(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        document = super().alt_response(*args, **kwargs)

        def decorator(func: Any) -> Any:
            wrapper = document(func)
            if type(func) is not FunctionType or inspect.iscoroutinefunction(func):
                return wrapper  # ensure_sync would not return it unchanged: keep the layer
            return _documented_copy(func, wrapper)

        return decorator
