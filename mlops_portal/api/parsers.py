"""Request bodies: JSON of at most ``settings.API_MAX_BODY_BYTES`` (413 beyond), and serializers
that refuse fields they do not know.

Every JSON document the portal accepts from outside (API bodies, the JSON fields of forms) is read
by ``json_loads``: nesting deeper than ``MAX_JSON_DEPTH`` is refused by a scan of the text before
the (recursive) parser runs, then an iterative walk refuses NUL characters and unpaired surrogates
in any string or key (PostgreSQL's text and JSONB cannot store them). NaN and Infinity are refused,
and so is a key repeated in one object.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from django.conf import settings
from django.http import QueryDict
from rest_framework import exceptions, parsers, serializers

from .errors import PayloadTooLarge

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON document (the portal's own
documents nest 3 levels at most)."""


class JSONInputError(ValueError):
    """A JSON document the portal refuses; ``field`` is the top-level key it sits under, if any."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def unpaired_surrogates(text: str) -> bool:
    """Whether ``text`` holds an unpaired surrogate (``"\\ud800"`` in JSON): not UTF-8 text."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_text(text: str, field: str | None) -> None:
    where = f" (in {field})" if field is not None else ""
    if "\x00" in text:
        raise JSONInputError(f"NUL characters (\\u0000) are not allowed{where}.", field=field)
    if unpaired_surrogates(text):
        raise JSONInputError(f"Unpaired surrogate escapes (\\ud800…) are not text{where}.", field=field)


def _check(document: Any, max_depth: int) -> None:
    """Walk the parsed document without recursion: depth, NUL characters and unpaired surrogates
    in every string and key. Errors name the top-level key they sit under."""
    top = document if isinstance(document, dict) else None
    stack: list[tuple[Any, str | None, int]] = [(document, None, 0)]
    while stack:
        container, field, depth = stack.pop()
        if depth >= max_depth:
            raise JSONInputError(f"JSON nested deeper than {max_depth} levels is not accepted.")
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(key, str):
                _check_text(key, field)
            where = key if container is top else field
            if isinstance(item, str):
                _check_text(item, where)
            elif isinstance(item, (dict, list)):
                stack.append((item, where, depth + 1))


# A string literal runs to its closing quote, or to the end of an unterminated document (so the
# scan stays linear on hostile input such as a megabyte of '"\\"').
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)')
_BRACKET = re.compile(r"[\[\]{}]")


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than ``max_depth``, counted on the raw text
    (string literals blanked out) before any parser recurses into it."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > max_depth:
            return True
    return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number; use a finite number")


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys each appear once: other readers keep the first of a repeated key,
    Python the last, so a body that says two things is refused rather than read one way."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONInputError(f"The key {key!r} appears twice in one JSON object; send it once.")
            seen.add(key)
    return document


def json_loads(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON strictly; raises ``JSONInputError`` (a ValueError) naming the problem.

    The literals NaN and Infinity, and a key repeated in one object, are refused here; a number too
    large for a float (``1e999``) becomes infinity, which the caller refuses naming its field."""
    if _too_deep(text, max_depth):
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels is not accepted.")
    try:
        document = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_object_once)
    except JSONInputError:
        raise
    except ValueError as exc:
        raise JSONInputError(f"Malformed JSON: {exc}") from exc
    if isinstance(document, (dict, list)):
        _check(document, max_depth)
    elif isinstance(document, str):
        _check_text(document, None)
    return document


class LimitedJSONParser(parsers.JSONParser):
    """JSON bodies up to ``settings.API_MAX_BODY_BYTES`` (413 beyond), read by ``json_loads``:
    nesting deeper than ``MAX_JSON_DEPTH`` or a NUL character is a 400 naming the field."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads(codecs.decode(raw, encoding))
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc
        except JSONInputError as exc:
            if exc.field is not None:
                raise exceptions.ValidationError({exc.field: [exc.message]}) from exc
            raise exceptions.ParseError(exc.message) from exc


def _wrong_type(field, value) -> str | None:
    """What is wrong with a JSON value's type for ``field`` (None when it is right). DRF would
    quietly turn 7 into "7", "12" into 12 and "yes" into True: here a wrong type is an error, as
    the schema says."""
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return f"Expected a string, got {type(value).__name__}."
    if isinstance(field, serializers.IntegerField) and (isinstance(value, bool | str)):
        return f"Expected an integer, got {type(value).__name__}."
    if isinstance(field, serializers.FloatField) and (isinstance(value, bool | str)):
        return f"Expected a number, got {type(value).__name__}."
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return f"Expected true or false, got {type(value).__name__}."
    return None


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them, and values of the wrong JSON type."""

    def to_internal_value(self, data):
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            for name, field in self.fields.items():
                if name in data and data[name] is not None and (problem := _wrong_type(field, data[name])):
                    errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
