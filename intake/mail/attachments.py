"""Attachments: sanitised names, size and count caps, archives inspected but never extracted.

A refused file keeps its index, type and size and a reason, never its bytes; the purpose guessed
from its name (an identity document, an agent's authority) goes to the case file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
import zipfile
from email.message import Message

from intake.mail.headers import clean_header_text, decode_words
from intake.mail.message import Attachment, MailboxPolicy, megabytes
from intake.mail.mime import decoded_payload

_ARCHIVE_NAMES = re.compile(r"\.(?:zip|7z|rar|gz|tgz|tar|bz2|xz|zst)$", re.IGNORECASE)


_ID_WORDS = re.compile(
    r"passport|driving|licen[cs]e|\bid\b|identity|id[_ -]?card|utility|bill|proof|photo", re.IGNORECASE
)


_AUTHORITY_WORDS = re.compile(
    r"authori[sz]|authority|permission|power[_ -]?of[_ -]?attorney|\bpoa\b|lpa|mandate|procura|vollmacht"
    r"|consent",
    re.IGNORECASE,
)


def sanitise_filename(name: str | None, index: int) -> str:
    """No directories, no control characters, no leading dots; the extension survives the cap."""
    name = clean_header_text(decode_words(name or "")[:2000], 2000)
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[^\w.\-() ]", "_", name).strip(" .")
    if not name:
        return f"attachment-{index}"
    if len(name) > 100:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[: 95 - len(ext)]}.{ext}" if dot and len(ext) <= 10 else name[:100]
    return name


def read_attachment(
    part: Message, ctype: str, index: int, policy: MailboxPolicy, notes: list[str]
) -> Attachment:
    try:
        raw_name = part.get_filename()
    except Exception:
        raw_name = None
    filename = sanitise_filename(raw_name, index)
    purpose = (
        "agent_authority"
        if _AUTHORITY_WORDS.search(filename)
        else "identity_document"
        if _ID_WORDS.search(filename)
        else None
    )
    if index > policy.max_attachments:
        reason = f"over the {policy.max_attachments} attachments cap"
        notes.append(f"attachment {index} refused: {reason}")
        return Attachment(index, filename, ctype, 0, None, refused=reason, purpose=purpose)
    size = _encoded_size(part)
    if size > policy.max_attachment_bytes:
        reason = f"{size} bytes over the {megabytes(policy.max_attachment_bytes)} cap"
        notes.append(f"attachment {index} refused: {reason}")
        return Attachment(index, filename, ctype, size, None, refused=reason, purpose=purpose)
    data = decoded_payload(part) or b""
    found = Attachment(
        index, filename, ctype, len(data), hashlib.sha256(data).hexdigest(), data, None, purpose
    )
    if len(data) > policy.max_attachment_bytes:
        found.refused = f"{len(data)} bytes over the {megabytes(policy.max_attachment_bytes)} cap"
    else:
        found.refused = _archive_refusal(data, filename, ctype, policy)
    if found.refused:
        notes.append(f"attachment {index} refused: {found.refused}")
        found.data = b""
    if (part.get("content-transfer-encoding") or "").__str__().strip().lower() == "base64":
        _check_base64(part, index, notes)
    return found


def _encoded_size(part: Message) -> int:
    """The decoded size, computed from the encoded text: a 30 MB file is refused undecoded."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return 0
    cte = (part.get("content-transfer-encoding") or "").__str__().strip().lower()
    if cte == "base64":
        n = len(payload) - sum(payload.count(c) for c in "\r\n \t")
        tail = payload[-200:].rstrip()  # the padding is at the end: no copy of the whole payload
        pad = len(tail) - len(tail.rstrip("="))
        return max(0, n * 3 // 4 - pad)
    return len(payload)


def _check_base64(part: Message, index: int, notes: list[str]) -> None:
    payload = part.get_payload()
    if isinstance(payload, str):
        compact = "".join(payload.split())
        try:
            base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            notes.append(f"attachment {index}: base64 damaged or truncated, kept as decoded")


def _archive_refusal(data: bytes, filename: str, ctype: str, policy: MailboxPolicy) -> str | None:
    """Archives are opened only to read their directory: a declared size or ratio out of
    proportion (a zip bomb), too many entries or archives inside archives refuse the file."""
    is_zip = data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or filename.lower().endswith(".zip") or "zip" in ctype
    if is_zip:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
            return "an archive that cannot be read"
        declared = sum(max(0, e.file_size) for e in entries)
        names = [e.filename for e in entries]
        return _archive_verdict(declared, len(data), len(entries), names, policy)
    if data[:2] == b"\x1f\x8b" and len(data) >= 18:
        declared = struct.unpack("<I", data[-4:])[0]  # ISIZE: the size modulo 2**32
        return _archive_verdict(declared, len(data), 1, [], policy)
    return None


def _archive_verdict(
    declared: int, size: int, entries: int, names: list[str], policy: MailboxPolicy
) -> str | None:
    if entries > policy.max_archive_entries:
        return f"archive with {entries} entries, over the {policy.max_archive_entries} cap (never extracted)"
    if declared > policy.max_archive_uncompressed_bytes:
        return (
            f"archive declares {declared} bytes uncompressed, over the "
            f"{megabytes(policy.max_archive_uncompressed_bytes)} cap: a zip bomb (never extracted)"
        )
    if size and declared / size > policy.max_archive_ratio:
        return (
            f"archive expands {declared // max(size, 1)} times its size, over the "
            f"{policy.max_archive_ratio}x cap: a zip bomb (never extracted)"
        )
    if any(_ARCHIVE_NAMES.search(n) for n in names):
        return "archive contains archives (never extracted)"
    return None
