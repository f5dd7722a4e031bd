"""The OpenAPI schema: how operations are described (``AutoSchema``, ``DEFAULT_SCHEMA_CLASS``) and
its postprocessing (drf-spectacular ``POSTPROCESSING_HOOKS``): what the views' annotations cannot
say once for all endpoints.

An operation is described by its handler's docstring or its view class's own docstring, never by
one the view inherits: drf-spectacular walks a view's bases for a docstring, so a view without one
was described by ``AtomicWritesMixin``'s notes on transactions (38 operations) or a base view's
notes on its hooks. A mixin's docstring is for the people reading the code.

Postprocessing:

- Every operation documents the error answers it can give, in the one error format
  (``{"error": {"code", "message", "details"}}``): 400, 401, 403, 404, 405, 406 everywhere, and
  409, 413, 415 where a body is sent.
- A query parameter whose enum holds strings is a string (drf-spectacular types a
  ``ChoiceFilter`` with a ``method`` as an integer), and its enum includes "" (no filter).
- A JSON body offered beside CSV is a batch of records: an array of objects, not one object.
- JSON request bodies refuse fields they do not know (``StrictSerializer``): their schemas say
  ``additionalProperties: false``.
- No text may hold a NUL character (``RefuseNulMiddleware``, ``json_loads``): string parameters
  and the string fields of request bodies carry a pattern that excludes it; a required text
  field's pattern also asks for one character that is not whitespace (DRF trims, then refuses
  a blank value).
"""

from __future__ import annotations

import inspect

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, describing an operation in its view's own words only."""

    def get_description(self) -> str:
        handler = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        doc = getattr(handler, "__doc__", None) or type(self.view).__dict__.get("__doc__")
        if not doc:
            return ""
        return "\n".join(line.rstrip() for line in inspect.cleandoc(doc).rstrip().split("\n"))


ERROR_SCHEMA = {
    "type": "object",
    "description": "The API's one error format.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Machine-readable, e.g. `invalid`, `not_found`."},
                "message": {"type": "string", "description": "For people; names the fields at fault."},
                "details": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per-field messages for `invalid`, context for `conflict`; else empty.",
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

ERRORS_ALWAYS = {
    "400": "Invalid input (query parameters, body or URL); `details` names the fields.",
    "401": "No valid credentials (token missing, unknown, expired or revoked).",
    "403": "Authenticated, but the role or the token's scopes do not allow this.",
    "404": "No such object, or one you may not see.",
    "405": "This method is not allowed here.",
    "406": "The `Accept` header asks for something other than JSON.",
}
ERRORS_WITH_BODY = {
    "409": "The action does not fit the object's current state.",
    "413": "The body is larger than the endpoint's limit.",
    "415": "The body's content type is not one this endpoint reads.",
}
NO_NUL = "^[^\\u0000]*$"
# A required text field is trimmed (DRF's CharField) and then may not be blank: it needs one
# character that is neither NUL nor what Python's str.strip() removes.
_BLANK = (
    "\\u0000\\t\\n\\u000b\\f\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NOT_BLANK = f"^[^\\u0000]*[^{_BLANK}][^\\u0000]*$"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _document_errors(operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    errors = dict(ERRORS_ALWAYS)
    if "requestBody" in operation:
        errors.update(ERRORS_WITH_BODY)
    for code, description in errors.items():
        responses.setdefault(code, _error_response(description))


def _no_nul(schema: dict) -> None:
    """A string schema without a pattern, enum or format gets the pattern that excludes NUL."""
    if schema.get("type") == "string" and not ({"pattern", "enum", "format"} & set(schema)):
        schema["pattern"] = NOT_BLANK if schema.get("minLength", 0) >= 1 else NO_NUL
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _no_nul(schema["items"])
    for variant in schema.get("oneOf", []) + schema.get("anyOf", []) + schema.get("allOf", []):
        _no_nul(variant)


def _parameters(operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        enum = schema.get("enum")
        if enum and all(isinstance(v, str) for v in enum):
            schema["type"] = "string"
            if parameter.get("in") == "query" and "" not in enum:
                enum.append("")  # django-filter reads an empty value as "no filter"
        _no_nul(schema)


def _strict_bodies(operation: dict, components: dict) -> None:
    """The JSON body components of this operation: no unknown fields, no NUL in strings."""
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    component = components.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/schemas/") else None
    if component is None or component.get("type") != "object":
        return
    component["additionalProperties"] = False
    for prop in component.get("properties", {}).values():
        _no_nul(prop)


def _record_batches(operation: dict) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content and "text/csv" in content:
        schema = content["application/json"].get("schema", {})
        if schema.get("type") == "object" and not schema.get("properties"):
            content["application/json"]["schema"] = {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "additionalProperties": True},
                "description": "A batch of records (the same records as JSON Lines or CSV rows).",
            }


def postprocess_schema(result, generator, request, public):
    """drf-spectacular postprocessing hook (see the module docstring)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in HTTP_METHODS:
                continue
            _document_errors(operation)
            _parameters(operation)
            _record_batches(operation)
            _strict_bodies(operation, components)
    return result
