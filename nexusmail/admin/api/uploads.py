"""Reading a multipart form of text fields and files, as notes and replies send them.

The body is bounded while it arrives (a chunked upload has no Content-Length to refuse
up front), files together are held to `[limits] max_message_bytes` like an inbound
mail, and a browser's empty file input is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from nexusmail.admin.api.base import ApiError
from nexusmail.config import LimitsSettings
from nexusmail.i18n import msg
from nexusmail.tickets.entry import NoteFile

# Text fields and multipart framing travel beside the files.
FORM_OVERHEAD_BYTES = 1024 * 1024
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


@dataclass(frozen=True)
class UploadForm:
    fields: dict[str, str]
    files: list[NoteFile]


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").partition(";")[0]
    return content_type.strip().lower() in FORM_TYPES


async def read_upload_form(
    request: Request, limits: LimitsSettings, text_fields: Sequence[str]
) -> UploadForm:
    """The named text fields (stripped; "" when absent) and every `file` part."""
    limited = limit_body(request, limits.max_message_bytes + FORM_OVERHEAD_BYTES)
    files: list[NoteFile] = []
    async with limited.form(max_files=limits.max_attachments, max_fields=10) as form:
        fields = {name: text_field(form.get(name), name).strip() for name in text_fields}
        total = 0
        for upload in form.getlist("file"):
            if not isinstance(upload, UploadFile):
                raise ApiError(422, msg("{field}: should be a file upload, not a text field",
                                        field="file"))
            if not upload.filename and not upload.size:
                continue  # a browser's file input left empty
            data = await upload.read()
            total += len(data)
            if total > limits.max_message_bytes:
                raise ApiError(413, msg(
                    "the files are larger than {most} bytes ([limits] max_message_bytes)",
                    most=limits.max_message_bytes))
            files.append(NoteFile.upload(upload.filename, upload.content_type, data))
    return UploadForm(fields, files)


def limit_body(request: Request, limit: int) -> Request:
    """The same request, refused with 413 once more than `limit` body bytes arrived."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, msg("the request body is larger than {most} bytes",
                                most=limit))
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise ApiError(413, msg("the request body is larger than {most} bytes",
                                most=limit))
        return message

    return Request(request.scope, receive)


def text_field(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(422, msg("{field}: should be text, not a file", field=name))
    return value
