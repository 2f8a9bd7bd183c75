"""What each operator role may do, decided in one place for the pages and the API.

Every page handler asks `Pages.operator()` and every API handler `authenticate()`
first; both call `refusal()` with the request's method and path, so a handler never
runs for someone who may not use it, and a forbidden write changes nothing.

The rule, least to most:
- viewer: reads (GET/HEAD), plus their own session and settings;
- dispatcher: also every write on cases, customers, schedules, employees, records;
- admin: also operators and tokens (`/operators`, `/tokens`, and their API twins).

An operator limited to their own customers also gets 404 for a customer they do not
own and for an intervention (or a message, attachment or activity of one) of such a
customer, as if it did not exist: a 403 would confirm the number is in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexusmail.storage.connections import ReadTx
from nexusmail.tickets import visibility
from nexusmail.tickets.operators import Operator

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/v1"
# Writes that only touch the operator themself: a viewer must still log out, pick
# their language and change their password.
OWN_WRITES = frozenset({"/login", "/logout", "/settings", "/settings/password"})
# Managing who may do what is the admin's alone.
ADMIN_ONLY_PREFIXES = ("/operators", "/tokens")
# Which path segment names which kind of thing, for the own-customers limit.
_KINDS = {"customers": "customer", "interventions": "intervention", "messages": "message",
          "attachments": "attachment", "activities": "activity", "contacts": "contact",
          "sites": "site", "equipment": "equipment"}


def required_role(method: str, path: str) -> str:
    """The least role that may send `method` to `path` (a page or API path)."""
    local = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path
    if local.startswith(ADMIN_ONLY_PREFIXES):
        return "admin"
    if method.upper() in READ_METHODS or local in OWN_WRITES:
        return "viewer"
    return "dispatcher"


def _named_case(path: str, path_params: Mapping[str, Any]) -> tuple[str, int] | None:
    """The (kind, id) the path names, when it is a customer, an intervention or part
    of one."""
    local = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path
    first = local.strip("/").split("/", 1)[0]
    kind = _KINDS.get(first)
    value = path_params.get("number", path_params.get("id"))
    if kind is None or not isinstance(value, int):
        return None
    return kind, value


async def refusal(conn: ReadTx, operator: Operator, method: str, path: str,
                  path_params: Mapping[str, Any]) -> int | None:
    """None when `operator` may do this; else the status to answer: 403 (role) or 404
    (an intervention outside the customers they are limited to)."""
    if not operator.may(required_role(method, path)):
        return 403
    owner = operator.owner_limit
    if owner is not None:
        named = _named_case(path, path_params)
        if named is not None and not await visibility.may_see(conn, *named, owner):
            return 404
    return None
