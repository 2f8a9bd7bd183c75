"""One intervention's page: its thread in time order, and the operator's actions on it.

Mail is hostile input. Its text is escaped by the templates; its HTML is sanitized
once, at ingest (nh3, mail.html: no scripts, handlers, forms, remote images, nesting
bounded), and shown as stored; HTML stored by an older sanitizer, or not by the
sanitizer at all, is sanitized in a thread when first shown and stored again. It is
shown only inside `<iframe sandbox srcdoc>` carrying its own CSP, so even a sanitizer
bug could neither run a script nor fetch a tracking pixel. Files and original mails
are downloads (`Content-Disposition: attachment`, nosniff).
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import unquote

import structlog
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.assignments import signing_keys
from nexusmail.admin.api.base import MAX_ID, ApiError
from nexusmail.admin.api.uploads import FORM_OVERHEAD_BYTES, limit_body
from nexusmail.admin.blob_reads import BlobReadFailed, raw_mail_bytes, read_attachment
from nexusmail.admin.canned_replies import Canned, CannedReplies
from nexusmail.admin.downloads import DOWNLOAD_CSP, download_headers, safe_media_type
from nexusmail.admin.pages.base import (
    MAIL_FRAME_CSP,
    PageError,
    Pages,
    check_csrf,
    form_text,
    redirect,
)
from nexusmail.admin.pages.due_times import next_deadline
from nexusmail.blobs.store import BlobError
from nexusmail.i18n import LANGUAGES, message_of, msg
from nexusmail.mail.addresses import check_address
from nexusmail.mail.html import SANITIZER_VERSION, sanitize_html
from nexusmail.records.links import intervention_records, link_choices
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import queries
from nexusmail.tickets.assignments import apply_reply_as_operator, assign
from nexusmail.tickets.case_edits import hold_intervention
from nexusmail.tickets.cases import (
    close_intervention,
    reopen_intervention,
)
from nexusmail.tickets.entry import NoteFile, add_note, reply_to_customer
from nexusmail.tickets.operator_reads import mark_read
from nexusmail.tickets.recurrence import local_date
from nexusmail.tickets.sequences import sequence_choices
from nexusmail.tickets.store import StorageError
from nexusmail.tickets.workload import loads, period_of

log = structlog.get_logger(__name__)

MAX_REGISTER_REF_CHARS = 100
# Form fields held shorter than [limits] max_body_chars.
_FIELD_LIMITS = {"register_ref": MAX_REGISTER_REF_CHARS, "close": 10}
# Raster images a browser only ever draws: shown inline as previews. Never SVG (it
# can hold script) and nothing the stored type merely claims beyond these.
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


# A long thread shows the customer's first mail (what the case is about) and the latest
# messages, with a link to the rest: a 500-message thread took ~120 ms to render whole.
SHOWN_LATEST = 50


def thread_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    n = "/interventions/{number:int}"
    return [
        Route(n, h.thread, methods=["GET"]),
        Route(n + "/assign", h.assign, methods=["POST"]),
        Route(n + "/notes", h.add_note, methods=["POST"]),
        Route(n + "/replies", h.reply, methods=["POST"]),
        Route(n + "/close", h.close, methods=["POST"]),
        Route(n + "/reopen", h.reopen, methods=["POST"]),
        Route(n + "/hold", h.hold, methods=["POST"]),
        Route("/messages/{id:int}/apply", h.apply_reply, methods=["POST"]),
        Route("/attachments/{id:int}", h.attachment, methods=["GET"]),
        Route("/attachments/{id:int}/preview", h.preview, methods=["GET"]),
        Route("/messages/{id:int}/raw", h.raw_message, methods=["GET"]),
    ]


def mail_frame_document(safe_html: str, images: Mapping[str, str] | None = None) -> str:
    """A whole document for a srcdoc frame: the mail's sanitized HTML under its own CSP,
    its inline images (`cid:` references) replaced by the `data:` URLs in `images`."""
    body = safe_html
    if images:
        body = _CID_SRC.sub(lambda m: _inline_image(m, images), body)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{MAIL_FRAME_CSP}">'
        '<base target="_blank"></head><body>'
        f"{body}</body></html>"
    )


# After sanitizing, every src is double-quoted; a cid: URL names a Content-ID (RFC 2392).
_CID_SRC = re.compile(r'src="cid:([^"]*)"', re.IGNORECASE)
# Inline images go into the frame as data: URLs: the frame is sandboxed without an
# origin, so it could not fetch them from the page with the operator's cookie, and its
# policy lets it load nothing else. Bounded, so a mail of huge images stays a page.
MAX_INLINE_IMAGE_BYTES = 2 * 1024 * 1024
MAX_INLINE_IMAGES_BYTES = 8 * 1024 * 1024


def _inline_image(match: re.Match[str], images: Mapping[str, str]) -> str:
    content_id = unquote(html.unescape(match.group(1))).strip("<>")
    data_url = images.get(content_id)
    return f'src="{data_url}"' if data_url else match.group(0)


def inline_images(attachments: Sequence[Any], load: Callable[[str], bytes]
                  ) -> dict[int, dict[str, str]]:
    """Per message id, {Content-ID: data URL} for its inline raster images (blocking:
    reads the stored files; called in a thread)."""
    found: dict[int, dict[str, str]] = {}
    budget = MAX_INLINE_IMAGES_BYTES
    for row in attachments:
        media_type = safe_media_type(row["content_type"])
        if media_type not in PREVIEW_TYPES or row["size"] > min(MAX_INLINE_IMAGE_BYTES,
                                                                   budget):
            continue
        try:
            data = load(row["sha256"])
        except (OSError, BlobError):
            # Missing, corrupt (never shown) or the store out of reach: a broken image.
            continue
        budget -= len(data)
        encoded = base64.b64encode(data).decode("ascii")
        found.setdefault(row["message_id"], {})[row["content_id"]] = (
            f"data:{media_type};base64,{encoded}")
    return found


def store_sanitized(tx: WriteTx, html: Mapping[int, str]) -> None:
    """Keep HTML sanitized at display time, with the version that made it."""
    tx.executemany(
        "UPDATE messages SET body_html = ?, html_sanitizer = ? WHERE id = ?",
        [(safe, SANITIZER_VERSION, message_id) for message_id, safe in html.items()])


# Why a stored file (an attachment, an original mail) cannot be shown.
_UNREADABLE = {
    "missing": msg("The content of this file is missing from the store."),
    "corrupt": msg("This file fails its integrity check and is not shown."),
    "unavailable": msg("The file store cannot be reached; try again shortly."),
}


def _path_number(request: Request, name: str) -> int:
    value = int(request.path_params[name])
    if value > MAX_ID:
        raise PageError(404, msg("There is no such page."))
    return value


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages
        self._canned: tuple[object, CannedReplies] | None = None

    def canned(self) -> CannedReplies:
        """The canned replies of the mail settings of the moment (a reload may change
        the templates directory)."""
        mail = self.p.services.settings.mail
        if self._canned is None or self._canned[0] is not mail:
            self._canned = (mail, CannedReplies(mail))
        return self._canned[1]

    async def _canned_choice(self, request: Request, detail: Any) -> tuple[list[Canned], str]:
        """The canned replies to pick from, and the reply box's text when one was
        picked (`?canned=<language>/<name>`). Template files are read in a thread."""
        canned = self.canned()
        choices = await asyncio.to_thread(canned.available, LANGUAGES)
        language, _, name = request.query_params.get("canned", "").partition("/")
        if not name:
            return choices, ""
        context = {"number": detail["number"], "subject": detail["subject"],
                   "customer_name": detail["customer"]["name"]}
        text = await asyncio.to_thread(canned.text, language, name, context)
        return choices, text or ""

    async def thread(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        async with self.p.services.store.read() as conn:
            detail = await queries.get_intervention(conn, number)
            if detail is None:
                raise PageError(404, msg("Intervention #{number} does not exist.",
                                         number=number))
            # body_html and the raw-mail link are not in the API's thread view: one more
            # query for the whole thread, never one per message.
            rows = await conn.execute_fetchall(
                "SELECT id, body_html, inbound_id IS NOT NULL, html_sanitizer FROM messages"
                " WHERE intervention_number = ?", (number,))
            cid_rows = await conn.execute_fetchall(
                "SELECT a.message_id, a.content_id, a.content_type, a.size, a.sha256"
                " FROM attachments a JOIN messages m ON m.id = a.message_id"
                " WHERE m.intervention_number = ? AND a.content_id IS NOT NULL"
                " AND m.body_html IS NOT NULL ORDER BY a.id", (number,))
            employees = await queries.list_employees(conn)
            records = await intervention_records(conn, number)
            choices = (await link_choices(conn, records["customer"]["id"])
                       if records else None)
            startable = (await sequence_choices(conn)
                         if detail["sequence"] is None and detail["status"] == "open" else [])
        everything = detail["messages"]
        hidden = (0 if request.query_params.get("all") == "1"
                  else max(0, len(everything) - SHOWN_LATEST - 1))
        shown = [everything[0], *everything[-SHOWN_LATEST:]] if hidden else everything
        shown_ids = {m["id"] for m in shown}
        rows = [r for r in rows if r[0] in shown_ids]
        has_raw = {r[0] for r in rows if r[2]}
        safe_html = {r[0]: r[1] for r in rows if r[1] and r[3] == SANITIZER_VERSION}
        stale = [(r[0], r[1]) for r in rows if r[1] and r[3] != SANITIZER_VERSION]
        # Sanitizing and reading inline images are CPU and disk work: in threads (nh3
        # lets go of the GIL), so a big mail never holds up the event loop, and with it
        # every SMTP session. Only HTML the current sanitizer did not make is sanitized,
        # once: the result is stored.
        if stale:
            resanitized = await asyncio.to_thread(
                lambda: {i: sanitize_html(h) for i, h in stale})
            await self.p.services.store.write(partial(store_sanitized, html=resanitized))
            safe_html.update(resanitized)
        blobs = self.p.services.blobs

        def build_frames() -> dict[int, str]:
            images = inline_images(list(cid_rows), blobs.get)
            return {i: mail_frame_document(h, images.get(i)) for i, h in safe_html.items()}

        frames = await asyncio.to_thread(build_frames)
        entries = [
            {**m, "frame": frames.get(m["id"]), "has_raw": m["id"] in has_raw}
            for m in shown
        ]
        assigned = {a["employee_email"] for a in detail["assignments"]}
        candidates = [e for e in employees if e["active"] and e["email"] not in assigned]
        services = self.p.services
        today = local_date(services.clock.now(), services.settings.scheduler.timezone)
        period = period_of(detail["desired_from"], detail["desired_to"], today)
        # Only an open case has the assign form: the others skip the load figures,
        # which read every open case's assignments.
        if detail["status"] == "open":
            async with services.store.read() as conn:
                load_of = await loads(conn, [e["id"] for e in candidates], *period)
            # Who is there first, then who has the least to do.
            candidates.sort(key=lambda e: (not load_of[e["id"]].free,
                                           load_of[e["id"]].jobs_in_period,
                                           load_of[e["id"]].open_jobs,
                                           e["name"] or e["email"]))
        else:
            load_of, candidates = {}, []
        await self._mark_read(operator.id, number)
        canned, reply_text = await self._canned_choice(request, detail)
        return self.p.render(
            request, "thread.html.j2", case=detail, entries=entries, hidden=hidden,
            records=records,
            choices=choices, startable=startable,
            assignable=candidates, loads=load_of, canned=canned, reply_text=reply_text,
            close_reasons=services.settings.tickets.close_reasons,
            hold_reasons=services.settings.tickets.hold_reasons,
            employees=[e for e in employees if e["active"]],
            preview_types=PREVIEW_TYPES, due=next_deadline(
                status=detail["status"], response_due=detail["response_due"],
                resolution_due=detail["resolution_due"],
                assignment_statuses=[a["status"] for a in detail["assignments"]],
                now=self.p.services.clock.now()))

    async def _mark_read(self, operator_id: int, number: int) -> None:
        """What the operator sees now is no longer new to them. Best effort: a store
        that cannot take the write must not hide the page."""
        now = self.p.services.clock.now()
        try:
            await self.p.services.store.write(
                lambda tx: mark_read(tx, operator_id, number, now=now))
        except StorageError as exc:
            log.warning("admin.read_not_recorded", intervention=number, error=str(exc))

    async def assign(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            email = form_text(form, "employee_email", 254)
        if not email:
            raise PageError(422, msg("Choose an employee to assign."))
        try:
            email = check_address(email)
        except ValueError:
            raise PageError(422, msg("{address} is not an email address.",
                                     address=email)) from None
        now, settings = self.p.services.clock.now(), self.p.services.settings
        try:
            keys = signing_keys(self.p.services)
        except ApiError as exc:
            raise PageError(exc.status, message_of(exc)) from None
        await self.p.services.store.write(lambda tx: assign(
            tx, number, email, now=now, settings=settings, reply_keys=keys,
            assigned_by=f"operator:{operator.email}"))
        self.p.services.on_outbox()
        log.info("admin.assigned", intervention=number, employee=email,
                 operator=operator.email)
        return redirect(f"/interventions/{number}", msg(
            "Assigned {address}; the assignment mail is on its way.", address=email), request)

    async def apply_reply(self, request: Request) -> Response:
        """The operator applies a technician's reply that was kept without acting."""
        operator = await self.p.operator(request)
        message_id = _path_number(request, "id")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
        now, settings = self.p.services.clock.now(), self.p.services.settings
        number = await self.p.services.store.write(lambda tx: apply_reply_as_operator(
            tx, message_id, operator=f"operator:{operator.email}", now=now,
            settings=settings))
        self.p.services.on_outbox()
        log.info("admin.reply_applied", intervention=number, message=message_id,
                 operator=operator.email)
        return redirect(f"/interventions/{number}#m{message_id}",
                        msg("The reply was applied to its assignment."), request)

    async def add_note(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        text, register_ref, files = await self._read_note_form(request)
        message_id = await add_note(
            self.p.services.store, self.p.services.blobs, number,
            author=f"operator:{operator.email}", text=text, register_ref=register_ref,
            files=files, now=self.p.services.clock.now())
        log.info("admin.note_added", intervention=number, message_id=message_id,
                 files=len(files), operator=operator.email)
        return redirect(f"/interventions/{number}#m{message_id}", msg("Note added."), request)

    async def reply(self, request: Request) -> Response:
        """The operator's answer, mailed to the customer and shown on the thread."""
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        fields, files = await self._read_files_form(request, ("text", "close"))
        if not fields["text"]:
            raise PageError(422, msg("A reply to the customer needs text."))
        close = fields["close"] == "on"
        services = self.p.services
        message_id = await reply_to_customer(
            services.store, services.blobs, number, author=f"operator:{operator.email}",
            author_name=operator.name, text=fields["text"], files=files, close=close,
            now=services.clock.now(), settings=services.settings)
        services.on_outbox()
        log.info("admin.customer_replied", intervention=number, message_id=message_id,
                 files=len(files), closed=close, operator=operator.email)
        flash = (msg("Reply sent; the intervention is closed.") if close
                 else msg("Reply sent."))
        return redirect(f"/interventions/{number}#m{message_id}", flash, request)

    async def _read_note_form(
        self, request: Request
    ) -> tuple[str, str, list[NoteFile]]:
        fields, files = await self._read_files_form(request, ("text", "register_ref"))
        if not fields["text"] and not files:
            raise PageError(422, msg("A note needs text or a file."))
        return fields["text"], fields["register_ref"], files

    async def _read_files_form(
        self, request: Request, names: Sequence[str]
    ) -> tuple[dict[str, str], list[NoteFile]]:
        limits = self.p.services.settings.limits
        # Refused as soon as the body outgrows the limit, chunked uploads included.
        limited = limit_body(request, limits.max_message_bytes + FORM_OVERHEAD_BYTES)
        files: list[NoteFile] = []
        async with limited.form(max_files=limits.max_attachments, max_fields=10,
                                max_part_size=limits.max_message_bytes) as form:
            # Checked before any file is read or stored.
            check_csrf(request, form)
            fields = {name: form_text(form, name, _FIELD_LIMITS.get(name, limits.max_body_chars))
                      for name in names}
            total = 0
            for upload in form.getlist("file"):
                if not isinstance(upload, UploadFile) or (not upload.filename
                                                          and not upload.size):
                    continue  # a file input left empty
                data = await upload.read()
                total += len(data)
                if total > limits.max_message_bytes:
                    raise PageError(413, msg("The files are larger than {limit} bytes.",
                                             limit=limits.max_message_bytes))
                files.append(NoteFile.upload(upload.filename, upload.content_type, data))
        return fields, files

    async def close(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            note = form_text(form, "note", 10_000)
            reason = form_text(form, "reason", 200)
        if reason and reason not in self.p.services.settings.tickets.close_reasons:
            raise PageError(422, msg("Choose one of the reasons listed."))
        now = self.p.services.clock.now()
        await self.p.services.store.write(lambda tx: close_intervention(
            tx, number, now=now, author=f"operator:{operator.email}", note=note,
            reason=reason))
        log.info("admin.closed", intervention=number, operator=operator.email)
        return redirect(f"/interventions/{number}",
                        msg("Intervention #{number} closed.", number=number), request)

    async def hold(self, request: Request) -> Response:
        """Suspend the case with a reason of the firm's list ([tickets] hold_reasons)."""
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            reason = form_text(form, "reason", 200)
        if reason not in self.p.services.settings.tickets.hold_reasons:
            raise PageError(422, msg("Choose one of the reasons listed."))
        now = self.p.services.clock.now()
        await self.p.services.store.write(lambda tx: hold_intervention(
            tx, number, reason=reason, now=now, author=f"operator:{operator.email}"))
        log.info("admin.on_hold", intervention=number, reason=reason, operator=operator.email)
        return redirect(f"/interventions/{number}",
                        msg("Intervention #{number} is on hold.", number=number), request)

    async def reopen(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = _path_number(request, "number")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
        now = self.p.services.clock.now()
        await self.p.services.store.write(lambda tx: reopen_intervention(
            tx, number, now=now, author=f"operator:{operator.email}"))
        log.info("admin.reopened", intervention=number, operator=operator.email)
        return redirect(f"/interventions/{number}",
                        msg("Intervention #{number} reopened.", number=number), request)

    async def attachment(self, request: Request) -> Response:
        await self.p.operator(request)
        attachment = await self._attachment(request)
        return Response(await self._attachment_bytes(attachment),
                        media_type=safe_media_type(attachment["content_type"]),
                        headers=download_headers(attachment["filename"]))

    async def preview(self, request: Request) -> Response:
        await self.p.operator(request)
        attachment = await self._attachment(request)
        media_type = safe_media_type(attachment["content_type"])
        if media_type not in PREVIEW_TYPES:
            raise PageError(404, msg("This file has no preview; download it instead."))
        return Response(await self._attachment_bytes(attachment), media_type=media_type,
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": DOWNLOAD_CSP,
                                 "Cache-Control": "private, max-age=3600"})

    async def _attachment(self, request: Request) -> queries.StoredAttachmentView:
        attachment_id = _path_number(request, "id")
        async with self.p.services.store.read() as conn:
            attachment = await queries.get_attachment(conn, attachment_id)
        if attachment is None:
            raise PageError(404, msg("There is no such file."))
        return attachment

    async def _attachment_bytes(self, attachment: queries.StoredAttachmentView) -> bytes:
        try:
            return await read_attachment(self.p.services.blobs, attachment["id"],
                                         attachment["sha256"], event_prefix="admin")
        except BlobReadFailed as exc:
            raise PageError(exc.status, _UNREADABLE[exc.reason]) from None

    async def raw_message(self, request: Request) -> Response:
        await self.p.operator(request)
        message_id = _path_number(request, "id")
        async with self.p.services.store.read() as conn:
            sha = await queries.get_message_raw_sha(conn, message_id)
            raw = await queries.get_raw_message(conn, sha) if sha else None
        if raw is None:
            raise PageError(404, msg("This message has no original mail."))
        try:
            data = await raw_mail_bytes(self.p.services.blobs, raw, message_id,
                                        event_prefix="admin")
        except BlobReadFailed as exc:
            raise PageError(exc.status, _UNREADABLE[exc.reason]) from None
        return Response(data, media_type="message/rfc822",
                        headers=download_headers(f"message-{message_id}.eml"))
