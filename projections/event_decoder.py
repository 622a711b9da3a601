"""Stored events decoded for a bulk replay: the mapper's own decoding, with less per event.

`Mapper.to_domain_event` resolves the topic, decodes the JSON through a general object hook,
finds the id convertor and checks for upcasting on every event. For a replay of a million
events, `event_decoder` does the same steps with what can be looked up once per topic looked
up once, and gives the same event objects (same class, same attributes in the same order).
Anything unusual (a cipher or compressor, another transcoder, a class with upcasters, JSON
the fast path does not read) goes through the mapper itself, errors included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import resolve_topic

Decode = Callable[[UUID | str, int, str, bytes], Any]


def event_decoder(mapper: Mapper[UUID]) -> Decode:
    """A function (originator id, version, topic, state) -> the domain event, equal to
    `mapper.to_domain_event(StoredEvent(...))`."""

    def slow(originator_id: UUID | str, version: int, topic: str, state: bytes) -> Any:
        return mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))

    transcoder = mapper.transcoder
    if mapper.cipher or mapper.compressor or type(transcoder) is not JSONTranscoder:
        return slow
    decoders = {name: transcoding.decode for name, transcoding in transcoder.names.items()}

    def hook(d: dict[str, Any]) -> Any:
        # JSONTranscoder._decode_obj; an unknown transcoding raises, for the slow path
        if len(d) == 2:
            try:
                return decoders[d["_type_"]](d["_data_"])
            except KeyError:
                if "_type_" in d and "_data_" in d:
                    raise
        return d

    raw_decode = json.JSONDecoder(object_hook=hook).raw_decode
    classes: dict[tuple[str, type], tuple[type, Callable[[Any], Any]] | None] = {}

    def lookup(topic: str, id_type: type) -> tuple[type, Callable[[Any], Any]] | None:
        cls = resolve_topic(topic)
        if getattr(cls, "class_version", 1) != 1:
            return None  # upcasting: the mapper's business
        return cls, find_id_convertor(cls, id_type)

    def decode(originator_id: UUID | str, version: int, topic: str, state: bytes) -> Any:
        key = (topic, type(originator_id))
        if key not in classes:
            classes[key] = lookup(*key)
        found = classes[key]
        if found is None:
            return slow(originator_id, version, topic, state)
        try:
            text = state.decode("utf8")
            event_state, end = raw_decode(text)
        except Exception:
            return slow(originator_id, version, topic, state)
        if end != len(text) or type(event_state) is not dict:
            return slow(originator_id, version, topic, state)
        cls, id_convertor = found
        event_state["originator_id"] = id_convertor(originator_id)
        event_state["originator_version"] = version
        event_state.pop("class_version", 1)
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event

    return decode
