"""The API docs describe operations in the views' own words: no operation's description is a
docstring its view inherits from a base class (a mixin's or a base view's notes on how it works,
such as ``AtomicWritesMixin``'s on transactions)."""

import inspect

import pytest
from drf_spectacular.generators import EndpointEnumerator

from mlops_portal.api.transactions import AtomicWritesMixin

METHODS = {"get", "post", "put", "patch", "delete"}


def _clean(doc: str) -> str:
    return "\n".join(line.rstrip() for line in inspect.cleandoc(doc).rstrip().split("\n"))


@pytest.fixture
def schema(admin_user, api_client_for):
    response = api_client_for(admin_user).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_no_operation_is_described_by_the_transaction_mixins_docstring(schema):
    leaked = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in METHODS and "ATOMIC_REQUESTS" in operation.get("description", "")
    ]
    assert AtomicWritesMixin.__doc__ and "ATOMIC_REQUESTS" in AtomicWritesMixin.__doc__
    assert not leaked, leaked


def test_no_operation_is_described_by_a_docstring_inherited_from_a_base_class(schema):
    leaked, checked = [], 0
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        documented = path.replace("{pk}", "{id}")  # drf-spectacular's SCHEMA_COERCE_PATH_PK
        operation = schema["paths"].get(documented, {}).get(method.lower())
        if operation is None:
            continue
        checked += 1
        description = operation.get("description", "")
        view = callback.cls
        inherited = {_clean(base.__doc__) for base in view.__mro__[1:] if base.__doc__}
        inherited.discard(_clean(view.__doc__ or ""))  # a view may repeat a base's words as its own
        if description and any(doc and doc in description for doc in inherited):
            leaked.append(f"{method} {documented} ({view.__name__})")
    assert checked == sum(len(set(ops) & METHODS) for ops in schema["paths"].values())
    assert not leaked, leaked
