"""Schema-registry clients speaking the Confluent REST API.

`RegistryClient` talks HTTP (httpx) to Apicurio Registry's ccompat API, e.g.
`http://127.0.0.1:8081/apis/ccompat/v7`, which is also what kcat, Kafka Connect and the
provinces' own tools use to decode the topics. `InMemoryRegistry` implements the same methods in memory for unit
tests and offline tools; it applies the offline compatibility checker of `schemas.compat`.

Errors are `RegistryError` subclasses naming the URL and the subject: `RegistryUnavailable` (cannot connect:
transient), `SchemaNotFound` (404), `IncompatibleSchema` (409). Lookups by id are cached forever (an id never
changes meaning); registrations are cached per (subject, schema text).
"""
from __future__ import annotations

import itertools
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from schemas import compat
from schemas.errors import IncompatibleSchema, RegistryError, RegistryUnavailable, SchemaNotFound
from schemas.http import DeadlineClient

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
LEVELS = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE")


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    version: int
    schema_id: int
    schema: str


def _text(schema: str | dict) -> str:
    return schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False, separators=(",", ":"))


class RegistryClient:
    """Confluent REST API client (register, get_by_id, get_latest, set/get_compatibility, check_compatibility)."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0, auth: tuple[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        """`auth`: (user, password) for HTTP basic authentication, or None."""
        if not url:
            raise RegistryError("no schema registry URL: pass one (--registry-url or SCHEMA_REGISTRY_URL, "
                                "e.g. http://127.0.0.1:8081/apis/ccompat/v7)")
        self.url = url.rstrip("/")
        self._http = DeadlineClient(total_s=timeout, transport=transport, base_url=self.url, auth=auth,
                                    headers={"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE})
        self._by_id: dict[int, str] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the API ----

    def register(self, subject: str, schema: str | dict) -> int:
        """Register (idempotently) a schema under a subject; returns its id."""
        text = _text(schema)
        key = (subject, text)
        if key not in self._ids:
            body = self._call("POST", f"/subjects/{quote(subject, safe='')}/versions", subject,
                              json={"schema": text, "schemaType": "AVRO"})
            with self._lock:
                self._ids[key] = int(body["id"])
                self._by_id.setdefault(int(body["id"]), text)
            log.info("registered subject %s as schema id %s", subject, body["id"])
        return self._ids[key]

    def lookup(self, subject: str, schema: str | dict) -> int:
        """The id of a schema already registered under a subject (SchemaNotFound if it is not)."""
        text = _text(schema)
        key = (subject, text)
        if key not in self._ids:
            body = self._call("POST", f"/subjects/{quote(subject, safe='')}", subject,
                              json={"schema": text, "schemaType": "AVRO"})
            with self._lock:
                self._ids[key] = int(body["id"])
        return self._ids[key]

    def get_by_id(self, schema_id: int) -> str:
        """The schema text for an id (cached: an id never changes meaning)."""
        if schema_id not in self._by_id:
            body = self._call("GET", f"/schemas/ids/{int(schema_id)}", f"schema id {schema_id}")
            with self._lock:
                self._by_id[schema_id] = body["schema"]
        return self._by_id[schema_id]

    def get_latest(self, subject: str) -> RegisteredSchema:
        body = self._call("GET", f"/subjects/{quote(subject, safe='')}/versions/latest", subject)
        return RegisteredSchema(body.get("subject", subject), int(body["version"]), int(body["id"]), body["schema"])

    def subjects(self) -> list[str]:
        return list(self._call("GET", "/subjects", "(all subjects)"))

    def set_compatibility(self, subject: str, level: str) -> None:
        if level not in LEVELS:
            raise RegistryError(f"unknown compatibility level {level!r}; one of {', '.join(LEVELS)}")
        self._call("PUT", f"/config/{quote(subject, safe='')}", subject, json={"compatibility": level})

    def get_compatibility(self, subject: str) -> str:
        body = self._call("GET", f"/config/{quote(subject, safe='')}", subject)
        return body.get("compatibilityLevel") or body.get("compatibility")

    def check_compatibility(self, subject: str, schema: str | dict) -> tuple[bool, list[str]]:
        """Would the registry accept this schema as the next version of the subject? (ok, messages)."""
        try:
            body = self._call("POST", f"/compatibility/subjects/{quote(subject, safe='')}/versions/latest",
                              subject, json={"schema": _text(schema), "schemaType": "AVRO"},
                              params={"verbose": "true"})
        except SchemaNotFound:
            return True, [f"{subject}: no version registered yet"]
        ok = bool(body.get("is_compatible"))
        return ok, [str(m) for m in body.get("messages") or []]

    # ---- plumbing ----

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        where = f"{self.url}{path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"schema registry at {self.url} unreachable ({type(exc).__name__}) "
                                      f"while asking for {what}; is it running? (gplx-bus local status)") from None
        if response.status_code < 300:
            return response.json() if response.content else {}
        try:
            detail = response.json().get("message", response.text)
        except ValueError:
            detail = response.text
        detail = str(detail)[:300]
        if response.status_code == 404:
            raise SchemaNotFound(f"{what}: not found at {where} ({detail})")
        if response.status_code == 409:
            raise IncompatibleSchema(f"{what}: refused by {where} as incompatible ({detail})")
        raise RegistryError(f"{what}: {method} {where} answered {response.status_code} ({detail})")


class InMemoryRegistry:
    """The same interface in memory: ids assigned in order; identical schema text shares one id (as Confluent)."""

    def __init__(self, default_level: str = compat.LEVEL) -> None:
        self._next = itertools.count(1)
        self._by_text: dict[str, int] = {}
        self._by_id: dict[int, str] = {}
        self._versions: dict[str, list[int]] = {}
        self._levels: dict[str, str] = {}
        self.default_level = default_level

    def register(self, subject: str, schema: str | dict) -> int:
        text = _text(schema)
        versions = self._versions.setdefault(subject, [])
        if text in self._by_text and self._by_text[text] in versions:
            return self._by_text[text]
        ok, messages = self.check_compatibility(subject, text)
        if not ok:
            raise IncompatibleSchema(f"{subject}: refused as incompatible: {'; '.join(messages)}")
        if text not in self._by_text:
            self._by_text[text] = next(self._next)
            self._by_id[self._by_text[text]] = text
        versions.append(self._by_text[text])
        return self._by_text[text]

    def lookup(self, subject: str, schema: str | dict) -> int:
        text = _text(schema)
        if text in self._by_text and self._by_text[text] in self._versions.get(subject, []):
            return self._by_text[text]
        raise SchemaNotFound(f"{subject}: schema not registered (in-memory registry)")

    def get_by_id(self, schema_id: int) -> str:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise SchemaNotFound(f"schema id {schema_id}: not found (in-memory registry)") from None

    def get_latest(self, subject: str) -> RegisteredSchema:
        versions = self._versions.get(subject)
        if not versions:
            raise SchemaNotFound(f"{subject}: not found (in-memory registry)")
        return RegisteredSchema(subject, len(versions), versions[-1], self._by_id[versions[-1]])

    def subjects(self) -> list[str]:
        return sorted(self._versions)

    def set_compatibility(self, subject: str, level: str) -> None:
        if level not in LEVELS:
            raise RegistryError(f"unknown compatibility level {level!r}")
        self._levels[subject] = level

    def get_compatibility(self, subject: str) -> str:
        return self._levels.get(subject, self.default_level)

    def check_compatibility(self, subject: str, schema: str | dict) -> tuple[bool, list[str]]:
        level = self.get_compatibility(subject)
        versions = self._versions.get(subject, [])
        if not versions or level == "NONE":
            return True, []
        against = versions if level.endswith("_TRANSITIVE") else versions[-1:]
        new = json.loads(_text(schema))
        messages = [m for v in against for m in compat.check_compatible(new, json.loads(self._by_id[v]), level)]
        return not messages, messages
