"""How an operator reads an intervention's request type: a listed type by its name in
their language, whether the case holds its code (`service_schedule`) or free text equal
to one of its names (cases opened before the list existed say "Service schedule");
any other free text as it was written."""

from __future__ import annotations

from nexusmail.storage.connections import ReadTx


class TypeNames:
    """The listed types' names, looked up by code or by any of their names, case aside."""

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        # (code, English, Italian, Romanian); the first type in list order wins a name.
        self._by_key: dict[str, dict[str, str]] = {}
        for code, en, it, ro in rows:
            names = {"en": en, "it": it, "ro": ro}
            for key in (code, en, it, ro):
                if key:
                    self._by_key.setdefault(key.casefold(), {**names, "code": code})

    def shown(self, value: str | None, language: str) -> str:
        """What the page shows for the request type `value` to a reader of `language`."""
        if not value:
            return ""
        names = self._by_key.get(value.casefold())
        if names is None:
            return value
        return names.get(language) or names["en"] or names["code"]


async def load_type_names(conn: ReadTx) -> TypeNames:
    rows = await conn.execute_fetchall(
        "SELECT code, name_en, name_it, name_ro FROM request_types ORDER BY position, code")
    return TypeNames([(r[0], r[1], r[2], r[3]) for r in rows])
