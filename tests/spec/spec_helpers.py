"""Reading spec/: the OpenAPI document, schema validation against it, route templates."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"
OPENAPI = SPEC_DIR / "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_PARAM = re.compile(r"\{[^}/]*\}")


@cache
def openapi() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(OPENAPI.read_text())
    return value


def normalise(template: str) -> str:
    """``/rooms/{roomId}/send/{eventType}`` -> ``/rooms/{}/send/{}`` (names differ freely)."""
    return _PARAM.sub("{}", template)


def documented_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), normalise(path))
        for path, item in openapi()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def response_pointer(path: str, method: str, status: int) -> str:
    """The JSON pointer of the JSON schema documented for this answer."""
    item = openapi()["paths"][path][method.lower()]["responses"]
    answer = item.get(str(status))
    assert answer is not None, f"{method} {path}: status {status} is not documented"
    if "$ref" in answer:
        return str(answer["$ref"]) + "/content/application~1json/schema"
    return "/".join(
        [
            "#/paths",
            _escape(path),
            method.lower(),
            "responses",
            str(status),
            "content/application~1json/schema",
        ]
    )


def validate(body: Any, path: str, method: str, status: int) -> None:
    """Validate ``body`` against openapi.json's schema for (path, method, status)."""
    schema = {**openapi(), "$ref": response_pointer(path, method, status)}
    Draft202012Validator(schema).validate(body)


def request_schema_validate(body: Any, path: str, method: str) -> None:
    op = openapi()["paths"][path][method.lower()]
    pointer = "/".join(
        ["#/paths", _escape(path), method.lower(), "requestBody/content/application~1json/schema"]
    )
    assert "requestBody" in op, f"{method} {path} documents no request body"
    Draft202012Validator({**openapi(), "$ref": pointer}).validate(body)
