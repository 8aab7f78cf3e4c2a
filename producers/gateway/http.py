"""The clinic gateway's HTTPS JSON API (FastAPI on uvicorn) and its server lifecycle.

    POST /v1/certificates          one HealthCertificate -> 202 {event_id} once the broker acknowledged it
    POST /v1/certificates:batch    {"certificates": [...]} (at most MAX_BATCH_ITEMS) -> 200 with a verdict per item
    GET  /v1/certificates/{number} what the bus knows of a certificate of the caller's clinic
    GET  /health                   200 once the gateway has read the certificates and keys on the bus
    GET  /openapi.json             the OpenAPI document (checked in as schemas/openapi/clinic-gateway.json)

Every refusal is JSON `{"error": code, "message": one line in English, "thong_bao": Vietnamese, "field", "rule"}`
with its status: 400 malformed JSON, 401 no or unknown API key, 403 another clinic's code, 409 same number and
version with other content, 413 body over the limit, 422 a field breaking a rule or a bad signature, 503 Kafka or
the registry unavailable (with Retry-After; nothing was accepted). Messages never quote a CCCD, a name or a
health field.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from consumers.clinic_keys import ClinicKeys
from producers.gateway.credentials import ApiKeys
from producers.gateway.service import (MAX_BATCH_ITEMS, CertificateBody, CertificateIndex, Gateway, Verdict,
                                       follow_certificates, refusal)
from producers.sdk import Publisher
from schemas.registry import RegistryClient
from topology.catalogue import Catalogue
from topology.connection import Connection

log = logging.getLogger(__name__)

#: Largest body of POST /v1/certificates (a certificate is about 1 KB).
MAX_BODY_BYTES = 64 * 1024
#: Largest body of POST /v1/certificates:batch.
MAX_BATCH_BYTES = 4 * 1024 * 1024
OPENAPI_FILE = Path(__file__).resolve().parents[2] / "schemas" / "openapi" / "clinic-gateway.json"


class Accepted(BaseModel):
    event_id: str = Field(description="The event id of the certificate on health.exam-results (the first one "
                                      "accepted, for a repeat).")
    duplicate: bool = Field(description="True when this exact content was already on the bus: nothing was "
                                        "published again.")
    partition: int
    offset: int


class Refusal(BaseModel):
    error: str = Field(description="malformed_json | unauthorized | not_your_clinic | conflict | too_large | "
                                   "invalid_field | signature | unavailable | not_found")
    message: str = Field(description="One line, in English, naming the field and rule (never the value).")
    thong_bao: str = Field(description="The same in Vietnamese, without the detail.")
    field: str | None = None
    rule: str | None = None


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="202, or the status a single POST of this item would have had.")
    event_id: str | None = None
    duplicate: bool | None = None
    error: str | None = None
    message: str | None = None
    field: str | None = None
    rule: str | None = None


class BatchResult(BaseModel):
    accepted: int
    results: list[BatchItem]


class VersionSeen(BaseModel):
    version_kind: str
    event_id: str
    partition: int
    offset: int


class CertificateState(BaseModel):
    certificate_number: str
    status: str = Field(description="accepted | superseded (an EDIT was accepted) | revoked")
    versions: list[VersionSeen]


class _Refused(Exception):
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict


def _reply(verdict: Verdict) -> JSONResponse:
    return JSONResponse(verdict.body, verdict.status, headers=verdict.headers)


_ERRORS = {status: {"model": Refusal, "description": what} for status, what in (
    (400, "malformed JSON"), (401, "no or unknown API key"), (413, "body over the size limit"),
    (503, "Kafka or the schema registry unavailable: nothing accepted; Retry-After says when to try again"))}
_CERT_ERRORS = {**_ERRORS, **{status: {"model": Refusal, "description": what} for status, what in (
    (403, "clinic_code is not the caller's"), (409, "same certificate number and version kind, other content"),
    (422, "a field breaks a rule, or the signature is missing, unknown, revoked or does not verify"))}}


def create_app(gateway: Gateway, api_keys: ApiKeys) -> FastAPI:
    app = FastAPI(title="gplx-bus clinic gateway", version="1.0.0", docs_url=None, redoc_url=None,
                  description="Health certificates from clinics onto the đổi GPLX event bus, over HTTPS. "
                              "Authenticate with `Authorization: Bearer <clinic API key>`; sign each certificate "
                              "with the clinic's ECDSA P-256 key over the canonical form in the README "
                              "('Signed health certificates').")

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> JSONResponse:
        return _reply(exc.verdict)

    def caller(request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        clinic = api_keys.clinic_of(key.strip()) if scheme.lower() == "bearer" and key.strip() else None
        if clinic is None:
            verdict = refusal(401, "unauthorized", "Authorization: Bearer <clinic API key> missing or unknown")
            raise _Refused(Verdict(401, verdict.body, {"WWW-Authenticate": "Bearer"}))
        return clinic

    async def json_body(request: Request, limit: int) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Refused(refusal(413, "too_large", f"body of {declared} bytes is over the limit of {limit}"))
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise _Refused(refusal(413, "too_large", f"body is over the limit of {limit} bytes"))
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise _Refused(refusal(400, "malformed_json", f"body is not valid UTF-8 JSON{where}")) from None

    body_ref = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/HealthCertificate"}}}}}
    batch_ref = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["certificates"], "properties": {"certificates": {
            "type": "array", "maxItems": MAX_BATCH_ITEMS,
            "items": {"$ref": "#/components/schemas/HealthCertificate"}}}}}}}}

    @app.post("/v1/certificates", status_code=202, response_model=Accepted, responses=_CERT_ERRORS,
              openapi_extra=body_ref, summary="Publish one health certificate")
    async def post_certificate(request: Request):
        clinic = caller(request)
        item = await json_body(request, MAX_BODY_BYTES)
        return _reply(await run_in_threadpool(gateway.submit, item, clinic))

    @app.post("/v1/certificates:batch", response_model=BatchResult, responses=_ERRORS, openapi_extra=batch_ref,
              summary=f"Publish up to {MAX_BATCH_ITEMS} health certificates, a verdict per item")
    async def post_batch(request: Request):
        clinic = caller(request)
        body = await json_body(request, MAX_BATCH_BYTES)
        items = body.get("certificates") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise _Refused(refusal(422, "invalid_field", "body must be {\"certificates\": [...]}",
                                   field_name="certificates", rule="array"))
        if len(items) > MAX_BATCH_ITEMS:
            raise _Refused(refusal(413, "too_large", f"{len(items)} certificates; at most {MAX_BATCH_ITEMS} "
                                   "per batch"))
        verdicts = await run_in_threadpool(gateway.submit_batch, items, clinic)
        results = [{"index": i, "status": v.status, **{k: v.body.get(k) for k in (
            "event_id", "duplicate", "error", "message", "field", "rule") if k in v.body}}
            for i, v in enumerate(verdicts)]
        return JSONResponse({"accepted": sum(v.status == 202 for v in verdicts), "results": results})

    @app.get("/v1/certificates/{number:path}", response_model=CertificateState,
             responses={**{s: _ERRORS[s] for s in (401, 503)}, 404: {"model": Refusal, "description": "unknown"}},
             summary="What the bus knows of a certificate (accepted, superseded by an EDIT, revoked)")
    async def get_certificate(number: str, request: Request):
        return _reply(gateway.state(number, caller(request)))

    @app.post("/v1/echo", include_in_schema=False)
    async def echo(request: Request):
        """The HTTP ceiling of the bench: the same authentication and body parsing, no Kafka."""
        caller(request)
        item = await json_body(request, MAX_BODY_BYTES)
        return JSONResponse({"echo": len(item) if isinstance(item, dict) else 0}, 202)

    @app.get("/health", include_in_schema=False)
    async def health():
        return {"status": "ready"}

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            body = CertificateBody.model_json_schema(ref_template="#/components/schemas/{model}")
            components = doc.setdefault("components", {})
            components.setdefault("schemas", {}).update({**body.pop("$defs", {}), "HealthCertificate": body})
            components["securitySchemes"] = {"clinicApiKey": {"type": "http", "scheme": "bearer",
                                                              "description": "the clinic's API key"}}
            doc["security"] = [{"clinicApiKey": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return app


def openapi_document() -> dict:
    """The OpenAPI document, without a running gateway (what `schemas/openapi/clinic-gateway.json` holds)."""
    return create_app(None, ApiKeys({})).openapi()  # type: ignore[arg-type]


class GatewayServer:
    """The gateway with everything it needs: publisher, clinic keys, certificate index (read to the end of the
    topic before serving), uvicorn on a thread. `with GatewayServer(...) as gw: gw.url`."""

    def __init__(self, connection: Connection, api_keys: ApiKeys, *, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[Path, Path] | None = None, delivery_timeout_s: float = 10.0,
                 catalogue: Catalogue | None = None) -> None:
        import uvicorn

        self.catalogue = catalogue or Catalogue.build(prefix=connection.prefix)
        self._registry = RegistryClient(connection.registry_url, auth=connection.registry_auth)
        def new_publisher() -> Publisher:
            return Publisher(connection, self._registry, catalogue=self.catalogue, client_id="gplx-gateway",
                             delivery_timeout_s=delivery_timeout_s)

        self.publisher = new_publisher()
        self.keys = ClinicKeys(connection, self.catalogue, self._registry)
        self.index = CertificateIndex()
        self._index_follower = follow_certificates(connection, self._registry, self.catalogue, self.index)
        try:
            self.keys.start()
            self._index_follower.start().catch_up(timeout_s=120)
        except BaseException:
            self._close_clients()
            raise
        self.gateway = Gateway(self.publisher, self.keys, self.index, delivery_timeout_s=delivery_timeout_s,
                               new_publisher=new_publisher)
        self._socket = socket.create_server((host, port))
        self.host, self.port = host, self._socket.getsockname()[1]
        self.scheme = "https" if tls else "http"
        config = uvicorn.Config(create_app(self.gateway, api_keys), log_level="warning", access_log=False,
                                ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None,
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="gateway-http", daemon=True)

    @property
    def index_alive(self) -> bool:
        return self._index_follower.alive

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "GatewayServer":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the gateway's HTTP server did not start")
            time.sleep(0.02)  # polling uvicorn's started flag (it offers no event)
        log.info("clinic gateway on %s (%d certificate versions indexed)", self.url, self._index_follower.applied)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._socket.close()
        self._close_clients()

    def _close_clients(self) -> None:
        from kafka.errors import KafkaError

        self._index_follower.close()
        self.keys.close()
        try:  # records still unacknowledged were never answered 202: nothing reported accepted is dropped here
            # the one in use: the gateway renews it after a failed delivery
            (self.gateway.publisher if hasattr(self, "gateway") else self.publisher).close(timeout_s=5)
        except KafkaError as exc:
            log.warning("gateway producer closed with records unacknowledged (%s)", type(exc).__name__)
        self._registry.close()

    def __enter__(self) -> "GatewayServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
