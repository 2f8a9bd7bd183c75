"""API tokens in the JSON API (admin only: admin.permissions refuses the others).

- `GET /api/v1/tokens` → `{"items": [token...]}`, each `{id, name, created_at,
  revoked_at, operator}` (`operator`: the address it acts as, or null for full
  access); never the secret.
- `POST /api/v1/tokens` `{name, operator?}` → 201 the token with `token`, the secret,
  shown this once; 404 when `operator` is no active operator.
- `POST /api/v1/tokens/{id}/revoke` → 200 the token; 409 when revoked already.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin import tokens
from nexusmail.admin.api.base import ApiServices, authenticate, parse_body, path_id, read_body
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, _Body
from nexusmail.tickets.cases import NotFound

log = structlog.get_logger(__name__)

MAX_TOKEN_NAME_CHARS = 100


class TokenIn(_Body):
    name: str = Field(min_length=1, max_length=MAX_TOKEN_NAME_CHARS)
    operator: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)


def shown_token(token: tokens.TokenInfo) -> dict[str, Any]:
    """A token as the API and the page show it: never its secret."""
    return {"id": token.id, "name": token.name, "created_at": token.created_at,
            "revoked_at": token.revoked_at,
            "operator": token.operator.email if token.operator else None}


def token_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [Route("/tokens", h.list, methods=["GET"]),
            Route("/tokens", h.create, methods=["POST"]),
            Route("/tokens/{id:int}/revoke", h.revoke, methods=["POST"])]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def _one(self, token_id: int) -> dict[str, Any]:
        async with self.s.store.read() as conn:
            found = [t for t in await tokens.list_tokens(conn) if t.id == token_id]
        if not found:
            raise NotFound(f"token {token_id} does not exist")
        return shown_token(found[0])

    async def list(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            items = [shown_token(t) for t in await tokens.list_tokens(conn)]
        return JSONResponse({"items": items})

    async def create(self, request: Request) -> Response:
        caller = await authenticate(self.s, request)
        body = parse_body(self.s, TokenIn, await read_body(request))
        now = self.s.clock.now()
        secret = await self.s.store.write(lambda tx: tokens.create_token(
            tx, body.name, now, operator=body.operator or None))
        async with self.s.store.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id FROM api_tokens WHERE token_sha256 = ?",
                (tokens.token_digest(secret),))
            token_id = int(next(iter(rows))[0])
        log.info("api.token_created", token_id=token_id, name=body.name,
                 operator=body.operator, token_name=caller.name)
        return JSONResponse({**await self._one(token_id), "token": secret}, status_code=201)

    async def revoke(self, request: Request) -> Response:
        caller = await authenticate(self.s, request)
        token_id = path_id(request, "id")
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: tokens.revoke_token(tx, token_id, now))
        log.info("api.token_revoked", token_id=token_id, token_name=caller.name)
        return JSONResponse(await self._one(token_id))
