"""Console form bodies: read once per request with a size limit, URL-encoded or multipart
(a file upload), and kept for the handler after `guard` has read its CSRF field."""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from orchardist.web.bodies import read_limited_body
from orchardist.web.console.refusal import ConsoleRefusalError

MAX_FORM_BYTES = 8 * 1024 * 1024  # a push certificate or a profile with its payloads
MAX_FIELDS = 5000  # the profile builder's forms have many
MAX_FILES = 4


async def form_of(request: Request) -> FormData:
    """The request's form fields (files as UploadFile); a refusal page when too large (413)
    or when a multipart body does not parse (400)."""
    cached = getattr(request.state, "console_form", None)
    if isinstance(cached, FormData):
        return cached
    try:
        body = await read_limited_body(request, MAX_FORM_BYTES)
    except HTTPException as exc:  # a page to read, not the API's text
        raise ConsoleRefusalError(exc.status_code, "The form was refused", str(exc.detail)) from exc
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        parser = MultiPartParser(
            request.headers, _once(body), max_files=MAX_FILES, max_fields=MAX_FIELDS
        )
        try:
            form = await _in_memory(await parser.parse())
        except MultiPartException as exc:
            message = f"The form did not arrive whole ({exc.message}): nothing was changed."
            raise ConsoleRefusalError(400, "The form was refused", message) from exc
    else:
        text = body.decode("utf-8", "replace")
        pairs: list[tuple[str, str | UploadFile]] = [
            *parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        ]
        form = FormData(pairs)
    request.state.console_form = form
    return form


async def _in_memory(form: FormData) -> FormData:
    """The form with each file's bytes in memory and its temporary file closed: the body
    is in memory already (at most MAX_FORM_BYTES), and nothing else would close them when
    a handler refuses before reading (a ResourceWarning, an open file until collected)."""
    fields: list[tuple[str, str | UploadFile]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            await value.close()
            value = UploadFile(io.BytesIO(data), size=len(data), filename=value.filename,
                               headers=value.headers)  # fmt: skip
        fields.append((name, value))
    return FormData(fields)


async def _once(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body
