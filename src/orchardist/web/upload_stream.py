"""An uploaded file read from the request as it arrives, never whole in memory.

`StreamedUpload(request).chunks()` yields the bytes of the multipart/form-data part named
`file` (or, with Content-Type application/octet-stream, the body itself) as the client
sends them, so a 4 GB .ipa goes straight to the file store. The form's other fields (short
text, such as `replace`) are collected into `fields` as the body is read: a field after
the file is known once `chunks()` is exhausted.

Whatever is wrong raises `UploadError(status, message)` *inside* the iteration, so the
consumer (`FileStore.put`) discards what it wrote: another Content-Type (415); a body that
is not multipart data, a second file, an unexpected file part, a long or numerous field,
or no file at all (422); a body that ends before the multipart's closing boundary, or a
client that disconnects midway (400: the upload was cut off).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FIELD_BYTES = 1024  # the longest text field
MAX_FIELDS = 16
CUT_OFF = "the upload was cut off before its end: nothing was stored. Send it again"


class UploadError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class StreamedUpload:
    def __init__(self, request: Request, field: str = "file") -> None:
        self.request, self.field = request, field
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self._pending: list[bytes] = []
        self._part: str | None = None  # the current part's name
        self._disposition = b""
        self._header = (b"", b"")
        self._in_file = self._seen_file = self._ended = False

    async def chunks(self) -> AsyncGenerator[bytes]:
        kind, params = parse_options_header(self.request.headers.get("content-type"))
        if kind == b"application/octet-stream":
            async for chunk in self._body():
                yield chunk
            return
        if kind != b"multipart/form-data":
            raise UploadError(415, "send the .ipa as multipart/form-data (field "
                              f"`{self.field}`) or as application/octet-stream")  # fmt: skip
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError(422, "the multipart Content-Type names no boundary")
        parser = MultipartParser(boundary, self._callbacks())
        async for chunk in self._body():
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise UploadError(422, f"the body is not multipart form data: {exc}") from exc
            if self._pending:
                yield b"".join(self._pending)
                self._pending.clear()
        if not self._ended:
            raise UploadError(400, CUT_OFF)
        if not self._seen_file:
            raise UploadError(422, f"no file in the form: send the .ipa as field `{self.field}`")

    async def _body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.request.stream():
                if chunk:
                    yield chunk
        except ClientDisconnect as exc:
            raise UploadError(400, CUT_OFF) from exc

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._part, self._disposition, self._in_file = None, b"", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0] + data[start:end], self._header[1])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0], self._header[1] + data[start:end])

    def _header_end(self) -> None:
        name, value = self._header
        if name.lower() == b"content-disposition":
            self._disposition = value
        self._header = (b"", b"")

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise UploadError(422, "a form part has no name (Content-Disposition)")
        self._part = name.decode("utf-8", "replace")
        if b"filename" in options or self._part == self.field:
            if self._part != self.field:
                raise UploadError(422, f"unexpected file `{self._part}`: send the .ipa as "
                                  f"field `{self.field}`")  # fmt: skip
            if self._seen_file:
                raise UploadError(422, "more than one file: upload one .ipa at a time")
            self._in_file = self._seen_file = True
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
        elif len(self.fields) >= MAX_FIELDS:
            raise UploadError(422, f"more than {MAX_FIELDS} form fields")
        else:
            self.fields[self._part] = ""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(data[start:end])
            return
        assert self._part is not None
        text = self.fields[self._part] + data[start:end].decode("utf-8", "replace")
        if len(text) > FIELD_BYTES:
            raise UploadError(422, f"form field `{self._part}` is longer than {FIELD_BYTES}")
        self.fields[self._part] = text

    def _end(self) -> None:
        self._ended = True
