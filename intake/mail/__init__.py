"""Email intake: one raw message in, a classified and safe intake result out.

Pure: ``parse_message(raw, policy)`` does no I/O, never logs and never raises. The poller
(``intake/mailbox.py``) stores the attachments it returns and opens or attaches the case;
``dsar intake-email --dry-run`` prints a kinds-only summary. Reasons and notes name rules,
counts and sizes, never a personal value, because they end up in case notes, logs and dry-run
output.

One module per concern, in the order ``parse.py`` calls them:

- ``headers``      decoding and sanitising headers; mail that is not a case (auto-replies, bounces)
- ``body``, ``mime``  the MIME tree, transfer encodings, character sets, HTML to text
- ``attachments``  names, caps, archives inspected but never extracted
- ``cleaning``     quotes, forwards, disclaimers and signatures cut: the person's own words
- ``classify``     the request type from weighted phrases (and the trained second opinion)
- ``identifiers``  the person's identifiers and an agent's details
- ``regime``       which law applies
- ``message``      what all of them produce: ``ParsedMessage``, ``Attachment``, the policy
"""

from intake.mail.message import Attachment, MailboxPolicy, Outcome, ParsedMessage, oversize_reason
from intake.mail.parse import classification_text, parse_message

__all__ = [
    "Attachment",
    "MailboxPolicy",
    "Outcome",
    "ParsedMessage",
    "classification_text",
    "oversize_reason",
    "parse_message",
]
