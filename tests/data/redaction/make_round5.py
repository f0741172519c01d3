# ruff: noqa: E501 - hand-written texts, one per line, with real-world punctuation
"""Write ``round5.jsonl``: two sets written by hand for issue 15's redaction targets, BEFORE the
detector was changed for them (third parties' dates of birth; e-mails under any domain,
reserved ones included: ``.example``, ``.test``, ``.invalid``, ``.localhost``; phones in any
format, international ones included; names after relationship words).

* ``dev5``: the set the detector is tuned on (its misses may be read: ``bench/redaction.py -v``).
* ``blind5``: never tuned on. It was written, frozen and committed before any change to the
  detector; its figures are measured, its misses are not looked at. ``tests/test_redaction.py``
  checks its SHA-256, so an edit to it shows.

The texts are new: written once, as a support agent, courier or customer would, not copied from
the other sets. The subject's own data (their date of birth included) must be kept. Labels mark
other people's data only; a date that is not someone's date of birth (a delivery, a contract) is
not labelled.

Markup: ``[[K:text]]`` labels ``text`` as another person's data of kind ``K``::

    P PERSON   E EMAIL   T PHONE   A ADDRESS   C CARD   N ACCOUNT   I NINO   D DATE_OF_BIRTH

Run ``python tests/data/redaction/make_round5.py`` to rebuild the JSONL from this file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KINDS = {"P": "PERSON", "E": "EMAIL", "T": "PHONE", "A": "ADDRESS", "C": "CARD", "N": "ACCOUNT", "I": "NINO",
         "D": "DATE_OF_BIRTH"}  # fmt: skip
MARK = re.compile(r"\[\[([PETACNID]):(.+?)\]\]", re.DOTALL)

SUBJECTS: dict[str, dict[str, list[str]]] = {
    # blind5
    "eleanor": {"names": ["Eleanor Whitfield", "Nell Whitfield"], "emails": ["eleanor.whitfield@example.com"],
                "phones": ["07700 900214"], "addresses": ["9 Linden Grove, Bath BA1 2QT"], "postcodes": ["BA1 2QT"],
                "accounts": ["NW208114"], "dates_of_birth": ["1958-04-17"]},
    "samir": {"names": ["Samir Haddad"], "emails": ["samir.haddad@example.net"], "phones": ["+44 20 7946 0371"],
              "addresses": ["Flat 12, 40 Caledonian Road, London N1 9DT"], "postcodes": ["N1 9DT"],
              "accounts": ["NW208245"], "dates_of_birth": ["1990-11-03"]},
    "julia": {"names": ["Julia Kowalczyk", "Jules Kowalczyk"], "emails": ["jules.k@example.org"], "phones": ["0161 496 0877"],
              "addresses": ["22 Beech Avenue, Salford M6 8FH"], "postcodes": ["M6 8FH"], "accounts": ["NW208377"],
              "dates_of_birth": ["1984-02-29"]},
    "marcus": {"names": ["Marcus Reid"], "emails": ["marcus.reid@example.com"], "phones": ["(415) 555-0187"],
               "addresses": ["2250 Clement St, Apt 5, San Francisco, CA 94121"], "postcodes": ["94121"],
               "accounts": ["NW312044"], "dates_of_birth": ["1976-07-09"]},
    "ines": {"names": ["Inês Carvalho", "Ines Carvalho"], "emails": ["ines.carvalho@example.com"], "phones": ["07700 900376"],
             "addresses": ["31 Kingsland Road, London E2 8AA"], "postcodes": ["E2 8AA"], "accounts": ["NW208512"],
             "dates_of_birth": ["1995-05-21"]},
    "graham": {"names": ["Graham Pike"], "emails": ["g.pike@example.co.uk"], "phones": ["01632 960552"],
               "addresses": ["The Old Forge, 3 Mill Lane, Ludlow SY8 1BB"], "postcodes": ["SY8 1BB"],
               "accounts": ["NW208690"], "dates_of_birth": ["1949-12-01"]},
    "aisha": {"names": ["Aisha Bello"], "emails": ["aisha.bello@example.com"], "phones": ["07700 900688"],
              "addresses": ["56 Princes Avenue, Hull HU5 3QA"], "postcodes": ["HU5 3QA"], "accounts": ["NW208733"],
              "dates_of_birth": ["2001-09-14"]},
    "tom": {"names": ["Tomasz Nowak", "Tom Nowak"], "emails": ["tom.nowak@example.net"], "phones": ["07700 900455"],
            "addresses": ["14 Sefton Park Road, Liverpool L8 3SL"], "postcodes": ["L8 3SL"], "accounts": ["NW208801"]},
    "priscilla": {"names": ["Priscilla Owusu"], "emails": ["p.owusu@example.org"], "phones": ["(718) 555-0193"],
                  "addresses": ["480 Macon St, Brooklyn, NY 11233"], "postcodes": ["11233"], "accounts": ["NW312260"],
                  "dates_of_birth": ["1969-03-30"]},
    "callum": {"names": ["Callum Fraser"], "emails": ["callum.fraser@example.com"], "phones": ["0131 496 0724"],
               "addresses": ["7 Warrender Park Road, Edinburgh EH9 1DS"], "postcodes": ["EH9 1DS"], "accounts": ["NW208944"]},
    "rosa": {"names": ["Rosa Martínez", "Rosa Martinez"], "emails": ["rosa.m@example.com"], "phones": ["(210) 555-0126"],
             "addresses": ["1307 W Commerce St, San Antonio, TX 78207"], "postcodes": ["78207"], "accounts": ["NW312381"],
             "dates_of_birth": ["1988-06-02"]},
    "dev": {"names": ["Devendra Shah", "Dev Shah"], "emails": ["dev.shah@example.co.uk"], "phones": ["0116 496 0339"],
            "addresses": ["81 Evington Road, Leicester LE2 1QH"], "postcodes": ["LE2 1QH"], "accounts": ["NW209066"],
            "dates_of_birth": ["1972-10-25"]},
    # dev5
    "harriet": {"names": ["Harriet Cole", "Hattie Cole"], "emails": ["harriet.cole@example.com"], "phones": ["07700 900150"],
                "addresses": ["5 Rosebery Avenue, Norwich NR2 3NT"], "postcodes": ["NR2 3NT"], "accounts": ["NW209120"],
                "dates_of_birth": ["1966-08-19"]},
    "kwame": {"names": ["Kwame Asante"], "emails": ["kwame.asante@example.net"], "phones": ["0113 496 0650"],
              "addresses": ["Flat 3, 17 Chapeltown Road, Leeds LS7 3AP"], "postcodes": ["LS7 3AP"], "accounts": ["NW209233"],
              "dates_of_birth": ["1981-01-30"]},
    "lena": {"names": ["Lena Fischer"], "emails": ["lena.fischer@example.org"], "phones": ["(503) 555-0177"],
             "addresses": ["1919 SE Hawthorne Blvd, Portland, OR 97214"], "postcodes": ["97214"], "accounts": ["NW312502"],
             "dates_of_birth": ["1993-12-12"]},
    "bruno": {"names": ["Bruno Costa"], "emails": ["bruno.costa@example.com"], "phones": ["07700 900820"],
              "addresses": ["48 Clarence Street, Cheltenham GL50 3LB"], "postcodes": ["GL50 3LB"], "accounts": ["NW209377"]},
    "yusuf": {"names": ["Yusuf Demir"], "emails": ["yusuf.demir@example.co.uk"], "phones": ["020 7946 0489"],
              "addresses": ["9 Stamford Hill, London N16 5TU"], "postcodes": ["N16 5TU"], "accounts": ["NW209401"],
              "dates_of_birth": ["1979-05-05"]},
    "megan": {"names": ["Megan Price", "Meg Price"], "emails": ["meg.price@example.com"], "phones": ["029 2018 0633"],
              "addresses": ["16 Kings Road, Cardiff CF11 9BZ"], "postcodes": ["CF11 9BZ"], "accounts": ["NW209555"],
              "dates_of_birth": ["1998-03-27"]},
}  # fmt: skip

Text = tuple[str, str, list[str], str]
# (kind, subject, others the systems know, marked-up text)

BLIND5: list[Text] = [
    ("call_note", "eleanor", [], "Caller was the customer's daughter, [[P:Fiona]]. She wanted to add herself as a named contact - gave her DOB as [[D:12/08/1983]] and mobile [[T:07700 900 562]]. Told her Mrs Whitfield must call us herself to authorise."),
    ("ticket", "samir", [], "Hi, please update the account so that my wife [[P:Layla]] can talk to you about the broadband. Her email is [[E:layla.h@home.example]] and her date of birth is [[D:2 June 1992]]. Thanks, Samir"),
    ("agent_note", "julia", [], "Customer verified (DOB 29/02/1984, postcode M6 8FH). She asked to remove her ex-partner [[P:Dominik]] as an authorised user. Done; his contact email [[E:dom.w@mailbox.test]] removed from the account."),
    ("chat", "marcus", [], "Customer: hey my son [[P:Eli]] needs his own line, can I add him? he was born [[D:03/15/2010]]\nAgent: Of course! Lines for under-18s need the account holder's consent, which you've given. What name should go on the SIM?\nCustomer: [[P:Elijah Reid]]"),
    ("delivery", "ines", [], "Delivered 10:12. Customer not home - parcel accepted by [[P:Mr Adeyemi]] at [[A:No. 29]]. His number [[T:+44 7700 900 903]] in case of query."),
    ("complaint", "graham", [], "Dear Sir or Madam,\n\nI write on behalf of my late brother, [[P:Dennis Pike]] (date of birth [[D:4 January 1946]]), whose mobile contract you are still billing. I enclose the death certificate. Please send any correspondence to me at the address above, not to his old address.\n\nYours faithfully,\nGraham Pike"),
    ("call_note", "aisha", [], "Inbound from the customer's housemate [[P:Chloe]]. She said Aisha is away and the router is flashing red. Could not discuss the account. [[P:Chloe]] left a callback number: [[T:01632 960 175]]"),
    ("ticket", "tom", [], "Hello, I want to order a second SIM for my girlfriend [[P:Natalia]]. She'll be the user but I pay. Her details: [[P:Natalia Wiśniewska]], born [[D:19.07.1995]], email [[E:nat.wisniewska@poczta.example]]."),
    ("agent_note", "priscilla", [], "Account holder's grandson [[P:Jaylen Owusu]] (DOB [[D:2004-11-23]]) is listed as an authorized user. Customer asked us to remove him effective today."),
    ("chat", "callum", [], "Customer: can I get the bill sent to my accountant instead?\nAgent: Sure, what's the email?\nCustomer: [[E:accounts@mcleanbooks.example]], it's [[P:Stuart McLean]]'s firm\nAgent: Done, bills will go there from next month."),
    ("call_note", "rosa", [], "Spoke w/ customer and her mom [[P:Guadalupe Martínez]] (on speaker). Mom's DOB [[D:8/22/1961]], her cell [[T:210-555-0149]]. Adding her as secondary contact per customer request."),
    ("ticket", "dev", [], "Please stop sending texts about my account to [[T:07700 900 731]]. That number now belongs to my former colleague [[P:Ravi]], not me. My number is 0116 496 0339."),
    ("delivery", "samir", [], "Signed for by [[P:J. OKAFOR]] (concierge). Flat 12 notified by card."),
    ("complaint", "marcus", [], "I have been charged for a phone I never ordered. The order confirmation went to [[E:m.reid1976@mail.invalid]], which is not my address - mine is marcus.reid@example.com. Somebody has used my details. Please investigate."),
    ("agent_note", "eleanor", [], "Power of attorney received for Mrs Whitfield. Attorney: [[P:Fiona Whitfield-Barnes]], [[A:41 Gay Street, Bath BA1 2NT]], tel [[T:01632 960 418]], email [[E:fiona.wb@example.com]]."),
    ("chat", "aisha", [], "Agent: Who's the second line for?\nCustomer: my little brother [[P:Tobi]], he turns 16 on [[D:3 March]]\nAgent: Great, we'll set a spending cap."),
    ("ticket", "ines", [], "Olá! I'm writing for my grandmother [[P:Maria do Céu Carvalho]], who doesn't speak English. She wants to cancel her line [[T:+351 912 458 301]]. Her date of birth is [[D:11-09-1938]]. Obrigada, Inês"),
    ("call_note", "graham", [], "Mr Pike rang. His neighbour [[P:Sandra]] has been taking in his parcels; he'd like deliveries to go to hers at [[A:5 Mill Lane]] when he's out. Added as a delivery note."),
    ("agent_note", "tom", [], "Duplicate account found: opened in the name [[P:Tomasz Nowakowski]], DOB [[D:1987-03-02]], email [[E:t.nowakowski@example.pl]]. Different person - not merged."),
    ("chat", "priscilla", [], "Customer: my daughter in law keeps getting my bills\nAgent: I'm sorry about that! What's her name so I can check?\nCustomer: [[P:Keisha]]. [[P:Keisha Owusu]]. her email is [[E:keisha.o@family.test]]\nAgent: I see her email on your billing contact. I'll remove it."),
    ("delivery", "callum", [], "No answer at 7 Warrender Park Road. Left with neighbour [[P:Mrs Drummond]] at [[A:no. 9]]."),
    ("ticket", "rosa", [], "Hi, I'm Rosa. My husband [[P:Alejandro]] passed away last month and his phone [[T:(210) 555-0174]] is still on our plan. Can you remove it? His DOB was [[D:April 17, 1985]] if you need it for records."),
    ("complaint", "dev", [], "I visited your Leicester store on Saturday and the assistant, [[P:Kelly]], gave my new SIM to another customer by mistake. I have since had texts meant for a [[P:Mr B. Chauhan]]."),
    ("call_note", "julia", [], "Customer rang about the bill for her mother's line. Mother: [[P:Halina Kowalczyk]], DOB [[D:05/05/1955]]. Customer is not an authorised user, so advised mother to call. Mother's landline [[T:0161 496 0212]]."),
    ("agent_note", "marcus", [], "Customer disputes a $49 charge. Card used: [[C:4000 0566 5566 5556]] - not the card on file (ending 4242). Cardholder named on the transaction: [[P:Derek Lyle]]."),
    ("chat", "eleanor", [], "Customer: Hello dear, my grandson [[P:oliver]] set this up for me\nAgent: Hello Mrs Whitfield! How can I help today?\nCustomer: He says I should ask about fibre"),
    ("ticket", "samir", [], "The engineer who came on Tuesday left his notes here - they have another customer's details on them ([[P:Patricia Lang]], [[A:18 Barnsbury Square, London N1 1JL]], [[T:020 7946 0642]]). What should I do with them?"),
    ("delivery", "aisha", [], "Attempted 14:05. Card left. Customer rang back and asked for redelivery to her partner's workplace: c/o [[P:Jamal Idris]], [[A:Unit 4, Sculcoates Lane, Hull HU5 1DR]]."),
    ("call_note", "tom", [], "Customer's landlord [[P:Mr Gerrard]] called wanting to know if the broadband will be cancelled when Tom moves out. Not authorised; no info given. Landlord's number [[T:0151 496 0990]]."),
    ("agent_note", "priscilla", [], "Verified customer: DOB 03/30/1969, zip 11233. Customer wants to know why her niece [[P:Abena]] received a marketing email at [[E:abena.mensah@school.example]] addressed to Priscilla. Logged as data quality issue."),
    ("complaint", "callum", [], "Your agent [[P:Morag]] promised me a callback three times and never called. I am now paying for a service I cannot use."),
    ("ticket", "rosa", [], "Can you put my son [[P:Mateo]] on my plan? He's 19, DOB [[D:1/9/2006]], his email is [[E:mateo.mtz@correo.example]] and number is [[T:210 555 0113]]."),
    ("call_note", "dev", [], "Caller gave name [[P:Anil Shah]], said he's the customer's uncle and asked for the account password. Refused. Flagged possible social engineering. Caller's number [[T:+91 98450 12345]]."),
    ("chat", "ines", [], "Customer: hi, my flatmate [[P:Ola]] wants to join our broadband account\nAgent: Happy to add a second contact. What's their full name and email?\nCustomer: [[P:Aleksandra Nowicka]], [[E:ola.nowicka@uni.example.ac.uk]]"),
    ("agent_note", "graham", [], "Bereavement: customer's wife [[P:Margaret Pike]] (d.o.b. [[D:17.06.1950]]) passed away in March. Her line transferred to customer's name. Condolence letter sent."),
    ("delivery", "marcus", [], "Package left with front desk. Received by: [[P:T. Nguyen]]. Apt 5 notified."),
    ("ticket", "julia", [], "I keep getting emails meant for someone called [[P:Joanna Kowal]] at [[E:joanna.kowal@example.com]] - I think someone typed the address wrong and it's similar to mine. Please fix."),
    ("call_note", "aisha", [], "Customer's mum [[P:Mrs Bello]] called to pay Aisha's bill by card. Payment taken, card ending 8812. Receipt sent to [[E:f.bello@example.ng]]."),
    ("chat", "tom", [], "Customer: can you send the new router to my partner's address\nAgent: Sure, what's the address?\nCustomer: [[A:27 Lark Lane, Liverpool L17 8US]], name [[P:Ewa Zielinska]]"),
    ("agent_note", "callum", [], "Customer is moving in with his fiancée [[P:Isla Grant]] at [[A:12 Marchmont Crescent, Edinburgh EH9 1HN]]. Her date of birth ([[D:22/01/1993]]) needed for the joint account credit check - consent recorded."),
    ("ticket", "priscilla", [], "Hello. Please remove my ex-husband [[P:Kwabena]] from my account. He is still able to order phones on it. His phone is [[T:+1 (347) 555-0128]] and his email [[E:kwabena.o@mailhost.example]]."),
    ("complaint", "eleanor", [], "I was told by your colleague [[P:Darren]] on the phone that my tariff would not go up. It has gone up by £6. Please listen to the call from 4 March."),
    ("call_note", "rosa", [], "Rosa called re: international roaming for her trip. Her sister [[P:Lucía]] in Madrid - wants cheap calls to [[T:+34 612 345 678]]. Added Spain bundle."),
    ("delivery", "dev", [], "Delivered to porch. Photo taken. Neighbour [[P:Mr Mistry]] said he'd keep an eye on it."),
    ("agent_note", "samir", [], "Customer uploaded a utility bill as proof of address but it's in his brother's name ([[P:Karim Haddad]]). Asked for one in his own name."),
    ("chat", "julia", [], "Customer: my nephew [[P:kuba]] is visiting from Poland, can I get him a pay as you go sim\nAgent: Of course, PAYG SIMs don't need an account. You can buy one in store."),
    ("ticket", "graham", [], "Please note my daughter [[P:Caroline]] now handles my account. You may contact her on [[T:07700 900 876]] or [[E:caroline.pike@example.org.uk]]. Her date of birth, if your security needs it, is [[D:30 November 1978]]."),
    ("call_note", "marcus", [], "Customer added his partner [[P:Jordan Ellis]] (DOB [[D:12-02-1980]]) as an authorized user. [[P:Jordan]]'s cell: [[T:415.555.0162]]."),
    ("agent_note", "ines", [], "No third-party data on the account. Customer confirmed DOB (21/05/1995) and email. Upgrade processed."),
    ("delivery", "callum", [], "Parcel 88120456 delivered 13:20. Left in porch as instructed."),
    ("complaint", "aisha", [], "Somebody from your company rang my dad, [[P:Olusegun Bello]], on [[T:+234 803 123 4567]] asking him to confirm my account details. He doesn't even have an account with you. Why did you have his number?"),
    ("ticket", "tom", [], "Hi, please cancel the order placed yesterday. It was placed by my stepson [[P:Kacper]] without my permission. He's 15 (born [[D:14 August 2010]])."),
    ("chat", "dev", [], "Agent ([[P:Hannah]]): Hi Dev, how can I help?\nCustomer: my wife's phone is cracked, can she claim on my insurance\nAgent ([[P:Hannah]]): If she's listed on the policy, yes. What's her name?\nCustomer: [[P:Meera Shah]]"),
    ("call_note", "priscilla", [], "Customer called from her work number (718) 555-0101. Requested a copy of her last three bills by mail. Done."),
    ("agent_note", "rosa", [], "Fraud alert: new line requested online using customer's details but with a different email, [[E:rosa.martinez.88@fastmail.test]], and phone [[T:(210) 555-0199]]. Blocked pending verification."),
    ("ticket", "callum", [], "Hiya, my gran [[P:Jessie Fraser]] wants to switch to your landline package. She's 84 and I'm helping her. Her phone is [[T:0131 496 0555]], DOB [[D:09.03.1941]]. Can she get the over-75 discount?"),
    ("delivery", "eleanor", [], "Parcel left with [[P:Mrs Okoye]], [[A:11 Linden Grove]], as per customer's safe-place instruction."),
    ("call_note", "samir", [], "Call from the customer's solicitor, [[P:Ms Helen Marsh]] of Marsh & Co, requesting a statement of account. Asked for signed authority. Her email [[E:h.marsh@marshlaw.example.co.uk]]."),
    ("chat", "graham", [], "Customer: hello, this is Graham. My friend [[P:Ron]] said you do a cheaper deal for pensioners?\nAgent: We do! Our Later Life plan is £10 a month. Shall I tell you more?"),
    ("agent_note", "marcus", [], "Customer's husband [[P:David]] called in to report the phone stolen. Line barred. Police ref SF-22-118733."),
    ("ticket", "julia", [], "Please send all post to my new address, 22 Beech Avenue, Salford M6 8FH. The old address is now my sister-in-law's ([[P:Kasia]]) so she keeps getting my letters."),
    ("complaint", "dev", [], "Dear Northwind, your engineer [[P:Lee Carver]] drove over my neighbour's lawn at [[A:83 Evington Road]]. My neighbour [[P:Mrs Joshi]] is very upset. Please contact her on [[T:0116 496 0810]]."),
    ("call_note", "ines", [], "Inês called for her partner [[P:Rui Mendes]]. He lost his SIM. He is not on the account; asked him to call. His email [[E:rui.mendes@correio.example]] noted for the callback."),
    ("chat", "aisha", [], "Customer: can u send the code to my other number\nAgent: Which number would that be?\nCustomer: its my cousins phone [[T:07700900344]], [[P:Zara]]'s"),
    ("delivery", "marcus", [], "Left at garage per instructions. Signature: [[P:K. Alvarez]]."),
    ("agent_note", "tom", [], "KYC: driving licence supplied belongs to [[P:Marek Nowak]] (customer's father), born [[D:02/02/1961]]. Asked customer to resubmit his own."),
    ("ticket", "priscilla", [], "To Northwind: the bill for account NW312260 shows a line for [[P:Ama Boateng]], [[T:(718) 555-0157]]. I don't know this person. Please remove."),
    ("call_note", "eleanor", [], "Mrs Whitfield's carer [[P:Grace Adebayo]] helped her on the call (customer consented). [[P:Grace]]'s email for the bills: [[E:grace.adebayo@careagency.example]]."),
    ("chat", "rosa", [], "Customer: hola, my abuelo needs a phone with big buttons\nAgent: We have the Doro 8100! Would that be on your account?\nCustomer: yes, for [[P:Don Ernesto]], he lives with me"),
    ("ticket", "samir", [], "Please note that the mobile number on my account was mistyped. It should be +44 20 7946 0371, not [[T:+44 20 7946 0317]], which is someone else's."),
    ("agent_note", "callum", [], "Customer rang to say his partner [[P:Eilidh]] will call about moving the broadband to their new flat. Password set for her: customer's choice."),
    ("complaint", "julia", [], "A man called [[P:Steven]] from your company phoned my elderly father [[P:Jan Kowalczyk]] (he's 82) at home on [[T:0161 496 0299]] and pressured him into a contract. This is unacceptable."),
    ("call_note", "graham", [], "Outbound: confirmed the customer's DOB (01/12/1949) before discussing the arrears. Payment plan agreed."),
    ("ticket", "aisha", [], "Hi, I'm 22 and my mum [[P:Funmilayo Bello]] pays my bill. Can you put her email [[E:funmi.bello@parents.example]] on as the billing contact? Thanks"),
    ("delivery", "priscilla", [], "Delivered to neighbor at [[A:484 Macon St]] ([[P:Mr. Johnson]]). Door tag left."),
    ("chat", "tom", [], "Agent: Could you confirm the date of birth on the account?\nCustomer: it's my wife's account actually, [[P:Magda]]. her DOB is [[D:17/10/1989]]\nAgent: I'm sorry, I need to speak with the account holder."),
    ("agent_note", "dev", [], "Customer asked us to email the contract to his business partner [[P:Suresh Patel]] at [[E:suresh@shahpatel.example.co.uk]]. Consent recorded."),
    ("ticket", "eleanor", [], "To whom it may concern. My son, [[P:Richard]], tells me my bill can be paid by direct debit. Could you please send the form to me by post? I do not use email. Eleanor Whitfield (Mrs), 9 Linden Grove, Bath"),
    ("call_note", "marcus", [], "Customer reports ex-girlfriend [[P:Tanya Brooks]] still has access to his online account. Password reset, sessions revoked. Her email [[E:tanyab@webmail.example]] removed as recovery address."),
    ("complaint", "rosa", [], "The tech who installed my internet, [[P:Kevin]], left a mess and then sent me a text from his personal phone [[T:210-555-0188]] asking me out. I want this investigated."),
    ("agent_note", "julia", [], "Contract started 01/02/2024, ends 31/01/2026. Early termination fee quoted. Customer's daughter [[P:Zosia]] was on the call too."),
    ("delivery", "ines", [], "Delivery scheduled 12/06/2026 between 08:00 and 12:00. Customer's neighbour [[P:Derek]] has a key."),
    ("ticket", "callum", [], "I'm in France until the end of the month. If you need me urgently, call my friend [[P:Amélie]] on [[T:+33 6 12 45 78 90]] - I'm staying with her."),
    ("call_note", "dev", [], "Customer's son [[P:Arjun]] is studying in Germany; customer wants calls to [[T:+49 151 23456789]] included in the international add-on."),
    ("agent_note", "priscilla", [], "Secondary contact: [[P:Kofi Owusu]] (brother), [[T:+1-718-555-0143 ext. 22]], email [[E:KOFI.OWUSU@EXAMPLE.ORG]]."),
    ("chat", "samir", [], "Customer: can you text the code to my dad's number instead? [[T:+961 3 123 456]]\nAgent: For security we can only send codes to numbers on the account."),
    ("ticket", "graham", [], "My grandson [[P:Ben]] says you can email him the instructions at [[E:ben.pike at example dot com]] as I don't have a computer."),
    ("agent_note", "marcus", [], "Authorized user added: [[P:Sofia Reid]] (daughter), date of birth [[D:Feb. 3, 2007]]."),
    ("call_note", "rosa", [], "Rosa's sister [[P:Carmen]] called about the family plan. Verified as authorized user with DOB [[D:10/31/1979]] and last 4 of her SSN."),
    ("ticket", "aisha", [], "Please add my boyfriend to my account as a contact. Name: [[P:Daniel Osei]]. D.O.B: [[D:1999-01-07]]. Mobile: [[T:07700 900 419]]."),
    ("agent_note", "tom", [], "Bounce-back: e-bill to [[E:ewa.z@inbox.localhost]] (customer's partner, billing contact) failed. Asked customer for a working address."),
]  # fmt: skip

DEV5: list[Text] = [
    ("call_note", "harriet", [], "Customer's husband [[P:Neil]] called to report a fault. DOB given for [[P:Neil]]: [[D:14/11/1963]]. Not an authorised user; asked Harriet to add him."),
    ("ticket", "kwame", [], "Please add my sister [[P:Abena Asante]] (born [[D:3 May 1985]]) as a named contact. Her email is [[E:abena@asante.example]]."),
    ("agent_note", "lena", [], "Customer verified with DOB 12/12/1993. Wants her roommate [[P:Priya Nair]]'s email [[E:priya.nair@mail.test]] removed from the billing contacts."),
    ("chat", "bruno", [], "Customer: my wife [[P:Ana]] will call you tomorrow\nAgent: Is she an authorised user?\nCustomer: not yet, her dob is [[D:21.04.1990]] if that helps"),
    ("delivery", "yusuf", [], "Left with neighbour [[P:Mrs Aksoy]] at [[A:no. 11]]. Tel [[T:+44 7700 900 277]]."),
    ("complaint", "megan", [], "My partner [[P:Rhys]] was told by your store that he could take over my contract. That's not true. His number is [[T:07700 900 991]] and he was born [[D:2 February 1996]]."),
    ("ticket", "harriet", [], "The bill went to [[E:h.cole@oldmail.invalid]], my daughter [[P:Sophie]]'s address - please use mine, harriet.cole@example.com."),
    ("call_note", "kwame", [], "Caller [[P:Efua Mensah]] (customer's mother-in-law) asked about his bill. Gave DOB [[D:1958-09-09]]. Not authorised."),
    ("agent_note", "lena", [], "Authorized user: [[P:Jonas Fischer]] (brother), DOB [[D:07/04/1990]], cell [[T:503.555.0140]]."),
    ("chat", "yusuf", [], "Customer: can I move my line to my uncle [[P:Mehmet]]?\nAgent: You'd need to transfer ownership. Does he have an account?\nCustomer: no, his email is [[E:mehmet.demir@posta.example]]"),
    ("ticket", "megan", [], "Hiya, my flatmate [[P:Ffion]] wants to know if she can join our broadband. Her number is [[T:+44 (0) 7700 900 512]]."),
    ("delivery", "bruno", [], "Signed for by [[P:P. SANTOS]]. Left at reception."),
    ("complaint", "harriet", [], "Your engineer [[P:Barry]] promised to come back on 12/03/2026 and didn't. I took the day off work."),
    ("agent_note", "kwame", [], "Joint account application: partner [[P:Grace Boateng]], date of birth [[D:11 Oct 1983]], email [[E:grace.boateng@example.com]]."),
    ("call_note", "lena", [], "Lena's mom [[P:Ursula]] called from Germany, [[T:+49 30 12345678]]. Wanted to pay Lena's bill. Payment taken."),
    ("ticket", "yusuf", [], "Please cancel my late father's line. His name was [[P:Hasan Demir]], DOB [[D:01/07/1940]], number [[T:020 7946 0733]]."),
    ("chat", "megan", [], "Agent: What's the name of the person you'd like to add?\nCustomer: my boyfriend [[P:owain]]\nAgent: And his full name please?\nCustomer: [[P:Owain Morgan]]"),
    ("delivery", "harriet", [], "Delivered 11:40 to [[P:Mr Thornton]] next door ([[A:7 Rosebery Avenue]])."),
    ("agent_note", "bruno", [], "Customer verified (DOB not held; used postcode and last payment). Son [[P:Tiago]]'s phone [[T:+351 934 567 890]] added to the roaming bundle."),
    ("ticket", "kwame", [], "My ex-wife [[P:Adwoa]] still has the online login. Please change the email on the account from [[E:adwoa.k@household.test]] to mine."),
    ("call_note", "megan", [], "Customer's grandmother [[P:Nerys Price]] (b. [[D:1939-06-15]]) is moving in with her. Wants a landline for [[P:Nerys]]."),
    ("complaint", "lena", [], "Your rep [[P:Tyler]] signed my brother-in-law [[P:Mark Weber]] up for a line on MY account without asking me. [[P:Mark]]'s email is [[E:mweber@corp.example.com]]."),
    ("agent_note", "yusuf", [], "Fraud check: application used customer's name but DOB [[D:05/05/1977]] and email [[E:y.demir77@mailer.example]] - neither matches the customer. Blocked."),
    ("delivery", "lena", [], "Left at door. Neighbor [[P:Hank]] ([[A:1921 SE Hawthorne Blvd]]) waved."),
    ("ticket", "bruno", [], "Hi - my stepdaughter [[P:Júlia]] was born on [[D:the 4th of July 2008]] and wants her own phone. What do you offer for teenagers?"),
    ("chat", "harriet", [], "Customer: hello, I'm Harriet. my husband [[P:neil]] has a question about the bill\nAgent: Hello Harriet! Can I speak with [[P:Neil]]?\nCustomer: he's [[P:Neil Cole]], he's right here"),
    ("call_note", "kwame", [], "Outbound to customer's work number, spoke to receptionist [[P:Shirley]]. Left message."),
    ("agent_note", "megan", [], "Customer added her mam [[P:Carys Price]], DOB [[D:30-09-1970]], as second account holder."),
    ("ticket", "yusuf", [], "Hello, my cousin [[P:Emre]] in Istanbul keeps getting texts meant for me at [[T:+90 532 123 45 67]]. Please correct the number."),
    ("complaint", "bruno", [], "Somebody called [[P:Gary Hunt]] has been using my account to buy accessories, delivered to [[A:22 Hewlett Road, Cheltenham GL52 6AA]]. His email on the orders is [[E:garyhunt@throwaway.invalid]]."),
    ("delivery", "megan", [], "No answer. Left with [[P:Dai]] at the shop on the corner."),
    ("call_note", "lena", [], "Lena asked to add her partner [[P:Sam Okafor]] (DOB [[D:Aug 9, 1991]]) as an authorized user. [[P:Sam]]'s email [[E:sam.okafor@example.org]]."),
    ("agent_note", "harriet", [], "Attorney under LPA: customer's son [[P:James Cole]], [[T:01632 960214]]."),
    ("ticket", "kwame", [], "Pls send the new SIM to my girlfriend's: [[A:14 Cowper Street, Leeds LS7 4DR]], c/o [[P:Naomi]]."),
    ("chat", "yusuf", [], "Agent: Who am I speaking with?\nCustomer: Yusuf's brother [[P:Ali]]\nAgent: Thanks [[P:Ali]]. I'll need Yusuf's permission to discuss the account."),
    ("agent_note", "bruno", [], "DOB on file for the customer's son [[P:Lucas Costa]]: [[D:2009-02-17]]. Parental consent for under-16 line recorded."),
    ("complaint", "megan", [], "I was sent a bill addressed to [[P:Mrs Eleri Jones]] of [[A:18 Kings Road]]. I assume she's my neighbour. Her account number is on it: [[N:NW209610]]."),
    ("call_note", "harriet", [], "Customer's lodger [[P:Tomás]] answered; customer out. Will call back."),
    ("ticket", "lena", [], "Please email the receipt to my assistant [[E:assistant@fischerdesign.test]] ([[P:Maya]])."),
    ("delivery", "kwame", [], "Parcel handed to [[P:R. Appiah]], [[A:Flat 4]], same building. Customer texted."),
    ("agent_note", "yusuf", [], "Customer's daughter [[P:Elif]], born [[D:12 December 2012]], added as a user (child line, parental controls on)."),
    ("chat", "megan", [], "Customer: can i pay my nan's bill too? shes [[P:Gwen Price]]\nAgent: I'll need her account number.\nCustomer: [[N:NW209561]]"),
    ("ticket", "bruno", [], "My neighbour [[P:Mrs Ellery]] at [[A:50 Clarence Street]] has been receiving my letters. Her phone is [[T:01632 960021]]."),
    ("call_note", "lena", [], "Customer called about data roaming; nothing else to note."),
    ("agent_note", "harriet", [], "Customer confirmed DOB 19/08/1966 and postcode NR2 3NT. Direct debit set up."),
    ("complaint", "kwame", [], "Your driver [[P:Wayne]] threw my parcel over the fence. My neighbour [[P:Doris]] saw it and will confirm - [[T:0113 496 0922]]."),
    ("ticket", "yusuf", [], "Can you add my wife [[P:Zeynep Demir]], DOB [[D:23.01.1984]], [[E:zeynep.demir@ev.example]], as a contact?"),
    ("chat", "bruno", [], "Customer: my partner's number is [[T:0033 6 98 76 54 32]], can he get calls included?\nAgent: Calls to France are in the Europe add-on."),
    ("delivery", "lena", [], "DELIVERED 3/14 4:52 PM - Signed: [[P:D. WASHINGTON]]"),
    ("agent_note", "megan", [], "Billing contact changed to customer's partner [[P:Rhys Evans]] <[[E:rhys.evans@work.example]]> at customer's request."),
]  # fmt: skip

SETS = {"dev5": DEV5, "blind5": BLIND5}


def parse(marked: str) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and its labelled spans (offsets into the plain text)."""
    out: list[str] = []
    spans: list[dict[str, Any]] = []
    pos = length = 0
    for m in MARK.finditer(marked):
        literal = marked[pos : m.start()]
        out.append(literal)
        length += len(literal)
        value = m.group(2)
        spans.append({"start": length, "end": length + len(value), "kind": KINDS[m.group(1)]})
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(marked[pos:])
    text = "".join(out)
    if "[[" in text or "]]" in text:
        raise ValueError(f"unbalanced markup in {marked[:40]!r}")
    return text, spans


def lines(split: str, texts: list[Text]) -> list[dict[str, Any]]:
    result = []
    for n, (kind, who, others, marked) in enumerate(texts, start=1):
        text, spans = parse(marked)
        result.append({"id": f"{split}-{n:03d}", "split": split, "kind": kind,
                       "subject": {key: list(values) for key, values in SUBJECTS[who].items()},
                       "others": others, "text": text, "spans": spans})  # fmt: skip
    return result


def main() -> None:
    rows = [row for split, texts in SETS.items() for row in lines(split, texts)]
    assert len({r["text"] for r in rows}) == len(rows), "duplicate text"
    with open(HERE / "round5.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    for split in SETS:
        mine = [r for r in rows if r["split"] == split]
        print(f"{split}: {len(mine)} texts, {sum(len(r['spans']) for r in mine)} labelled spans")


if __name__ == "__main__":
    main()
