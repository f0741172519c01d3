"""How dsar writes to the person: the request's own name, dates, counts, and a letter's layout.

Art. 12(1) asks for "concise, transparent, intelligible and easily accessible form, using clear
and plain language"; the regimes name their rights differently (the UK's "subject access
request", California's "request to know"), and a person recognises the name their law uses.

A letter is written as plain paragraphs (no hard line breaks inside a paragraph), lines starting
"- " for a list, and lines indented by four spaces for what is to be copied exactly (a link, a
password, a command). :func:`lay_out` wraps it at :data:`WIDTH` columns for the text part
(``textwrap``; links and passwords never broken) and builds the HTML alternative from the same
blocks, so both say the same thing.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup, escape

from dsar.model import Regime, RequestType
from dsar.regimes import REGIMES, REQUEST_LABELS

#: Columns of a letter's text part (RFC 5322 recommends lines of at most 78 characters).
WIDTH = 72

_GDPR = frozenset({Regime.UK_GDPR, Regime.EU_GDPR})
_US_STATES = frozenset({Regime.VCDPA, Regime.CPA, Regime.CTDPA, Regime.UCPA})


@dataclass(frozen=True)
class RequestName:
    """A request as the person's law calls it: ``name`` after "your" ("your erasure request"),
    ``a_name`` on its own ("an erasure request"), and the provision it relies on."""

    name: str
    a_name: str
    provision: str = ""


def _n(name: str, provision: str = "") -> RequestName:
    article = "an" if name[0] in "aeiou" else "a"
    return RequestName(name, f"{article} {name}", provision)


#: GDPR (UK and EU): the articles of Chapter III. The UK says "subject access request" (ICO).
_GDPR_NAMES: dict[RequestType, RequestName] = {
    RequestType.ACCESS: _n("access request", "Article 15"),
    RequestType.ERASURE: _n("erasure request", "Article 17"),
    RequestType.RECTIFICATION: _n("request to correct your personal data", "Article 16"),
    RequestType.PORTABILITY: _n("data portability request", "Article 20"),
    RequestType.RESTRICTION: _n("request to restrict the use of your personal data", "Article 18"),
    RequestType.OBJECTION: _n("objection to the use of your personal data", "Article 21"),
    RequestType.OPT_OUT_SALE_SHARING: _n("objection to the use of your personal data", "Article 21"),
    RequestType.LIMIT_SENSITIVE: _n("request to restrict the use of your personal data", "Article 18"),
}
_LIMIT = "request to limit the use of sensitive personal information"
#: CCPA/CPRA: the rights as Cal. Civ. Code §§1798.100-.121 name them.
_CCPA_NAMES: dict[RequestType, RequestName] = {
    RequestType.ACCESS: _n("request to know", "§1798.110"),
    RequestType.PORTABILITY: _n("request to know (a portable copy)", "§1798.130(a)(2)(A)"),
    RequestType.ERASURE: _n("request to delete", "§1798.105"),
    RequestType.RECTIFICATION: _n("request to correct", "§1798.106"),
    RequestType.OPT_OUT_SALE_SHARING: _n("request to opt out of sale or sharing", "§1798.120"),
    RequestType.LIMIT_SENSITIVE: _n(_LIMIT, "§1798.121"),
    RequestType.RESTRICTION: _n(_LIMIT, "§1798.121"),
    RequestType.OBJECTION: _n("request to opt out of sale or sharing", "§1798.120"),
}
#: Virginia, Colorado, Connecticut, Utah: "a consumer may invoke the right to ..."
_US_NAMES: dict[RequestType, RequestName] = {
    RequestType.ACCESS: _n("request to access your personal data"),
    RequestType.PORTABILITY: _n("request for a portable copy of your personal data"),
    RequestType.ERASURE: _n("request to delete your personal data"),
    RequestType.RECTIFICATION: _n("request to correct your personal data"),
    RequestType.OPT_OUT_SALE_SHARING: _n("request to opt out"),
    RequestType.OBJECTION: _n("request to opt out"),
    RequestType.RESTRICTION: _n("request to opt out"),
    RequestType.LIMIT_SENSITIVE: _n("request to opt out"),
}
#: LGPD Art 18 and PIPEDA: the rights in the law's own order.
_OTHER_NAMES: dict[RequestType, RequestName] = {
    RequestType.ACCESS: _n("request for access to your personal data"),
    RequestType.PORTABILITY: _n("request for a portable copy of your personal data"),
    RequestType.ERASURE: _n("request to delete your personal data"),
    RequestType.RECTIFICATION: _n("request to correct your personal data"),
    RequestType.RESTRICTION: _n("request to block the use of your personal data"),
    RequestType.OBJECTION: _n("objection to the use of your personal data"),
    RequestType.OPT_OUT_SALE_SHARING: _n("objection to the use of your personal data"),
    RequestType.LIMIT_SENSITIVE: _n("objection to the use of your personal data"),
}


def request_name(regime: Regime, request_type: RequestType) -> RequestName:
    """What the person's law calls the request (LEGAL.md §1)."""
    if regime is Regime.UK_GDPR and request_type is RequestType.ACCESS:
        return _n("subject access request", "Article 15")
    if regime in _GDPR:
        return _GDPR_NAMES[request_type]
    if regime is Regime.CCPA:
        return _CCPA_NAMES[request_type]
    if regime in _US_STATES:
        return _US_NAMES[request_type]
    return _OTHER_NAMES[request_type]


#: Month names (not strftime's %B, which follows the server's locale).
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip


def long_date(value: date | datetime | str) -> str:
    """``5 January 2027``: the form a person reads without thinking (never 2027-01-05 or 01/05)."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def long_time(value: str) -> str:
    """``10:02 on 5 January 2027`` from ``2027-01-05 10:02`` (a local time as the case shows it)."""
    day, _, clock = value.partition(" ")
    return f"{clock} on {long_date(day)}" if clock else long_date(day)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 record``, ``2 records``, ``1 piece of information``/``2 pieces of information``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def words(name: str) -> str:
    """A configuration name as words: ``fraud_markers`` -> ``Fraud markers``."""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------------------------
# A letter's layout


@dataclass(frozen=True)
class Block:
    kind: str  # "para", "list" (items), "copy" (lines to copy exactly)
    lines: tuple[str, ...]


_URL = re.compile(r"^https?://\S+$")


def blocks(source: str) -> list[Block]:
    """Paragraphs separated by blank lines; ``- `` lines are a list, four-space lines are to be
    copied exactly. A paragraph's own line breaks are not kept: it is one piece of prose."""
    out: list[Block] = []
    for chunk in re.split(r"\n\s*\n", source.strip("\n")):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        if all(line.startswith("    ") for line in lines):
            out.append(Block("copy", tuple(line.strip() for line in lines)))
        elif lines[0].startswith("- "):
            items: list[str] = []
            for line in lines:
                if line.startswith("- "):
                    items.append(line[2:].strip())
                else:  # a list item's continuation
                    items[-1] += " " + line.strip()
            out.append(Block("list", tuple(items)))
        else:
            lead = [line for line in lines if not line.startswith("- ")]
            rest = lines[len(lead) :]
            out.append(Block("para", (" ".join(" ".join(line.split()) for line in lead),)))
            if rest:  # "What we erased:" followed by its list without a blank line
                out += blocks("\n".join(rest))
    return out


def _fill(text: str, indent: str = "", hang: str = "") -> str:
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=hang,
        break_long_words=False,
        break_on_hyphens=False,
    )


def as_text(parts: list[Block]) -> str:
    """The text part: paragraphs filled to :data:`WIDTH`, list items with a hanging indent,
    lines to copy indented and never wrapped (a broken link does not work)."""
    out: list[str] = []
    for block in parts:
        if block.kind == "para":
            out.append(_fill(block.lines[0]))
        elif block.kind == "list":
            out.append("\n".join(_fill(item, "- ", "  ") for item in block.lines))
        else:
            out.append("\n".join("    " + line for line in block.lines))
    return "\n\n".join(out) + "\n"


def as_html(parts: list[Block], title: str) -> str:
    """The HTML alternative: the same blocks, escaped; a link to copy is also a link to click."""
    body: list[str] = []
    for block in parts:
        if block.kind == "para":
            body.append(f"<p>{escape(block.lines[0])}</p>")
        elif block.kind == "list":
            body.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.lines) + "</ul>")
        else:
            lines = [
                Markup('<a href="{0}">{0}</a>').format(line) if _URL.match(line) else escape(line)
                for line in block.lines
            ]
            body.append('<p style="margin-left:2em;font-family:monospace">' + "<br>".join(lines) + "</p>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n"
        '<body style="font-family:sans-serif;max-width:40em;line-height:1.5">\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def lay_out(source: str, title: str) -> tuple[str, str]:
    """(text, html) of a letter body written as :func:`blocks` reads it."""
    parts = blocks(source)
    return as_text(parts), as_html(parts, title)


def and_list(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def system_labels(datamap: object, names: str) -> str:
    """Comma-separated system names as the person reads them in a sentence, from the data map's
    labels: "our customer database, our marketing database and our CCTV recorders"."""
    systems = getattr(datamap, "systems", {})
    labels = []
    for name in (n for n in names.split(",") if n):
        config = systems.get(name)
        label = config.label if config is not None else words(name)
        labels.append("our " + (label if label[:2].isupper() else label[:1].lower() + label[1:]))
    return and_list(labels)


def letter_facts(
    reference: str,
    regime: Regime,
    request_type: RequestType,
    *,
    greeting: str,
    controller: str,
    received: str,
    due: str,
    stage: str,
    waiting_for: str,
    clock_note: str = "",
) -> dict[str, str]:
    """What every letter may say, from the case as it stands (the workflow's record of it);
    a letter's own facts are added to these. Dates are ISO here: templates write them out."""
    facts = REGIMES[regime]
    name = request_name(regime, request_type)
    return {
        "reference": reference,
        "greeting": greeting,
        "controller": controller,
        "request_label": REQUEST_LABELS[request_type],
        "request_name": name.name,
        "a_request": name.a_name,
        "provision": name.provision,
        "request_type": request_type.value,
        "regime": facts.label,
        "authority": facts.authority,
        "legal_basis": facts.extension_basis or "",
        "received": received,
        "due": due,
        "stage": stage,
        "waiting_for": waiting_for,
        "clock_note": clock_note,
    }
