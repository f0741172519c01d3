"""Letters to the person and notices to the privacy team.

Templates are plain text under ``dsar/letters``. The person's address and name arrive in the
activity input (encrypted in history by the payload codec) and are used only to render and
address the letter; they are never logged. When no email address is known (a request made by
post or phone) the letter goes to the privacy team to be posted, marked as such.
"""

# No `from __future__ import annotations` here: payload dataclasses keep real type hints (see
# dsar/model.py).

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message

import jinja2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dsar.blobs import BlobStore
from dsar.casefile import LetterEntry, LetterLog
from dsar.datamap import DataMap
from dsar.delivery import response_paragraph
from dsar.logs import bind_case, get_logger
from dsar.mail import LetterRefused, Mailer, build_message
from dsar.metrics import LETTERS_SENT
from dsar.settings import Settings
from dsar.wording import as_text, blocks, lay_out, long_date, long_time, plural, system_labels

log = get_logger("dsar.activities.notify")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("dsar", "letters"),
    autoescape=False,  # the source of the text part; the HTML part escapes it (dsar.wording)
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["long_date"] = long_date
_TEMPLATES.filters["long_time"] = long_time
_TEMPLATES.globals["plural"] = plural

#: Letters addressed to the privacy team rather than the person (escalations to the DPO).
TEAM_LETTERS = frozenset(
    {"reminder", "escalation", "breach", "manual_escalation", "system_unreachable", "operator_task"}
)
_TO_DPO = frozenset({"escalation", "breach"})
#: Letters to a named member of staff (``Letter.to``): the owner of a system searched by hand.
STAFF_LETTERS = frozenset({"manual_search", "manual_reminder"})
#: Letters to the address on file (``Letter.to``) rather than the one the request gave.
ON_FILE_LETTERS = frozenset({"confirm_request"})
#: Letters that carry the person's status page link (``dsar.links``, purpose ``view_status``):
#: the acknowledgement, and those that ask the person for something the page can take.
STATUS_LINK_LETTERS = frozenset({"acknowledgement", "identity_request", "clarification_request"})
#: What the case file's copy of a letter says instead of a credential the letter carried.
NOT_KEPT = "[sent to the recipient; not kept in the case file]"


@dataclass
class Letter:
    key: str  # idempotency key, e.g. "DSR-2026-000001/letter/acknowledgement/1"
    reference: str
    kind: str  # template name in dsar/letters
    to: str | None  # the person's address; None for team letters or when no address is held
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class LetterReceipt:
    key: str
    kind: str
    audience: str  # "person", "team", or "post" (no address: the team posts it)
    transport: str  # "smtp" or "file"


def render(kind: str, facts: dict[str, str]) -> tuple[str, str]:
    """Render a template to (subject, text): the first line of a template is its Subject, the
    rest is laid out as :func:`dsar.wording.lay_out` does (wrapped, one paragraph per block)."""
    subject, body = _source(kind, facts)
    return subject, as_text(blocks(body))


def render_letter(kind: str, facts: dict[str, str]) -> tuple[str, str, str]:
    """(subject, text, html) of a letter: the HTML alternative says exactly what the text says."""
    subject, body = _source(kind, facts)
    text, html = lay_out(body, subject)
    return subject, text, html


def _source(kind: str, facts: dict[str, str]) -> tuple[str, str]:
    source = _TEMPLATES.get_template(f"{kind}.txt").render(**facts)
    first, _, body = source.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"letter template {kind!r} must start with a Subject line")
    return " ".join(first.removeprefix("Subject: ").split()), body


class NotifyActivities:
    def __init__(
        self,
        mailer: Mailer,
        settings: Settings,
        blobs: BlobStore | None = None,
        letters: LetterLog | None = None,
        datamap: DataMap | None = None,
    ) -> None:
        self.mailer = mailer
        self.settings = settings
        self.blobs = blobs
        self.letters = letters  # files a copy of each letter for the case file (the console)
        self.datamap = datamap  # the labels the person reads for system names

    @activity.defn(name="send_letter")
    def send_letter(self, letter: Letter) -> LetterReceipt:
        with bind_case(letter.reference):
            try:
                receipt = self._send(letter)
            except (UnicodeError, ValueError, jinja2.TemplateError, LetterRefused) as e:
                # Retrying cannot fix a letter that cannot be written or that the relay refuses
                # for good (a 5xx): the case shows an operator task instead. The message names
                # the letter and the error's type, never the text.
                log.warning("letter not sent", kind=letter.kind, error_type=type(e).__name__)
                raise ApplicationError(
                    f"the {letter.kind} letter could not be sent ({type(e).__name__})",
                    type=type(e).__name__,
                    non_retryable=True,
                ) from None
            log.info("letter sent", kind=receipt.kind, status=receipt.audience, type=receipt.transport)
            LETTERS_SENT.labels(receipt.kind, receipt.audience).inc()
            return receipt

    def _send(self, letter: Letter) -> LetterReceipt:
        facts = dict(letter.facts)
        if letter.kind in STAFF_LETTERS and facts.get("system"):
            # The owner's task page: whom to look for is there, behind sign-in, not in email.
            facts["task_link"] = (
                f"{self.settings.console_url.rstrip('/')}/console/tasks/{letter.reference}/{facts['system']}"
            )
        # where staff open the case (the team's letters: an escalation, an operator task)
        facts["case_link"] = f"{self.settings.console_url.rstrip('/')}/console/cases/{letter.reference}"
        masked: dict[str, str] = {}  # what the case file's copy says instead of a credential
        if facts.get("link_purpose"):
            # The link is signed here, so the token (a credential) never enters workflow
            # history; a retried letter mints a new one, and only the one delivered is used.
            from dsar.links import PROVIDABLE_KINDS, mint_link

            # Asked of a person who gave no email (the letter goes by post), "email" is among
            # what is missing, but the form cannot take it: it asks for the rest.
            kinds = [k for k in facts.get("link_kinds", "").split(",") if k in PROVIDABLE_KINDS]
            facts["link"] = mint_link(
                self.settings,
                letter.reference,
                facts["link_purpose"],
                kinds=kinds or None,
                hours=int(facts.get("link_hours", "72")),
                declaration=bool(facts.get("link_declaration")),
            )
            masked["link"] = NOT_KEPT
        if letter.kind in STATUS_LINK_LETTERS:
            from dsar.links import STATUS_LINK_HOURS, mint_link

            facts["status_link"] = mint_link(
                self.settings, letter.reference, "view_status", hours=STATUS_LINK_HOURS
            )
            masked["status_link"] = NOT_KEPT
        if facts.get("outcome_ref"):  # what was erased or changed, and what was kept and why
            if self.blobs is None:
                raise ValueError("this letter needs the blob store (its text is kept there)")
            facts["outcome"] = self.blobs.get(facts["outcome_ref"]).decode().strip()
        if facts.get("link_ref") or facts.get("password_ref"):
            # Credentials of the access package: read from the blob store here, by reference,
            # so that neither the URL nor the password is in the workflow's history.
            if self.blobs is None:
                raise ValueError("this letter needs the blob store (a download link or password)")
            if facts.get("link_ref"):
                url = self.blobs.get(facts["link_ref"]).decode()
                for target, link in ((facts, url), (masked, NOT_KEPT)):
                    target["outcome"] = response_paragraph(
                        link,
                        datetime.fromisoformat(facts["link_expires"]),
                        encrypted=bool(facts.get("encrypted")),
                        timezone=self.settings.timezone,
                    ) + (f"\n\n{facts['transfer_note']}" if facts.get("transfer_note") else "")
            if facts.get("password_ref"):
                facts["password"] = self.blobs.get(facts["password_ref"]).decode()
                masked["password"] = NOT_KEPT
        if facts.get("outcome_note") and facts.get("outcome"):  # e.g. a system left out of a change
            facts["outcome"] += f"\n\n{facts['outcome_note']}"
            if "outcome" in masked:
                masked["outcome"] += f"\n\n{facts['outcome_note']}"
        for key in ("searched", "skipped"):  # system names, as the person reads them
            if key in facts:
                facts[key] = system_labels(self.datamap, facts[key])
        subject, body, html = render_letter(letter.kind, facts)
        if letter.kind in TEAM_LETTERS:
            to = self.settings.dpo_email if letter.kind in _TO_DPO else self.settings.operator_email
            audience = "team"
        elif letter.kind in STAFF_LETTERS | ON_FILE_LETTERS:
            if not letter.to:
                raise ValueError(f"letter {letter.kind!r} needs its recipient's address")
            to, audience = letter.to, "staff" if letter.kind in STAFF_LETTERS else "person"
        elif letter.to:
            to, audience = letter.to, "person"
        else:
            to, audience = self.settings.operator_email, "post"
            subject = f"[dsar] Please post this letter for {letter.reference}: {subject}"
        msg = build_message(letter.key, self.settings.mail_from, to, subject, body, html)
        transport = self.mailer.send(letter.key, msg)
        if masked:
            copy_subject, copy_body = render(letter.kind, {**facts, **masked})
            if audience == "post":
                copy_subject = subject
            msg = build_message(letter.key, self.settings.mail_from, to, copy_subject, copy_body)
        self._file(letter, msg, audience, transport)
        return LetterReceipt(key=letter.key, kind=letter.kind, audience=audience, transport=transport)

    def _file(self, letter: Letter, copy: Message, audience: str, transport: str) -> None:
        """Keep the case file's copy (encrypted, credentials removed), once per letter key."""
        if self.letters is None or self.blobs is None or self.letters.filed(letter.key):
            return
        ref = self.blobs.put(bytes(copy), case=letter.reference, name=f"letter-{letter.kind}.eml")
        self.letters.file(
            LetterEntry(letter.key, letter.kind, audience, transport, ref, datetime.now(UTC)),
            letter.reference,
        )
