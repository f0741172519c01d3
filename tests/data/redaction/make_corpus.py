# ruff: noqa: E501 - the templates are hand-written texts, one per line
"""Write ``corpus.jsonl``: labelled free text for measuring third-party redaction.

Run ``python tests/data/redaction/make_corpus.py`` to rebuild it (deterministic: a fixed seed).

Each text is a hand-written template whose placeholders are filled from small pools of fictional
people (example.com/.net/.org emails, Ofcom drama and US 555-01xx phone numbers, published test
card numbers and IBANs). A placeholder names whose data it is:

* ``{S...}`` the data subject: written into the text, never labelled (it must be kept);
* ``{A...}``, ``{B...}``, ``{C...}`` other people the company does not know: labelled;
* ``{K...}`` another person the company's systems know (a household member on the subject's
  account): labelled, and their name, email and phone go into the line's ``others`` list;
* ``{G...}`` a member of staff: labelled PERSON (the default is to redact; a reviewer may
  disclose staff acting in their professional capacity);
* ``{order}``, ``{date}``... neutral values (the subject's own references go into ``accounts``).

Spans are computed while rendering, so their offsets are right by construction, and checked
again before the file is written. Two template sets with separate people pools: ``dev`` (the
detector was tuned on it) and ``heldout`` (different phrasings, cue words, people and address
shapes; measured only at the end).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 20260517

# ----------------------------------------------------------------------------------------------
# People


@dataclass
class Person:
    first: str
    last: str
    title: str
    region: str  # "UK" or "US"
    email: str
    phone: str  # digits as dialled nationally (UK "07700900123", US "4155550134")
    num: str  # house number
    street: str  # street name without number, e.g. "Orchard Lane"
    unit: str  # "" or "Flat 3" / "Apt 3"
    city: str
    postcode: str  # UK postcode or "IL 62704"
    nick: str = ""
    account: str = ""
    card: str = ""
    bank: str = ""
    iban: str = ""
    nino: str = ""
    refs: list[str] = field(default_factory=list)


UK_SUBJECTS_DEV = [
    ("Margaret", "Ellis", "Mrs", "Maggie", "margaret.ellis@example.com", "07911123456", "12", "Orchard Lane", "", "Coventry", "CV3 4LP"),
    ("Daniel", "Okafor", "Mr", "Dan", "dan.okafor@example.net", "07700900214", "27", "Beech Road", "Flat 3", "Leeds", "LS6 2AB"),
    ("Siobhan", "Kelly", "Ms", "", "siobhan.kelly@example.org", "01174960321", "5", "Chapel Close", "", "Bristol", "BS7 8QT"),
    ("Arjun", "Mehta", "Mr", "", "arjun.m@example.com", "07700900552", "88", "Victoria Street", "", "Manchester", "M14 5RQ"),
    ("Fiona", "Campbell", "Mrs", "Fi", "fiona.campbell@example.org", "01314960877", "41", "Kingsway", "", "Edinburgh", "EH9 1PL"),
    ("Tomasz", "Nowak", "Mr", "Tom", "t.nowak@example.net", "07700900733", "9", "Mill Lane", "Flat 2", "Norwich", "NR2 4HE"),
    ("Grace", "Adeyemi", "Ms", "", "grace.adeyemi@example.com", "02079460415", "130", "Station Road", "", "Cardiff", "CF24 3AA"),
]  # fmt: skip
US_SUBJECTS_DEV = [
    ("Linda", "Alvarez", "Ms", "", "linda.alvarez@example.com", "2175550143", "4417", "Elm St", "Apt 3", "Springfield", "IL 62704"),
    ("Marcus", "Johnson", "Mr", "Marc", "mjohnson@example.net", "5125550178", "1208", "N Oak Avenue", "", "Austin", "TX 78701"),
    ("Emily", "Chen", "Ms", "Em", "emily.chen@example.org", "6195550112", "77", "Harbor View Dr", "", "San Diego", "CA 92101"),
    ("Robert", "Kowalczyk", "Mr", "Bob", "bob.kowalczyk@example.com", "6145550190", "302", "Maple Street", "", "Columbus", "OH 43215"),
]  # fmt: skip
UK_SUBJECTS_HELDOUT = [
    ("Eleanor", "Whitfield", "Mrs", "Nell", "e.whitfield@example.org", "07700900861", "7", "Rosemary Gardens", "", "York", "YO31 7HD"),
    ("Kwame", "Asante", "Mr", "", "kwame.asante@example.com", "07700900649", "4", "Canal Street", "Flat 12", "Nottingham", "NG1 7EH"),
    ("Bethan", "Morgan", "Miss", "Beth", "bethan.morgan@example.net", "02920960118", "22", "Heol y Coed", "", "Cardiff", "CF14 6HR"),
    ("Eilidh", "MacLeod", "Ms", "", "eilidh.macleod@example.com", "07700900390", "15", "Thistle Crescent", "", "Inverness", "IV2 3RT"),
]  # fmt: skip
US_SUBJECTS_HELDOUT = [
    ("Jamal", "Carter", "Mr", "", "jamal.carter@example.net", "4045550161", "915", "Pine Ridge Rd", "", "Atlanta", "GA 30303"),
    ("Sofia", "Ramirez", "Ms", "Sofi", "sofia.ramirez@example.com", "3235550107", "2230", "Sunset Blvd", "Unit 5", "Los Angeles", "CA 90026"),
    ("Patrick", "O'Brien", "Mr", "Pat", "pobrien@example.org", "6175550133", "48", "Beacon St", "", "Boston", "MA 02108"),
]  # fmt: skip

OTHERS_DEV = {
    "UK": ["Ravi Patel", "David Brookes", "Tom Hughes", "Chloe Walker", "Zofia Kowalski", "Liam Murphy",
           "Aisha Khan", "Oliver Thompson", "Sian Evans", "Niamh Roberts", "Priya Singh", "Jack Wilson",
           "Rosie Green", "Ahmed Hassan", "Femi Adebayo", "Victor Popescu", "Ingrid Larsen", "Gareth Price"],
    "US": ["Carlos Mendes", "Yuki Tanaka", "Jessica Miller", "Tyler Brooks", "Brianna Davis", "Kevin O'Connor",
           "Maria Garcia", "DeShawn Williams", "Samantha Lee", "Ethan Novak", "Hector Ruiz", "Megan Foster"],
}  # fmt: skip
OTHERS_HELDOUT = {
    "UK": ["Imogen Fairclough", "Callum Reid", "Dev Malhotra", "Agnieszka Zielinska", "Hamish Fraser",
           "Olumide Bakare", "Catrin Hughes-Jones", "Rory McAllister", "Lauren Pettigrew", "Mohammed Iqbal",
           "Harriet Lowe", "Seren Davies", "Tariq Mahmood", "Ffion Jenkins"],
    "US": ["Nathaniel Brooks", "Tanisha Robinson", "Brandon Kessler", "Ming Zhao", "Gabriela Souza",
           "Declan O'Sullivan", "Chiara Bianchi", "Svetlana Ivanova", "Travis Whitaker", "Keisha Grant"],
}  # fmt: skip
STAFF = {"dev": ["Hannah", "Deepa", "Joel", "Bartek"], "heldout": ["Priyanka", "Gareth", "Tasha", "Wendell"]}

UK_STREETS = {
    "dev": [("Larch Road", "Coventry", "CV3 4LF"), ("Ash Grove", "Leeds", "LS7 3PQ"), ("Park Avenue", "Bristol", "BS6 5EX"),
            ("Manor Way", "Sheffield", "S10 2HX"), ("Queens Road", "Nottingham", "NG7 1BQ"), ("Church Lane", "Derby", "DE22 1EF")],
    "heldout": [("Willow Crescent", "Bath", "BA2 4QP"), ("Foundry Mews", "Sheffield", "S3 8RT"), ("Regent Terrace", "Brighton", "BN2 1DW"),
                ("Harbour Walk", "Plymouth", "PL4 0DL"), ("St Mary's Close", "Oxford", "OX4 2JB"), ("Tannery Court", "Leicester", "LE1 5AE")],
}  # fmt: skip
US_STREETS = {
    "dev": [("Cedar Lane", "Peoria", "IL 61602"), ("W 4th St", "Dayton", "OH 45402"), ("Lakeshore Drive", "Madison", "WI 53703"),
            ("Pecan Blvd", "Houston", "TX 77002"), ("Mission St", "San Francisco", "CA 94103")],
    "heldout": [("Magnolia Ave", "Savannah", "GA 31401"), ("Elmwood Court", "Portland", "OR 97205"), ("S Main Street", "Ann Arbor", "MI 48104"),
                ("Juniper Way", "Boulder", "CO 80302"), ("Commonwealth Ave", "Boston", "MA 02116")],
}  # fmt: skip

CARDS = {
    "dev": [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "4012888888881881",
    ],
    "heldout": [
        "4242424242424242",
        "5105105105105100",
        "371449635398431",
        "4000056655665556",
        "5200828282828210",
    ],
}
IBANS = {
    "dev": ["GB82WEST12345698765432", "GB33BUKB20201555555555"],
    "heldout": ["GB29NWBK60161331926819", "DE89370400440532013000"],
}
NINOS = {"dev": ["AB123456C", "JG103749D"], "heldout": ["PZ874621A", "CE521983B"]}


def make_person(
    rng: random.Random, name: str, region: str, split: str, used_nums: set[str], tag: str = ""
) -> Person:
    first, last = name.split(" ", 1)
    if region == "UK":
        street, city, postcode = rng.choice(UK_STREETS[split])
        phone = (
            rng.choice(["07700900", "07700900", "01134960", "01614960", "02079460"])
            + f"{rng.randrange(0, 1000):03d}"
        )
        unit = rng.choice(["", "", "", f"Flat {rng.randrange(1, 9)}"])
        num = str(rng.randrange(1, 160))
    else:
        street, city, postcode = rng.choice(US_STREETS[split])
        phone = rng.choice(["312", "646", "206", "713", "415"]) + "55501" + f"{rng.randrange(0, 100):02d}"
        unit = rng.choice(["", "", f"Apt {rng.randrange(1, 30)}", f"#{rng.randrange(1, 9)}B"])
        num = str(rng.randrange(10, 9000))
    while num in used_nums:
        num = str(int(num) + 1)
    used_nums.add(num)
    domain = rng.choice(["example.com", "example.net", "example.org"])
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randrange(10, 99)}", f"{last}.{first[0]}"]
    )
    local = re.sub(r"[^A-Za-z0-9.]", "", local).lower()
    return Person(
        first=first,
        last=last,
        title=rng.choice(["Mr", "Mrs", "Ms", "Dr"]),
        region=region,
        email=f"{local}@{domain}",
        phone=phone,
        num=num,
        street=street,
        unit=unit,
        city=city,
        postcode=postcode,
        account=f"NW{rng.randrange(100100, 199999)}",
        card=rng.choice(CARDS[split]),
        bank=f"{rng.randrange(10_000_000, 99_999_999)}" if region == "UK" else f"{rng.randrange(10**8, 10**11)}",
        iban=rng.choice(IBANS[split]),
        nino=rng.choice(NINOS[split]),
    )  # fmt: skip


def make_subject(rng: random.Random, row: tuple[str, ...], region: str) -> Person:
    first, last, title, nick, email, phone, num, street, unit, city, postcode = row
    return Person(
        first=first,
        last=last,
        title=title,
        region=region,
        email=email,
        phone=phone,
        num=num,
        street=street,
        unit=unit,
        city=city,
        postcode=postcode,
        nick=nick,
        account=f"NW{rng.randrange(100001, 100099)}",
    )


# ----------------------------------------------------------------------------------------------
# Formats: the many ways one value turns up in free text


def phone_formats(p: Person) -> list[str]:
    d = p.phone
    if p.region == "UK":
        if d.startswith("07"):
            return [f"{d[:5]} {d[5:]}", d, f"+44 {d[1:5]} {d[5:]}", f"+44{d[1:]}", f"{d[:5]}-{d[5:8]}-{d[8:]}",
                    f"0044 {d[1:5]} {d[5:]}", f"+44 (0){d[1:5]} {d[5:]}"]  # fmt: skip
        if d.startswith("02"):
            return [
                f"{d[:3]} {d[3:7]} {d[7:]}",
                f"+44 {d[1:3]} {d[3:7]} {d[7:]}",
                f"({d[:3]}) {d[3:7]} {d[7:]}",
                d,
            ]
        return [f"{d[:4]} {d[4:7]} {d[7:]}", f"+44 {d[1:4]} {d[4:7]} {d[7:]}", f"({d[:4]}) {d[4:]}", d]
    return [f"({d[:3]}) {d[3:6]}-{d[6:]}", f"{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}",
            f"+1 {d[:3]} {d[3:6]} {d[6:]}", f"1-{d[:3]}-{d[3:6]}-{d[6:]}", f"{d[:3]} {d[3:6]} {d[6:]}"]  # fmt: skip


def card_formats(c: str) -> list[str]:
    if len(c) == 15:
        return [f"{c[:4]} {c[4:10]} {c[10:]}", c, f"{c[:4]}-{c[4:10]}-{c[10:]}"]
    return [
        " ".join(c[i : i + 4] for i in range(0, 16, 4)),
        c,
        "-".join(c[i : i + 4] for i in range(0, 16, 4)),
    ]


def street_line(p: Person, rng: random.Random) -> str:
    if p.region == "UK":
        return f"{p.unit}, {p.num} {p.street}" if p.unit else f"{p.num} {p.street}"
    return f"{p.num} {p.street} {p.unit}" if p.unit else f"{p.num} {p.street}"


def full_address(p: Person, rng: random.Random) -> str:
    line = street_line(p, rng)
    if p.region == "UK":
        return rng.choice(
            [f"{line}, {p.city} {p.postcode}", f"{line}, {p.city}, {p.postcode}", f"{line}, {p.city}"]
        )
    return rng.choice([f"{line}, {p.city}, {p.postcode}", f"{line}, {p.city} {p.postcode}"])


def house_ref(num: str, rng: random.Random, region: str) -> str:
    if region == "US":
        return rng.choice([f"#{num}", f"number {num}", f"No. {num}"])
    return rng.choice([f"no. {num}", f"number {num}", f"No {num}", f"No. {num}"])


def value(p: Person, attr: str, rng: random.Random, subject: Person) -> str:
    """One placeholder's text (``attr`` as written after the dot in a template)."""
    options: dict[str, Any] = {
        "": lambda: f"{p.first} {p.last}",
        "first": lambda: p.first,
        "last": lambda: p.last,
        "title": lambda: f"{p.title} {p.last}",
        "init": lambda: rng.choice([f"{p.first[0]}. {p.last}", f"{p.first[0]} {p.last}", f"{p.first[0]}.{p.last}"]),
        "upper": lambda: f"{p.first} {p.last}".upper(),
        "lower": lambda: p.first.lower(),
        "rev": lambda: f"{p.last}, {p.first}",
        "nick": lambda: f"{p.nick or p.first} {p.last}",
        "email": lambda: p.email,
        "email2": lambda: rng.choice([p.email.upper(), p.email.capitalize(), p.email]),
        "phone": lambda: rng.choice(phone_formats(p)),
        "street": lambda: street_line(p, rng),
        "address": lambda: full_address(p, rng),
        "postcode": lambda: rng.choice([p.postcode, p.postcode.replace(" ", "")]) if p.region == "UK" else p.postcode[-5:],
        "city": lambda: p.city,
        "house": lambda: house_ref(p.num, rng, p.region),
        # a neighbour on the subject's own street: the number is theirs, the street the subject's
        "nstreet": lambda: f"{p.num} {subject.street}",
        "card": lambda: rng.choice(card_formats(p.card)),
        "account": lambda: p.account,
        "bank": lambda: p.bank,
        "iban": lambda: rng.choice([p.iban, " ".join(p.iban[i : i + 4] for i in range(0, len(p.iban), 4))]),
        "nino": lambda: rng.choice([f"{p.nino[:2]} {p.nino[2:4]} {p.nino[4:6]} {p.nino[6:8]} {p.nino[8]}", p.nino]),
    }  # fmt: skip
    if attr not in options:
        raise KeyError(f"unknown placeholder attribute {attr!r}")
    return str(options[attr]())


KIND_OF_ATTR = {
    "": "PERSON", "first": "PERSON", "last": "PERSON", "title": "PERSON", "init": "PERSON", "upper": "PERSON",
    "lower": "PERSON", "rev": "PERSON", "nick": "PERSON", "email": "EMAIL", "email2": "EMAIL", "phone": "PHONE",
    "street": "ADDRESS", "address": "ADDRESS", "postcode": "ADDRESS", "house": "ADDRESS", "nstreet": "ADDRESS",
    "card": "CARD", "account": "ACCOUNT", "bank": "ACCOUNT", "iban": "ACCOUNT", "nino": "NINO",
}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Templates: (kind, region, text). Region "any" takes either kind of subject.

DEV_TEMPLATES: list[tuple[str, str, str]] = [
    ("ticket", "UK", "Subject: Parcel left with neighbour\nMy parcel was signed for by {A} at {A.house}. I never agreed to that. Please call me on {S.phone}."),
    ("ticket", "any", "Please discuss my bill with my husband {K}, he lives at the same address and helps me with the account ({S.account})."),
    ("ticket", "UK", "Hi, I'm writing on behalf of my mum {A}. She doesn't use email, so please post any letters to her at {A.address}. My own email is {S.email}."),
    ("ticket", "UK", "I was charged for roaming in France. {G} from your Coventry shop said it was included in my plan. Account {S.account}."),
    ("ticket", "any", "Post for me still goes to {A.address} where {A} now lives. My new address is {S.address}. Please update it."),
    ("ticket", "any", "Lost my SIM on the train this morning, please block it. Account number {S.account}, number {S.phone}. Thanks, {S.first}"),
    ("ticket", "UK", "The courier was rude to my carer {A.first} and then left the parcel in the rain outside {S.street}. Not acceptable."),
    ("ticket", "any", "Order {order} arrived with the box crushed and the screen cracked. I'd like a refund to my card, not a voucher.\n\n{S}"),
    ("ticket", "any", "My son {A} has been using my number {S.phone} without asking. Please remove his email {A.email} from my account."),
    ("ticket", "US", "I'm disputing a charge on my account. The card used was {A.card}, which belongs to my roommate {A}, not me. Please refund it to my own card."),
    ("ticket", "US", "Please update my delivery address to {S.address}. Do NOT deliver to {A.address} anymore, that's my ex-husband {A.first}'s place."),
    ("ticket", "UK", "Subject: Wrong person on my account\nThe name printed on my bill is {A}, not {S}. Please correct it. My account is {S.account}."),
    ("ticket", "any", "My number {S.phone} was moved to someone else by mistake. The new owner, {A.first}, rang me from {A.phone} to say he's getting my texts."),
    ("call_note", "UK", "Caller: {S}. Verified DOB and postcode {S.postcode}. Customer says her neighbour {A} ({A.phone}) has been taking in her parcels. Advised to set a safe place. - {G}"),
    ("call_note", "any", "Inbound call. Cust asked us to speak to her daughter {A} in future; daughter's mobile {A.phone}. Told cust we need a signed third-party authority first."),
    ("call_note", "UK", "Outbound call to {S.phone} re missed payment. Spoke to a woman who said she was the lodger, {A.first}. Did not discuss the account. Will try again tomorrow."),
    ("call_note", "any", "Customer called from {A.phone} (her sister {A}'s phone). Confirmed ID with account {S.account} and postcode {S.postcode}. Issue: double charge on order {order}."),
    ("call_note", "US", "Spoke w/ {S.first} re: late delivery to {S.address}. She says the pkg was left at {A.nstreet} instead. Neighbor {A.title} confirmed he has it and will drop it over."),
    ("call_note", "any", "Call back as promised. {S.title} happy with the refund of $24.99/£24.99 for order {order}. No further action. Closed by {G}."),
    ("call_note", "UK", "Customer rang about her husband {K.first}'s contract. Explained we can only discuss {K.first}'s account with him. She will ask him to call; his number on file is {K.phone}."),
    ("delivery", "UK", "Delivered {date} 14:32. Left with neighbour at {A.house}, signed {A.init}."),
    ("delivery", "any", "Parcel {tracking}: delivered to {S.street}, signed by {S.upper}."),
    ("delivery", "UK", "Attempted delivery {date}, no answer. Card left. Redelivery booked for Thursday. Safe place requested: porch at {S.street}."),
    ("delivery", "UK", "Signed for by {A} (neighbour) at {A.nstreet}, {S.city}."),
    ("delivery", "US", "DELIVERED - front desk. Received by {A.upper}. Ship-to: {S.address}."),
    ("delivery", "UK", "Driver note: nobody home at {S.street}. Parcel handed to {A.first} at number {A.num} who agreed to take it in."),
    ("delivery", "US", "Package {tracking} delivered {date} 3:10 PM, left at side door. Photo on file. Recipient on label: {S.init}."),
    ("complaint", "UK", "Dear Sir or Madam,\n\nI am writing to complain about the way my account ({S.account}) was handled. On {date} your agent {G} told me my contract could be cancelled without a fee. My partner {A} was on the call and heard this too; you can reach him on {A.phone} if needed.\n\nYours faithfully,\n{S}\n{S.address}"),
    ("complaint", "US", "To whom it may concern,\n\nI am filing a complaint about unauthorized charges. Someone named {A} opened a line using my address, {S.address}, and the email {A.email}. I have never met this person and did not authorize it.\n\nSincerely,\n{S}"),
    ("complaint", "UK", "Dear Northwind,\n\nThis is the third time I have written. Your courier keeps leaving my parcels with {A.title} at {A.nstreet}, even though I have asked for them to be left in my porch. {A.title} is elderly and should not have to deal with this.\n\n{S.title}"),
    ("complaint", "any", "Complaint: the Northwind shop on Market Street was closed during opening hours on {date}. I travelled 40 minutes to get there. {S}, {S.email}"),
    ("complaint", "UK", "I want to complain about {G} in your Leeds store, who shouted at me in front of other customers on {date}. My account number is {S.account}. I expect a written apology to {S.address}."),
    ("chat", "any", "[10:02] Customer: hi my husband {A.lower} cant log in to the app\n[10:02] Agent ({G}): Hi {S.first}, I can only discuss the account with the account holder.\n[10:03] Customer: ok its my account, email is {S.email}"),
    ("chat", "any", "Customer: Can you change the email on my account to {S.email}?\nAgent: Of course. Is {A.email} an old address of yours?\nCustomer: No, that's my brother's, please remove it."),
    ("chat", "any", "Agent: How can I help today?\nCustomer: my parcel says delivered but I never got it\nAgent: It was signed for by {A.init} at 13:05 on {date}.\nCustomer: I don't know who that is. I live at {S.street}."),
    ("chat", "UK", "Customer: hiya, can i add my girlfriend to my plan?\nAgent: Sure! What's her name and mobile?\nCustomer: {A}, {A.phone}\nAgent: Thanks, I'll send her a text to confirm."),
    ("chat", "US", "Agent: Thanks for contacting Northwind. Who am I speaking with?\nCustomer: {S}, account {S.account}\nAgent: Thanks {S.first}. I see an order shipping to {S.address}, is that right?\nCustomer: yes thats me"),
    ("agent_note", "any", "Account note: Do not discuss the account with {A} (ex-partner). Customer reported harassment on {date}. Password set on account."),
    ("agent_note", "any", "Note: customer's daughter {A} ({A.email}) holds a lasting power of attorney; copy of LPA on file. Ref {S.account}."),
    ("agent_note", "UK", "KYC check: customer supplied passport. The NI number written on the form, {A.nino}, does not match the customer and appears to belong to {A}. Escalated to fraud team."),
    ("agent_note", "any", "Refund issued to card {A.card} at the customer's request - the card belongs to her son {A.first}. Approved by team leader {G}."),
    ("agent_note", "UK", "Customer asked to pay from her wife's bank account instead: sort code 20-32-06, account {A.bank}, account holder {A}. Direct debit form sent to {S.email}."),
    ("agent_note", "any", "Refund of 49.50 to be sent to IBAN {A.iban} (account holder {A}) as requested in writing by the customer."),
    ("agent_note", "any", "Household account. Members: {S} (holder), {K} and {A}. Only the holder can make changes. {K.first}'s number is {K.phone}."),
    ("agent_note", "UK", "Customer says {A} and {B} both live at {A.street} and keep taking in her parcels without telling her."),
    ("agent_note", "any", "Customer wants to transfer her number to her friend {A.first}. Friend's Northwind account is {A.account}. Transfer form sent to {S.email}."),
    ("agent_note", "any", "Card declined. Customer then tried her mum's card, {A.card}; told her we cannot take a third party's card unless the cardholder is present."),
    ("agent_note", "UK", "Parcel for {S} redirected to {A.address} (her daughter's address) at the customer's request."),
    ("agent_note", "any", "Caller {S.first} said {K.first} would call back later about the joint bill."),
    ("delivery", "UK", "Left in safe place (blue recycling bin). Photo taken. Neighbour {A.title} at {A.house} saw the driver."),
    ("complaint", "US", "My package was stolen from my porch at {S.address} on {date}. My neighbor {A} has a doorbell camera and can share the video; his number is {A.phone}."),
    ("agent_note", "any", "Re ticket {ticket}: called the number the customer gave for her landlord ({A.phone}), no answer. Landlord's email is {A.email}; sent a holding reply."),
    ("agent_note", "any", "Escalation: customer's ex-partner {A} has called three times pretending to be her. Failed security each time. Account flagged."),
    ("call_note", "any", "Agent {G} noted: customer {S.init} confirmed address {S.address}; phone on file {S.phone}. No change needed."),
    ("ticket", "any", "I live with {A.first} and {B.first} and none of us ordered this. Order {order} must be fraud. Please cancel it and refund my card."),
    # the subject only, in many formats; no third party at all
    ("ticket", "any", "Please close my account {S.account}. I'm moving abroad next month. Send the final bill to {S.email}."),
    ("ticket", "any", "Hi, this is {S}. My number is {S.phone} and I live at {S.address}. Please update my details on file."),
    ("call_note", "any", "Customer {S} called about order {order}. Delivery date confirmed. Resolved on first contact."),
    ("agent_note", "any", "Roaming bundle for France and Spain added at customer's request. Customer happy."),
    ("complaint", "any", "Dear {S.title},\n\nThank you for your letter of {date}. We have refunded 12.00 to your account {S.account} and apologise for the delay.\n\nNorthwind Customer Relations"),
    ("ticket", "any", "Hi {S.first}! Your order {order} is on its way to {S.street}, {S.city}. Track it online with reference {tracking}."),
    ("agent_note", "US", "Customer {S} ({S.email2}) requested a copy of her personal information. Verified via phone {S.phone}. Mailing address: {S.address}."),
    ("call_note", "UK", "{S.rev} - DOB verified, postcode {S.postcode}. Asked about the Parcel Plus next-day service and the Pixel 8 handset deal. Sent details by email."),
    ("ticket", "any", "My email changed from {S.email} to {S.email2}, please update it. Account {S.account}. - {S.nick}"),
    ("ticket", "UK", "Hello, the engineer who came on {date} ({G}) left my router at my neighbour's, {A.nstreet}. Can someone collect it? {S.first} {S.last}"),
    ("call_note", "any", "Cust rang re: bill shock after 3 days roaming in Spain. Goodwill credit of 15.00 applied. {G}"),
    ("delivery", "UK", "Parcel too big for letterbox. Taken to {A.house} ({A.init}). Card put through the door at {S.street}."),
    ("chat", "any", "Customer: Hi, I'm {S}. My partner {A.first} ordered a phone on my account, order {order}. He says he used his own card. Is that right?\nAgent: I can see the order, but for security I can't discuss the payment card."),
    ("agent_note", "US", "Customer asked us to stop calling her mother, {A}, at {A.phone}. Number removed from the contact list."),
    ("complaint", "UK", "Dear Northwind,\nYour letter of {date} went to my old address, {A.address}, where {A} now lives. She opened it by mistake and phoned me. How did this happen when I updated my address to {S.address} in March?\n{S}"),
    ("ticket", "any", "Good morning, please can you confirm that the contract for {S.phone} has ended and nothing more is owed? Many thanks, {S.title}"),
    ("agent_note", "any", "System note: SIM swap completed for {S.phone}. Customer verified in store with photo ID. Store: Northwind Birmingham New Street."),
]  # fmt: skip

HELDOUT_TEMPLATES: list[tuple[str, str, str]] = [
    ("complaint", "UK", "FAO Customer Relations\n\nRe: account {S.account}\n\nI was astonished to learn that my next-door neighbour, {A.title}, was told details of my bill when she phoned you pretending to be me. She lives at {A.nstreet}. I want to know who authorised this.\n\nRegards,\n{S.rev}"),
    ("complaint", "US", "Attn: Billing Dept.\nMy fiancée {A} was added as an authorized user without my consent. Her email ({A.email}) and cell {A.phone} now show on my account. Remove them immediately.\n-- {S}"),
    ("call_note", "UK", "IB call 11:42. Cust {S.init}, ID&V passed. Godson {A.first} {A.last} ordered a handset in her name; cust wants it cancelled. Godson's mob {A.phone}. Ref'd to fraud."),
    ("call_note", "US", "OB to cust re: failed autopay. Cust said bank acct changed; new acct # {A.bank} is in her partner {A}'s name. Advised partner must call to authorize."),
    ("call_note", "any", "Caller identified as {A}, said he was calling for {S.first}. Refused - not authorised on acct. Caller left number {A.phone}. Cust informed by email."),
    ("delivery", "UK", "POD: Signed - {A.upper}. Location: next door ({A.house}). Time 09:58."),
    ("delivery", "UK", "Item carded. Customer to collect from Coventry delivery office or redeliver. Notes: dog at property, {S.street}."),
    ("delivery", "US", "Delivered to neighbor at {A.street}. Signature: {A.init}. Left per customer instructions on file."),
    ("delivery", "UK", "Witnessed by {A} of {A.address}. Parcel {tracking} handed over at 16:20."),
    ("delivery", "US", "Attempted 2x. Recipient {S.upper} not available. Held at depot for 5 days."),
    ("ticket", "UK", "hello, my flatmate {A.lower} keeps answering calls meant for me on the landline. can you make sure you only call my mobile {S.phone} please"),
    ("ticket", "any", "Subject: Fraudulent order\nAn order was placed on my account by my step-dad ({A}), delivered to {A.address}. I did not authorise it. Account {S.account}."),
    ("ticket", "US", "Hey - I think my coworker {A} used my email {S.email} to sign up for your service. Her actual email is {A.email}. Can you fix that?"),
    ("ticket", "UK", "Could you send the replacement SIM to my work instead? It's c/o {A} at {A.address}. Thanks, {S.nick}"),
    ("ticket", "any", "Why is there a second line on my bill?! I never asked for it. The number ({A.phone}) is registered to somebody called {A} apparently."),
    ("chat", "UK", "Visitor: hi there\nBot: Hi! What can I help with?\nVisitor: need to update card details\nAgent {G} joined the chat\n{G}: Hello! Can I take your name and postcode?\nVisitor: {S}, {S.postcode}"),
    ("chat", "US", "Customer: my sister {A.first} is staying with me and wants to use my wifi hotspot plan\nAgent: No problem. Would she like her own line? I'd need her email.\nCustomer: sure it's {A.email}"),
    ("chat", "any", "[14:11] {S.first}: is the refund for order {order} done?\n[14:12] {G}: Yes, it went back to the card ending 4471 on {date}.\n[14:12] {S.first}: great thanks"),
    ("chat", "UK", "Customer: My colleague {A} said you do business accounts?\nAgent: We do! I can email some info. Which address?\nCustomer: mine please, {S.email2}"),
    ("agent_note", "UK", "Vulnerable customer flag added. Customer's support worker {A} (tel {A.phone}) may call on her behalf - authority form received {date}."),
    ("agent_note", "any", "DD mandate rejected: account holder named on the mandate ({A.rev}) is not our customer. Bank ref {A.bank}. Letter sent to {S.address}."),
    ("agent_note", "UK", "Chargeback received for card {A.card}. Cardholder {A} says she did not authorise payment for order {order}. Customer contacted."),
    ("agent_note", "any", "Account {A.account} (customer's brother-in-law) was merged in error with {S.account}. Unmerged and both parties notified."),
    ("agent_note", "UK", "Identity documents received: passport and council tax bill. NINO on the bill's covering letter ({A.nino}) relates to the customer's husband {A.first} - not needed, deleted."),
    ("agent_note", "any", "Payment of 120.00 received from IBAN {A.iban}; payer {A} (the customer's employer) - allocated to account {S.account}."),
    ("agent_note", "US", "Per customer, mail for previous tenant {A} still arriving at {S.address}. Tenant's forwarding address: {A.address}."),
    ("agent_note", "any", "Customer is the account holder; her son {K.first} ({K.email}) set up the account for her. Do not send marketing to {K.email}."),
    ("agent_note", "any", "Household: {S.first} and {K.first} share the bill. Spoke to {S.first} only. {K.first} not present."),
    ("call_note", "any", "Cust called re: joint account w/ {K}. Wants {K.first}'s mobile ({K.phone}) removed as the contact number."),
    ("complaint", "UK", "Dear Sirs\n\nI refer to your letter dated {date}. It was addressed to {A} at my address. No one of that name has ever lived at {S.street}. Please correct your records.\n\n{S.title}"),
    ("complaint", "US", "To Customer Service:\nOn {date} your driver left my order with a stranger - someone who signed as '{A.init}' at {A.nstreet}. I had to knock on doors to get it back. I expect compensation.\n{S.nick}\n{S.phone}"),
    ("complaint", "any", "I have been a loyal customer for 9 years and I am disgusted by the treatment I received from {G} on the phone today. I will be leaving. {S.upper}"),
    ("ticket", "any", "Please note my new mobile number is {S.phone}; the old one can be cancelled. Nothing else changes."),
    ("call_note", "any", "{S.title} called to confirm the direct debit date moves to the 15th. Done. Confirmation sent to {S.email}."),
    ("ticket", "US", "Please send my final statement to {S.address}. Account {S.account}. Thank you."),
    ("agent_note", "UK", "Customer visited store with proof of address for {S.address}. Address verified. Photo ID: driving licence, checked and returned."),
    ("delivery", "any", "Out for delivery. Estimated 10:00-12:00. Recipient {S} notified by SMS to {S.phone}."),
    ("ticket", "any", "Sorry, I meant to write {S.email2} not the other one! Typo. {S.first}"),
    ("call_note", "UK", "Cust said her landlord, {A.title}, won't let the engineer in until Friday. Landlord contact: {A.email}. Rebooked for {date}."),
    ("call_note", "US", "Third-party caller {A} from {A.street} reported our van blocking her driveway. Not a customer matter; passed to fleet. Related cust: {S}."),
    ("ticket", "UK", "My ex, {A}, still has a phone on my account. Can you move it to his own account? His email is {A.email} and he lives at {A.address} now."),
    ("complaint", "any", "Formal complaint. Your staff member {G} disclosed my order history to my cousin {A}, who phoned pretending to be me. This is a data breach."),
    ("agent_note", "any", "Customer's carer {A} phoned to report customer in hospital. Bill payments paused for 30 days. Carer's number {A.phone}; customer's consent to be confirmed."),
    ("delivery", "US", "Left w/ {A.first} (bldg super) - {A.phone}. Cust notified by text."),
    ("call_note", "UK", "Spoke to cust's partner {A} on speaker with cust's permission ({S.first} present). Partner gave his own email, {A.email}, for the joint quote."),
    ("ticket", "any", "Hi - account {S.account}. Could you stop sending paper bills? My email is {S.email}. Cheers"),
    ("complaint", "UK", "Complaint ref {ticket}. Your driver reversed into a car belonging to my neighbour {A.title} ({A.nstreet}) and drove off. She asked me to pass on her number, {A.phone}, so your insurer can contact her."),
    ("ticket", "US", "Change of address: from {S.address} to the same street, different unit. Roommates {A} and {B} are staying at the old place."),
]  # fmt: skip

PLACEHOLDER = re.compile(r"\{([A-Za-z]+)(?:\.(\w+))?\}")


def neutral(name: str, rng: random.Random, subject: Person) -> str:
    if name == "order":
        ref = str(rng.randrange(200100, 299999))
        subject.refs.append(ref)
        return rng.choice([ref, f"#{ref}", f"no. {ref}"])
    if name == "tracking":
        ref = f"NW{rng.randrange(10**9, 10**10)}GB"
        subject.refs.append(ref)
        return ref
    if name == "ticket":
        return str(rng.randrange(40000, 49999))
    if name == "date":
        day, month = (
            rng.randrange(1, 29),
            rng.choice(["January", "March", "May", "June", "September", "November"]),
        )
        return rng.choice([f"{day} {month}", f"{month} {day}", f"{day:02d}/{rng.randrange(1, 13):02d}/2025"])
    raise KeyError(f"unknown placeholder {name!r}")


def render(
    template: str, people: dict[str, Person], staff: str, rng: random.Random
) -> tuple[str, list[dict[str, Any]]]:
    """Fill the template; return the text and the labelled spans of third-party data."""
    subject = people["S"]
    out: list[str] = []
    spans: list[dict[str, Any]] = []
    pos = 0
    length = 0
    for m in PLACEHOLDER.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        who, attr = m.group(1), m.group(2) or ""
        if who == "G":
            text, kind = staff, "PERSON"
        elif who in people:
            if attr == "num":
                text, kind = people[who].num, "ADDRESS"
            else:
                text, kind = value(people[who], attr, rng, subject), KIND_OF_ATTR.get(attr, "")
        else:
            text, kind = neutral(who, rng, subject), ""
        if who == "G" or (who in people and who != "S"):
            if not kind:
                raise KeyError(f"{{{who}.{attr}}}: third-party data needs a labelled kind")
            spans.append({"start": length, "end": length + len(text), "kind": kind})
        out.append(text)
        length += len(text)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans


def build(
    split: str, templates: list[tuple[str, str, str]], copies: int, rng: random.Random
) -> list[dict[str, Any]]:
    uk = UK_SUBJECTS_DEV if split == "dev" else UK_SUBJECTS_HELDOUT
    us = US_SUBJECTS_DEV if split == "dev" else US_SUBJECTS_HELDOUT
    pool = OTHERS_DEV if split == "dev" else OTHERS_HELDOUT
    lines = []
    seen: set[str] = set()
    n = 0
    for copy in range(copies):
        for t_index, (kind, region, template) in enumerate(templates):
            reg = region if region != "any" else ("UK" if (t_index + copy) % 3 else "US")
            row = rng.choice(uk if reg == "UK" else us)
            subject = make_subject(rng, row, reg)
            used = {subject.num}
            names = rng.sample(pool[reg], 4)
            people = {"S": subject}
            for letter, name in zip("ABCK", names, strict=True):
                people[letter] = make_person(rng, name, reg, split, used)
            k = people["K"]
            known = "{K" in template or rng.random() < 0.3
            if known and rng.random() < 0.5:
                # the household member the systems know shares the subject's surname half the time
                k.last = subject.last
                k.email = re.sub(r"[^a-z.@]", "", f"{k.first}.{subject.last}@example.net".lower())
            staff = rng.choice(STAFF[split])
            text, spans = render(template, people, staff, rng)
            others = [f"{k.first} {k.last}", k.email, rng.choice(phone_formats(k))] if known else []
            names_list = [f"{subject.first} {subject.last}"] + (
                [f"{subject.nick} {subject.last}"] if subject.nick else []
            )
            profile = {
                "names": names_list,
                "emails": [subject.email],
                "phones": [phone_formats(subject)[0]],
                "addresses": [f"{street_line(subject, rng)}, {subject.city} {subject.postcode}"],
                "postcodes": [subject.postcode if reg == "UK" else subject.postcode[-5:]],
                "accounts": [subject.account, *subject.refs],
            }
            if text in seen:
                continue  # a template without placeholders renders the same text twice
            seen.add(text)
            n += 1
            lines.append({"id": f"{split}-{n:03d}", "split": split, "kind": kind, "subject": profile, "others": others,
                          "text": text, "spans": spans})  # fmt: skip
    return lines


def check(line: dict[str, Any]) -> None:
    """Offsets in range, non-overlapping, and on word boundaries: a wrong span fails loudly."""
    text = line["text"]
    last_end = -1
    for span in sorted(line["spans"], key=lambda s: s["start"]):
        start, end = span["start"], span["end"]
        assert 0 <= start < end <= len(text), line["id"]
        assert start >= last_end, f"{line['id']}: overlapping spans"
        piece = text[start:end]
        assert piece == piece.strip() and piece, f"{line['id']}: span {piece!r} has outer spaces"
        assert start == 0 or not (text[start - 1].isalnum() and piece[0].isalnum()), (
            f"{line['id']}: {piece!r}"
        )
        assert end == len(text) or not (text[end].isalnum() and piece[-1].isalnum()), (
            f"{line['id']}: {piece!r}"
        )
        last_end = end


def main() -> None:
    rng = random.Random(SEED)
    lines = build("dev", DEV_TEMPLATES, 2, rng) + build("heldout", HELDOUT_TEMPLATES, 2, rng)
    for line in lines:
        check(line)
    with open(HERE / "corpus.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    dev = sum(1 for x in lines if x["split"] == "dev")
    print(f"wrote {len(lines)} texts ({dev} dev, {len(lines) - dev} heldout)")


if __name__ == "__main__":
    main()
