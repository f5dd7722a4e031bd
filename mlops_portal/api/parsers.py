"""Request bodies: JSON of at most ``settings.API_MAX_BODY_BYTES`` (413 beyond), and serializers
that refuse fields they do not know."""

from __future__ import annotations

import codecs
import json

from django.conf import settings
from rest_framework import exceptions, parsers, serializers

from .errors import PayloadTooLarge


class LimitedJSONParser(parsers.JSONParser):
    """JSON bodies up to ``settings.API_MAX_BODY_BYTES`` (413 beyond); NaN/Infinity refused."""

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
            text = codecs.decode(raw, encoding)
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            for name, field in self.fields.items():
                # DRF would quietly turn 7 into "7": a wrong type is an error here.
                if isinstance(field, serializers.CharField) and name in data and data[name] is not None:
                    if not isinstance(data[name], str):
                        errors[name] = [f"Expected a string, got {type(data[name]).__name__}."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
