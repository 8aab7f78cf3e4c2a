"""The status API: "where is my renewal?" for citizens (through the portal), helpdesks and provinces.

Read-only, over the case store's database (`CaseStore`, one connection per worker thread). Every route but
/healthz needs `Authorization: Bearer <key>` (`auth.Keys`); errors are JSON `{"error": "<one line>"}`.
Its OpenAPI document is checked in as schemas/openapi/status.json (a unit test compares).
"""
from __future__ import annotations

import base64
import datetime as dt
import re
import threading
from typing import Optional

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from consumers.casestore.auth import Caller, Keys
from consumers.casestore.db import Database
from consumers.casestore.model import DECIDED, CaseRow, next_step
from consumers.casestore.store import CaseStore
from consumers.funnel.model import STAGE_KEYS, STAGES

UTC = dt.timezone.utc
MAX_PAGE = 1000
_CCCD = re.compile(r"^\d{12}$")
_PROVINCE = re.compile(r"^\d{2}$")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- response models ----------------------------------------------------------------------------------------------
class NextStep(BaseModel):
    vi: str
    en: str


class Application(BaseModel):
    application_id: Optional[str]
    case_id: str
    province: str
    state: str
    reasons: list[str]
    missing: list[str]
    facts: dict[str, str]
    next_step: NextStep
    deadline: Optional[str]
    missing_notice_due_at: Optional[str]
    opened_at: Optional[str]
    decided_at: Optional[str]
    updated_at: str


class CitizenApplications(BaseModel):
    applications: list[Application]


class ProvinceCase(Application):
    cccd: str
    classes: list[str]
    warnings: list[str]


class ProvincePage(BaseModel):
    cases: list[ProvinceCase]
    next_cursor: Optional[str]


class Funnel(BaseModel):
    province: Optional[str]
    stages: dict[str, int]
    outcomes: dict[str, int]
    reasons: dict[str, dict[str, int]]


class Error(BaseModel):
    error: str


_ERRORS = {401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error}, 400: {"model": Error}}


def _iso(ms: int | None) -> str | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def application_view(row: CaseRow) -> dict:
    return dict(application_id=row.application_id, case_id=row.case_id, province=row.province, state=row.state,
                reasons=row.reasons, missing=row.missing, facts=row.facts(), next_step=next_step(row),
                deadline=_iso(row.decision_due_at) if row.state not in DECIDED else None,
                missing_notice_due_at=_iso(row.missing_notice_due_at), opened_at=_iso(row.opened_at),
                decided_at=_iso(row.decided_at), updated_at=_iso(row.updated_at))


def render(view: dict) -> str:
    """A case as a few readable lines (no CCCD)."""
    lines = [f"application {view['application_id']}  case {view['case_id']}  province {view['province']}",
             f"  state:     {view['state']}" + (f"  reasons: {', '.join(view['reasons'])}" if view['reasons'] else ""),
             f"  facts:     " + ", ".join(f"{k} {v}" for k, v in view["facts"].items())]
    if view["missing"]:
        lines.append(f"  missing:   {', '.join(view['missing'])}")
    if view["deadline"]:
        lines.append(f"  deadline:  {view['deadline']}")
    lines += [f"  next (vi): {view['next_step']['vi']}", f"  next (en): {view['next_step']['en']}"]
    return "\n".join(lines)


def funnel_of(groups: list[tuple[str, list[str], int]], province: str | None) -> dict:
    """The demo's funnel (consumers.funnel stages, up to "approved") from (state, reasons, cases) groups."""
    approved = STAGE_KEYS.index("approved")
    reached: dict[int, int] = {}
    outcomes: dict[str, int] = {}
    reasons: dict[str, dict[str, int]] = {}
    for state, codes, n in groups:
        outcomes[state] = outcomes.get(state, 0) + n
        for code in codes:
            reasons.setdefault(state, {})[code] = reasons.get(state, {}).get(code, 0) + n
        if state in ("APPROVED", "DELIVERY_FAILED"):
            index = approved
        elif state in ("REJECTED", "ESCALATED"):
            index = next((i - 1 for i, (_, _, _, stops) in enumerate(STAGES) if set(codes) & stops),
                         STAGE_KEYS.index("paid"))
        else:
            index = 0
        reached[index] = reached.get(index, 0) + n
    stages = {key: sum(n for r, n in reached.items() if r >= i) for i, key in enumerate(STAGE_KEYS[:approved + 1])}
    return dict(province=province, stages=stages, outcomes=outcomes, reasons=reasons)


def _cursor(value: tuple[int, str] | None) -> str | None:
    if value is None:
        return None
    return base64.urlsafe_b64encode(f"{value[0]}:{value[1]}".encode()).decode().rstrip("=")


def _uncursor(text: str) -> tuple[int, str]:
    try:
        at, _, case_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition(":")
        return int(at), case_id
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "cursor is not a next_cursor this API returned") from None


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "since is not an ISO 8601 time (e.g. 2025-08-01T00:00:00Z)") from None
    if when.tzinfo is None:
        raise ApiError(400, "since needs a time zone (e.g. 2025-08-01T00:00:00Z or +07:00)")
    return int(when.timestamp() * 1000)


def create_app(db: Database, topic: str, keys: Keys) -> FastAPI:
    app = FastAPI(title="gplx-bus status API", version="1.0",
                  description="Where is my renewal? Case states from cases.events, for citizens (through the "
                              "portal), helpdesks and provinces. Bearer API keys; see README, Case status.")
    local = threading.local()

    def store() -> CaseStore:
        if getattr(local, "store", None) is None:
            local.store = CaseStore(db, topic)
        return local.store

    def caller(authorization: Optional[str] = Header(None, description="Bearer gplx.<key id>.<secret>")) -> Caller:
        found = keys.authenticate(authorization)
        if found is None:
            raise ApiError(401, "missing or unknown API key (Authorization: Bearer gplx.<key id>.<secret>)")
        return found

    @app.exception_handler(ApiError)
    async def _error(request: Request, exc: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/applications/{application_id}", response_model=Application, responses=_ERRORS)
    def application(application_id: str, who: Caller = Depends(caller)):
        """State of one application: what is missing, the next step (vi, en) and the deadline."""
        row = store().by_application(application_id)
        if row is None:
            raise ApiError(404, "no case for this application id (yet)")
        if who.province is not None and who.province != row.province:
            raise ApiError(403, f"{who.principal} may read its own province's cases only")
        return application_view(row)

    @app.get("/v1/citizens/{cccd}/applications", response_model=CitizenApplications, responses=_ERRORS)
    def citizen(cccd: str, who: Caller = Depends(caller),
                x_citizen_token: Optional[str] = Header(None, description="<expiry>.<hex HMAC-SHA256(citizen "
                                                        "secret, '<cccd>.<expiry>')>, from the portal")):
        """A citizen's applications: the portal or a helpdesk, with the citizen's signed token."""
        if who.principal not in ("portal", "helpdesk"):
            raise ApiError(403, f"{who.principal} may not look citizens up by CCCD")
        if not _CCCD.match(cccd):
            raise ApiError(400, "a CCCD is 12 digits")
        if not keys.citizen_allows(cccd, x_citizen_token):
            raise ApiError(403, "the citizen's authorization is missing, expired or not for this CCCD "
                                "(X-Citizen-Token)")
        return {"applications": [application_view(r) for r in store().by_cccd(cccd)]}

    @app.get("/v1/provinces/{code}/cases", response_model=ProvincePage, responses=_ERRORS)
    def province_cases(code: str, who: Caller = Depends(caller),
                       state: Optional[str] = Query(None, description="OPENED, AWAITING, APPROVED, ..."),
                       reason: Optional[str] = Query(None, description="a ReasonCode in reasons or missing"),
                       since: Optional[str] = Query(None, description="cases updated at or after (ISO 8601)"),
                       cursor: Optional[str] = Query(None, description="next_cursor of the previous page"),
                       limit: int = Query(100, ge=1, le=MAX_PAGE)):
        """A province's cases by last update (the case's own time), oldest first, paged by cursor."""
        if not _PROVINCE.match(code):
            raise ApiError(400, "a province code is 2 digits (e.g. 01)")
        if who.principal == "portal" or (who.province is not None and who.province != code):
            raise ApiError(403, f"{who.principal} may not read province {code}'s cases")
        page = store().province_page(code, state=state, reason=reason, since_ms=_since(since),
                                     after=_uncursor(cursor) if cursor else None, limit=limit)
        return {"cases": [dict(application_view(r), cccd=r.cccd, classes=r.classes, warnings=r.warnings)
                          for r in page.rows], "next_cursor": _cursor(page.next_cursor)}

    @app.get("/v1/funnel", response_model=Funnel, responses=_ERRORS)
    def funnel(who: Caller = Depends(caller), province: Optional[str] = Query(None, description="2-digit code")):
        """The funnel of the demo, live from the store: applications -> ... -> approved, outcomes, reasons."""
        if province is not None and not _PROVINCE.match(province):
            raise ApiError(400, "a province code is 2 digits (e.g. 01)")
        if who.province is not None:
            if province not in (None, who.province):
                raise ApiError(403, f"{who.principal} may read its own province's funnel only")
            province = who.province
        return funnel_of(store().states(province), province)

    return app
