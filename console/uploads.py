"""Documents people upload on the public pages (an agent's signed permission, an ID scan).

The body is read with a hard cap before anything is parsed, so an oversized or endless upload
costs at most the cap; the multipart parse is python-multipart's, in memory. Only PDF, JPEG and
PNG are taken, recognised by their first bytes (never by the name or type the browser claims):
a privacy team opens these files, and an executable named ``permission.pdf`` is not one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

#: The largest document a person can upload (a scanned letter of a few pages).
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
#: Text fields beside the file: a token, a few answers.
MAX_FIELD_BYTES = 4 * 1024
MAX_PARTS = 30

#: What a document may be, by its first bytes.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


class UploadRefused(ValueError):
    """Why an upload was not taken, in words for the person (``status``: the HTTP status)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """A multipart form: its text fields (first value of each) and its files, by field name."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def document(self, name: str, *, required: bool = True) -> bytes | None:
        """The file sent as ``name`` if it is a PDF, JPEG or PNG; refused with a reason if not."""
        data = self.files.get(name, b"")
        if not data:
            if required:
                raise UploadRefused("Choose a file to upload (PDF, JPEG or PNG)", 422)
            return None
        if not any(data.startswith(magic) for magic, _ in SIGNATURES):
            raise UploadRefused("The file must be a PDF, JPEG or PNG", 415)
        return data


def content_type(data: bytes) -> str:
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), "application/octet-stream")


async def read_upload(request: Request, max_bytes: int = MAX_DOCUMENT_BYTES) -> Upload:
    """The multipart body, read to at most ``max_bytes`` plus room for the text fields."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused("This form could not be read. Please go back and send it again.", 415)
    cap = max_bytes + MAX_PARTS * MAX_FIELD_BYTES
    too_large = UploadRefused(f"The file is too large: at most {max_bytes // (1024 * 1024)} MB", 413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_large
    return parse_multipart(bytes(body), boundary, max_bytes)


def parse_multipart(body: bytes, boundary: bytes, max_bytes: int = MAX_DOCUMENT_BYTES) -> Upload:
    upload = Upload()
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header_name = bytearray()
    header_value = bytearray()

    def part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise UploadRefused("This form has too many parts", 400)
        parts.append(({}, bytearray()))

    def header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def header_val(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def header_end() -> None:
        parts[-1][0][bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": part_begin,
            "on_header_field": header_field,
            "on_header_value": header_val,
            "on_header_end": header_end,
            "on_part_data": part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except UploadRefused:
        raise
    except Exception:  # python-multipart raises several types for a broken body
        raise UploadRefused("This form could not be read. Please go back and send it again.", 400) from None
    for headers, data in parts:
        _, params = parse_options_header(headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            continue
        if b"filename" in params:
            if len(data) > max_bytes:
                raise UploadRefused(f"The file is too large: at most {max_bytes // (1024 * 1024)} MB", 413)
            upload.files.setdefault(name, bytes(data))
        else:
            if len(data) > MAX_FIELD_BYTES:
                raise UploadRefused("An answer in this form is too long", 413)
            try:
                upload.fields.setdefault(name, data.decode("utf-8"))
            except UnicodeDecodeError:
                raise UploadRefused(
                    "This form could not be read. Please go back and send it again.", 400
                ) from None
    return upload
