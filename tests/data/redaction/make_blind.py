# ruff: noqa: E501 - hand-written texts, one per line, with real-world punctuation
"""Write ``blind.jsonl``: held-out sets written by hand (``blind2``, ``blind3``, ``blind4``), each
before the detector changes it was to judge.

Unlike ``corpus.jsonl`` (templates filled from pools of people), each text here was written
once, as a support agent, courier or customer would write it: first names with no cue word at
the start of a sentence, lower-case names, nicknames, staff names, names from many cultures,
other people's e-mails, phones, addresses, cards and account numbers, and the subject's own data
(which must be kept). The figures before any change to the detector were measured on this file
and recorded in tests/test_redaction.py; neither set was used to tune the detector.

Markup: ``[[K:text]]`` labels ``text`` as another person's data of kind ``K``::

    P PERSON   E EMAIL   T PHONE   A ADDRESS   C CARD   N ACCOUNT   I NINO

Run ``python tests/data/redaction/make_blind.py`` to rebuild the JSONL from this file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KINDS = {"P": "PERSON", "E": "EMAIL", "T": "PHONE", "A": "ADDRESS", "C": "CARD", "N": "ACCOUNT", "I": "NINO"}
MARK = re.compile(r"\[\[([PETACNI]):(.+?)\]\]", re.DOTALL)

SUBJECTS: dict[str, dict[str, list[str]]] = {
    "priya": {"names": ["Priya Raman", "Pri Raman"], "emails": ["priya.raman@example.com"], "phones": ["07700 900318"],
              "addresses": ["Flat 4, 19 Hawthorn Road, Reading RG1 5PT"], "postcodes": ["RG1 5PT"], "accounts": ["NW204417"]},
    "connor": {"names": ["Connor Doyle", "Con Doyle"], "emails": ["connor.doyle@example.net"], "phones": ["0161 496 0552"],
               "addresses": ["3 Mulberry Close, Stockport SK4 2DW"], "postcodes": ["SK4 2DW"], "accounts": ["NW204562"]},
    "adaeze": {"names": ["Adaeze Nwosu", "Ada Nwosu"], "emails": ["ada.nwosu@example.com"], "phones": ["(312) 555-0148"],
               "addresses": ["2817 W Fullerton Ave, Apt 2B, Chicago, IL 60647"], "postcodes": ["60647"], "accounts": ["NW308812"]},
    "hywel": {"names": ["Hywel Pritchard"], "emails": ["hywel.p@example.org"], "phones": ["029 2018 0977"],
              "addresses": ["58 Cathedral Road, Cardiff CF11 9LL"], "postcodes": ["CF11 9LL"], "accounts": ["NW204990", "SX449126B"]},
    "annie": {"names": ["Minh Anh Tran", "Annie Tran"], "emails": ["annie.tran@example.net"], "phones": ["408-555-0171"],
              "addresses": ["1450 Alum Rock Ave, San Jose, CA 95116"], "postcodes": ["95116"], "accounts": ["NW309034"]},
    "zainab": {"names": ["Zainab Hussain", "Zee Hussain"], "emails": ["zainab.h@example.com"], "phones": ["07700 900947"],
               "addresses": ["112 Stratford Road, Birmingham B11 1AN"], "postcodes": ["B11 1AN"], "accounts": ["NW205118"]},
    "grainne": {"names": ["Gráinne Ní Bhriain", "Grainne O'Brien"], "emails": ["grainne.nibhriain@example.org"],
                "phones": ["07700 900605"], "addresses": ["27 Botanic Avenue, Belfast BT7 1JQ"], "postcodes": ["BT7 1JQ"],
                "accounts": ["NW205203"]},
    "rafa": {"names": ["Rafael Ortiz Delgado", "Rafa Ortiz"], "emails": ["rafa.ortiz@example.com"], "phones": ["(305) 555-0126"],
             "addresses": ["930 NW 7th St, Miami, FL 33136"], "postcodes": ["33136"], "accounts": ["NW309177"]},
    "tendai": {"names": ["Tendai Moyo"], "emails": ["tendai.moyo@example.com"], "phones": ["07700 900127"],
               "addresses": ["44 Primrose Hill Road, Huddersfield HD3 3QW"], "postcodes": ["HD3 3QW"], "accounts": ["NW206021"]},
    "lars": {"names": ["Lars Eriksen"], "emails": ["lars.e@example.net"], "phones": ["01632 960433"],
             "addresses": ["Flat 9, 2 Quayside, Newcastle NE1 3DX"], "postcodes": ["NE1 3DX"], "accounts": ["NW206155"]},
    "bia": {"names": ["Beatriz Nunes", "Bia Nunes"], "emails": ["bia.nunes@example.org"], "phones": ["(617) 555-0162"],
            "addresses": ["77 Dorchester Ave, Unit 4, Boston, MA 02127"], "postcodes": ["02127"], "accounts": ["NW310045"]},
    "kenji": {"names": ["Kenji Watanabe"], "emails": ["kwatanabe@example.com"], "phones": ["(206) 555-0139"],
              "addresses": ["5120 Roosevelt Way NE, Seattle, WA 98105"], "postcodes": ["98105"], "accounts": ["NW310099"]},
    "fatou": {"names": ["Fatou Diallo"], "emails": ["fatou.diallo@example.org"], "phones": ["020 7946 0734"],
              "addresses": ["31 Brixton Water Lane, London SW2 1PE"], "postcodes": ["SW2 1PE"], "accounts": ["NW206288"]},
    "agnes": {"names": ["Agnes McBride", "Nessie McBride"], "emails": ["agnes.mcbride@example.com"], "phones": ["0141 496 0390"],
              "addresses": ["14 Novar Drive, Glasgow G12 9PU"], "postcodes": ["G12 9PU"], "accounts": ["NW206301"]},
    "deandre": {"names": ["DeAndre Wallace", "Dre Wallace"], "emails": ["dwallace@example.net"], "phones": ["(901) 555-0115"],
                "addresses": ["1766 Peabody Ave, Memphis, TN 38104"], "postcodes": ["38104"], "accounts": ["NW310150"]},
    "mehmet": {"names": ["Mehmet Yilmaz", "Memo Yilmaz"], "emails": ["m.yilmaz@example.com"], "phones": ["07700 900741"],
               "addresses": ["23 Green Lanes, London N4 1HJ"], "postcodes": ["N4 1HJ"], "accounts": ["NW207044"]},
    "siobhan": {"names": ["Siobhan Gallagher"], "emails": ["siobhan.g@example.net"], "phones": ["028 9018 0522"],
                "addresses": ["5 Ormeau Road, Belfast BT7 1EA"], "postcodes": ["BT7 1EA"], "accounts": ["NW207101"]},
    "lakshmi": {"names": ["Lakshmi Subramanian", "Lux Subramanian"], "emails": ["lakshmi.s@example.org"],
                "phones": ["(919) 555-0175"], "addresses": ["610 Ninth St, Durham, NC 27705"], "postcodes": ["27705"],
                "accounts": ["NW311206"]},
    "owen": {"names": ["Owen Harrington"], "emails": ["owen.harrington@example.com"], "phones": ["01632 960781"],
             "addresses": ["Flat 1, 88 Castle Street, Shrewsbury SY1 2BB"], "postcodes": ["SY1 2BB"], "accounts": ["NW207233"]},
    "marisa": {"names": ["Marisa Calderón", "Mari Calderon"], "emails": ["marisa.calderon@example.com"],
               "phones": ["(512) 555-0191"], "addresses": ["4102 Speedway, Austin, TX 78751"], "postcodes": ["78751"],
               "accounts": ["NW311318"]},
    "kofi": {"names": ["Kofi Mensah"], "emails": ["kofi.mensah@example.net"], "phones": ["0121 496 0613"],
             "addresses": ["77 Soho Road, Birmingham B21 9SP"], "postcodes": ["B21 9SP"], "accounts": ["NW207390"]},
    "oksana": {"names": ["Oksana Petrenko"], "emails": ["oksana.petrenko@example.net"], "phones": ["0113 496 0281"],
               "addresses": ["6 Harehills Lane, Leeds LS8 4HX"], "postcodes": ["LS8 4HX"], "accounts": ["NW205377"]},
}  # fmt: skip

Text = tuple[str, str, list[str], list[str], str]
# (kind, subject, extra references of the subject's own, others the systems know, marked-up text)
BLIND2: list[Text] = [
    ("ticket", "priya", ["7731902"], [], "Hi, I ordered a router last week (order 7731902) and it was delivered to [[A:Flat 2, 19 Hawthorn Road]] instead of my flat. [[P:Kasia]] downstairs says she hasn't seen it. Can you check the driver's photo? Priya"),
    ("call_note", "connor", [], [], "[[P:Sam]] rang about the bill for Connor's line - says he's the brother and pays it each month. Not on the account, so nothing discussed. Asked Connor to add him as an authorised user."),
    ("delivery", "adaeze", [], [], "Delivered 11/04 2:47 PM. Left with neighbor [[P:Mrs. Kowalski]] at [[A:#3A]]. Photo on file."),
    ("chat", "zainab", [], [], "Customer: hiya, my cousin [[P:imran]] is using my old phone, can u unlock it for him\nAgent: Hi Zainab! I can unlock it, but the handset stays on your account. Is that ok?\nCustomer: yeh fine. his number is [[T:07700 900 386]]"),
    ("complaint", "hywel", [], [], "Dear Sir/Madam,\n\nOn 3 March your engineer, [[P:Darren]], came to fit my broadband at 58 Cathedral Road. He left the cabling across my neighbour's drive at [[A:60 Cathedral Road]] and [[P:Mr Llewellyn]] tripped over it. His daughter [[P:Carys Llewellyn]] has asked me to pass on her email, [[E:carys.llew@example.co.uk]], so that your insurer can contact her.\n\nYours faithfully,\nHywel Pritchard"),
    ("ticket", "annie", [], [], "Subject: refund\nHi, my sister-in-law [[P:Thuy]] bought the earbuds for me with her card ([[C:6011 0009 9013 9424]]). Please refund to her card not mine. Thanks, Annie"),
    ("agent_note", "grainne", [], [], "Customer asked us to send all letters c/o her solicitor, [[P:Declan McGrath]] of Lagan Legal, [[A:14 May Street, Belfast BT1 4NL]]. Authority letter scanned."),
    ("call_note", "rafa", [], [], "Rafa called, very upset. His abuela [[P:Esperanza Delgado]] got a text from us saying her phone was being cut off - it's on Rafa's plan. Her number [[T:305-555-0190]]. Explained it was a dunning msg for the overdue balance."),
    ("delivery", "priya", ["NW4410298837GB"], [], "Parcel NW4410298837GB left with [[P:Mo]] at the corner shop (Hawthorn Stores). Customer notified by SMS to 07700900318."),
    ("ticket", "oksana", [], [], "My ex-husband [[P:Bohdan]] keeps calling your helpline and pretending to be me. Please put a password on account NW205377. He may use the number [[T:07700 900 512]] or [[T:0113 496 0774]]."),
    ("chat", "adaeze", [], [], "[09:14] Agent ([[P:Marisol]]): Hi, thanks for waiting! Who am I chatting with?\n[09:14] Customer: Adaeze Nwosu, acct NW308812\n[09:15] Agent ([[P:Marisol]]): Thanks Adaeze. I see two lines on the account. Which one is giving trouble?\n[09:15] Customer: the one ending 0148"),
    ("agent_note", "zainab", [], [], "Payment taken from the customer's brother's account by mistake: sort code 40-11-62, account [[N:31926819]], name on account [[P:Bilal Hussain]]. Reversal requested."),
    ("call_note", "connor", [], [], "Outbound to 0161 496 0552, no answer. Left VM. Second attempt picked up by a child who said his dad was at work. Call back tomorrow."),
    ("ticket", "hywel", [], [], "Please cancel the second SIM on my account. It was for my son [[P:Rhodri]] but he's got his own contract now. Diolch, Hywel"),
    ("complaint", "annie", [], [], "To whom it may concern: I have asked THREE times for my late father's line to be closed. His name was [[P:Van Long Tran]], the number is [[T:(408) 555-0135]], and his account is [[N:NW309201]]. I am his executor.\nAnnie Tran, 1450 Alum Rock Ave, San Jose CA 95116"),
    ("delivery", "rafa", [], [], "Delivery attempt 1: no access to building. Concierge [[P:Luis]] refused to sign. Attempt 2 tomorrow AM."),
    ("chat", "grainne", [], [], "Customer: Hi, can you tell me why there's a charge for 'Grainne O'Brien Mobile 2'?\nAgent: Hi Gráinne, that's the second line you added in June.\nCustomer: oh that's [[P:aoife]]'s phone, my daughter. grand so"),
    ("agent_note", "priya", [], [], "KYC: utility bill supplied in the name of [[P:R. Krishnan]] (landlord). Not acceptable as proof of address for the customer. Asked for a council tax bill instead."),
    ("ticket", "oksana", [], [], "Hello, I think your courier gave my parcel to the wrong woman. The app says signed by '[[P:LEWIS]]'. No one called [[P:Lewis]] lives here.\nOksana Petrenko, 6 Harehills Lane, LS8 4HX"),
    ("call_note", "adaeze", [], ["Chidi Nwosu", "chidi.nwosu@example.org", "312-555-0163"], "Cust's husband [[P:Chidi]] on the line as well; cust gave verbal consent for us to discuss billing with him. [[P:Chidi]] asked for e-bills to go to [[E:chidi.nwosu@example.org]]."),
    ("delivery", "zainab", [], [], "Safe place: behind the green bin. If not possible leave with [[A:no. 114]] (Aunty [[P:Shabana]])."),
    ("complaint", "connor", [], [], "I'm complaining about the manager at your Stockport branch, a bloke called [[P:Gaz]] ([[P:Gary]]?), who told me I'd get the phone for £20 a month and now it's £32. I want the difference back."),
    ("agent_note", "rafa", [], [], "Authorized user added: [[P:Yesenia Ortiz]], DOB on file, email [[E:yesi.ortiz@example.net]]. Primary: Rafael Ortiz."),
    ("ticket", "annie", [], [], "Can you send the replacement phone to my friend's place instead? It's [[A:3381 Brookdale Dr, Santa Clara, CA 95051]], c/o [[P:Kevin Huang]]. I'm staying with him this month."),
    ("call_note", "hywel", [], [], "Caller: Mrs [[P:Bethan Rees]], next door to our customer Mr Pritchard. She said the customer is in hospital and asked about his bill. Not authorised - gave no details. Her number [[T:029 2018 0411]]."),
    ("chat", "priya", [], [], "Customer: is [[P:Sunil]] still dealing with my complaint?\nAgent: [[P:Sunil]] has moved teams, I'll pick it up. Could you confirm your postcode?\nCustomer: RG1 5PT"),
    ("agent_note", "oksana", [], [], "Fraud marker: application in the customer's name made with contact email [[E:bohdan.k@example.net]] and mobile [[T:07700 900 512]]; customer says both belong to her ex-husband."),
    ("delivery", "adaeze", [], [], "DELIVERED 4/22 10:05 AM - Handed to resident. Signed: [[P:T. Okonkwo]]"),
    ("ticket", "grainne", [], [], "Hi there, the letter about my contract was addressed to [[P:Siobhán Ní Bhriain]] - that's my sister, she doesn't live here. Please fix the name on my account."),
    ("complaint", "zainab", [], [], "Dear Customer Services,\n\nI live at 112 Stratford Road with my husband and two children. On Tuesday your delivery driver left my new phone at [[A:118 Stratford Road]], a house I don't know. When I went round, a lady called [[P:Parveen]] answered and said her son [[P:Tariq]] had already opened it. She gave me her number ([[T:07700 900 163]]) in case you need to speak to her.\n\nI want a replacement sent to me, Zainab Hussain, not a refund.\n\nThank you,\nZee"),
    ("call_note", "annie", [], [], "Inbound. Annie (acct holder) verified. She wants to add her mom, Mrs. [[P:Nguyen Thi Lan]], to the family plan. Mom's email [[E:lan.nguyen52@example.com]]. Sent invite."),
    ("agent_note", "connor", [], [], "Customer upgraded to the 100GB plan from the next bill date. Confirmation sent to connor.doyle@example.net. Con happy."),
    ("delivery", "hywel", [], [], "Attempted delivery. Card left. Neighbour at [[A:No.56]] offered to take it in but the customer has a 'no neighbours' flag."),
    ("ticket", "rafa", ["4410937"], [], "my roommate [[P:dante]] ordered a case on my account by accident, order 4410937, can u cancel it. his email is [[E:dante.m@example.org]] if u need to ask him"),
    ("chat", "oksana", [], [], "[18:40] Oksana: hello I need help with roaming\n[18:41] [[P:Femi]] (Northwind): Hi Oksana, happy to help. Where are you travelling?\n[18:41] Oksana: Poland, visiting my mother [[P:Halyna]] in Kraków"),
    ("agent_note", "adaeze", [], [], "Account opened by the customer's late aunt [[P:Ngozi Eze]] and transferred to the customer in 2019. Notes updated."),
    ("call_note", "priya", [], [], "Customer rang from her work number 0118 496 0702 as her mobile is broken. Wants the SIM replacement sent to her home address."),
    ("delivery", "connor", [], [], "Signed for by [[P:K WOJCIK]] at [[A:5 Mulberry Close]]."),
    ("complaint", "annie", [], [], "I am writing about the rep at your Eastridge store, [[P:Jordan]], who signed me up for device insurance I never asked for. When I went back, [[P:Jordan]]'s manager [[P:Ms. Castillo]] said she couldn't remove it. I want it refunded from the start."),
    ("ticket", "zainab", [], ["Mohammed Hussain", "NW205240"], "salam, I'm asking for the unlock code for my dad's phone. The account is in his name, [[P:Mohammed Hussain]], acct [[N:NW205240]]. I'm Zainab, his daughter, he's asked me to sort it."),
    ("call_note", "grainne", [], [], "Call from [[P:Fr. Brendan Quinn]], parish priest, on behalf of the customer, who is housebound. Explained we need the customer's consent. He'll bring her into the Belfast store."),
    ("agent_note", "rafa", [], [], "Porting request for [[T:(786) 555-0119]] rejected - number belongs to a different carrier account in the name of [[P:Maritza Salas]]."),
    ("chat", "hywel", [], [], "Customer: my wife [[P:Angharad]] is the one who usually deals with this, can she call instead?\nAgent: Of course, if you add her as an authorised contact. What's her mobile?\nCustomer: [[T:07700 900 274]]"),
    ("delivery", "annie", [], [], "Left at front door per instructions. 1450 Alum Rock Ave. Photo taken. Delivered by: [[P:Alejandro R.]]"),
    ("ticket", "priya", [], [], "Please stop sending texts about my account to [[T:+44 7700 900776]] - that's my old number and it now belongs to someone else."),
    ("complaint", "oksana", [], [], "Your engineer [[P:Mr Baptiste]] was two hours late and then said he couldn't do the install because of the cable run. My neighbour [[P:Yvonne]] at [[A:number 8]] has the same setup and yours fitted hers last year. Please send someone who can do the job."),
    ("agent_note", "connor", [], [], "Credit check referral: CRA shows a linked address at [[A:41 Brinnington Road, Stockport SK5 8AF]] associated with [[P:Shannon Doyle]]. Customer says that is his ex-wife; financial disassociation advised."),
    ("call_note", "zainab", [], [], "Caller said she was Zainab. Failed ID&V (wrong DOB). Voice sounded young. Number withheld. Flagged."),
    ("delivery", "grainne", [], [], "Delivered to [[P:Ciarán]] at [[A:25 Botanic Avenue]] (neighbour). Customer informed by text."),
    ("ticket", "adaeze", [], [], "Hello, I'd like to pay this month's bill with my cousin [[P:Obinna]]'s card, [[C:3566 0020 2036 0505]]. He's fine with it, he owes me."),
    ("chat", "rafa", [], [], "Agent: Who's the authorized user you'd like to remove?\nCustomer: my brother [[P:Tony]], his line ends 0144\nAgent: Got it, removing [[P:Antonio Ortiz]] from your plan."),
    ("agent_note", "annie", [], [], "Bill sent to the wrong email ([[E:anniet@example.org]]) because of a typo by agent [[P:Priscilla]]. Customer's correct email confirmed: annie.tran@example.net. Privacy incident logged."),
    ("call_note", "hywel", [], [], "Hywel phoned re: the engineer visit. [[P:Meinir]] from the Cardiff exchange will attend on Thursday morning."),
    ("complaint", "priya", [], [], "Dear Northwind,\nI share the flat with [[P:Lucía Fernández]], who has her own contract with you. Twice now her bills have been put in an envelope with my name on it. Her email is [[E:lucia.fdez@example.com]] if you need to apologise to her too.\nPriya Raman"),
    ("ticket", "oksana", [], [], "hi my son [[P:Taras]] is going to uni in Sheffield, can he get a sim on my account? his address there will be [[A:Room 214, Endcliffe Village, Sheffield S10 3ED]]"),
    ("delivery", "zainab", [], [], "Recipient not home. Parcel left with [[P:MR KHAN]] ([[A:no. 110]])."),
    ("agent_note", "adaeze", [], [], "Refund of $89.99 issued to the original card. Customer advised 5-7 business days."),
    ("call_note", "rafa", [], [], "Spoke with [[P:Carmen]] from the customer's bank (fraud dept) - confirmed the disputed charge was on card ending 4421, which is Rafa's own card."),
    ("ticket", "connor", [], [], "My neighbour keeps getting my parcels. Her name is [[P:Deborah]] and she's at [[A:number 7]]. She's lovely but it's annoying. Can you add a note to my account please? Con"),
    ("chat", "grainne", [], [], "Customer: can you send the new sim to my mum's? she's at [[A:9 Glenravel Street, Ballymena BT43 5AJ]]\nAgent: No problem. Name for the parcel?\nCustomer: [[P:Máire Ní Bhriain]]"),
    ("agent_note", "hywel", [], [], "Customer's NI number on file (SX 44 91 26 B) checked against his HMRC letter. Also on the letter: spouse's NI no. [[I:WP 84 17 33 A]] - not stored."),
    ("call_note", "annie", [], [], "Customer's friend [[P:Jasmine]] called on her behalf (customer is deaf and normally uses text relay). Consent on file for [[P:Jasmine Osei]]."),
    ("delivery", "connor", [], [], "Delivered. Received by: CONNOR DOYLE. 08:12."),
    ("ticket", "rafa", [], [], "Please update billing: the new card is mine, the old card was my ex [[P:Camila]]'s. Remove her email [[E:camila.rv@example.com]] and her phone [[T:305.555.0182]] from the account too."),
    ("complaint", "adaeze", [], [], "I am disputing the early termination fee. I only moved because my landlord, [[P:Mr. Stavros Pappas]], sold the building. You can verify this with him at [[T:(773) 555-0107]]."),
    ("agent_note", "oksana", [], ["Dmytro Petrenko", "d.petrenko@example.net"], "Joint account holders: Oksana Petrenko and [[P:Dmytro Petrenko]]. Only Oksana has asked for a copy of her data. [[P:Dmytro]]'s email [[E:d.petrenko@example.net]] is not to be used for this request."),
    ("chat", "priya", [], [], "Customer: hi, this is priya raman, my account is NW204417\nAgent: Hi Priya, how can I help?\nCustomer: my flatmate [[P:jess]] wants to know if she can join my plan"),
    ("call_note", "zainab", [], [], "[[P:Asif]] (cust's husband) called. Not on the account. Advised cust must call. Cust later called and added [[P:Asif Hussain]] as authorised, mob [[T:07700 900845]]."),
    ("ticket", "grainne", [], [], "Hiya, my bill shows a call to [[T:+353 87 555 0193]] for 2 hours - that's my friend [[P:Niamh]] in Galway, fine, but why was it charged at the premium rate?"),
    ("delivery", "adaeze", [], [], "Left at leasing office. Signed by [[P:Keisha]] (front desk)."),
    ("agent_note", "priya", [], [], "Complaint ref 48213 closed by [[P:Oluwaseun]] in the Reading team. Customer accepted a £25 credit."),
    ("complaint", "hywel", [], [], "My neighbour [[P:Gwyneth Pugh]] of [[A:62 Cathedral Road, Cardiff CF11 9LL]] saw your courier throw the box over my gate. Her email is [[E:gwynpugh@example.org]] and she is happy to give a statement."),
    ("call_note", "adaeze", [], [], "[[P:Tunde]] called back for the customer - said Adaeze is at work and asked if the router fault is fixed. Not authorised; no details given."),
    ("agent_note", "annie", [], [], "[[P:Hoang]] and [[P:Mai]] (customer's parents) are listed as emergency contacts only. No authority over the account."),
    ("ticket", "connor", [], [], "[[P:Lorraine]] in your complaints team promised me a call back on Friday. Nobody called.\nConnor Doyle, 0161 496 0552"),
    ("chat", "connor", [], [], "Customer: can I transfer my upgrade to my mate [[P:Bex]]? she's with you already\nAgent: Yes, if she's the account holder. What's her account number?\nCustomer: [[N:NW206613]]"),
    ("agent_note", "rafa", [], [], "Refund to IBAN [[N:ES91 2100 0418 4502 0005 1332]] requested by customer - account holder is his father [[P:Ernesto Ortiz]] in Madrid. Declined: refunds go to the original payment method."),
    ("ticket", "oksana", [], [], "Good afternoon. Please can you confirm that my direct debit moved to the 28th as agreed? My number is 0113 496 0281. Thanks, Oksana"),
    ("call_note", "grainne", [], [], "Customer's partner [[P:Pádraig]] on speaker. Customer asked us to update the contact email to her own, grainne.nibhriain@example.org, and to remove [[E:padraig.k@example.ie]]."),
    ("delivery", "rafa", [], [], "Package left in mailroom. Mailroom clerk [[P:Y. Hernández]] signed. Tenant: R. Ortiz, unit per label."),
]  # fmt: skip


# Written after blind2 had been measured once (its misses were listed by mistake), and also before
# any change to the detector, so that one hand-written set stays unseen until the end.
BLIND3: list[Text] = [
    ("ticket", "tendai", [], [], "Hi, [[P:Rutendo]] here on behalf of my brother Tendai - he's abroad and his phone keeps getting blocked. Can you call him on the number on the account? Thanks"),
    ("call_note", "lars", [], [], "Customer called re: broadband outage in the building. [[P:Ingrid]] from [[A:flat 7]] has the same fault. Engineer booked for Tues."),
    ("delivery", "bia", [], [], "Delivered to side porch. Neighbor [[P:Mr. Figueiredo]] ([[A:#81]]) took photo for customer."),
    ("chat", "kenji", [], [], "Customer: my daughter [[P:hana]] dropped her phone in the lake lol\nAgent: Oh no! Is the line in your name?\nCustomer: yes, it's on my account NW310099. her number is [[T:(206) 555-0184]]"),
    ("complaint", "fatou", [], [], "Dear Sir or Madam,\n\nYour driver, who gave his name as [[P:Kwabena]], left my parcel with [[P:Mrs Adeyinka]] at [[A:29 Brixton Water Lane]] without asking me. [[P:Mrs Adeyinka]] is 84 and had to carry it round herself.\n\nFatou Diallo"),
    ("agent_note", "agnes", [], ["Robert McBride", "rab.mcbride@example.net"], "Customer's son [[P:Robert McBride]] holds power of attorney. Letters to him at [[A:3 Kelvin Court, Glasgow G12 0AB]]; email [[E:rab.mcbride@example.net]]."),
    ("ticket", "deandre", [], [], "Yo my girl [[P:Keyana]] put her card on my account by mistake, its the one ending 3339. Take it off please. Dre"),
    ("call_note", "tendai", [], [], "Outbound to 07700 900127. Customer confirmed the direct debit date change. Nothing else."),
    ("delivery", "lars", [], [], "No safe place. Left with [[P:ANNA SØRENSEN]] at [[A:Flat 10]], same building."),
    ("ticket", "bia", [], [], "Olá, my mother-in-law [[P:Conceição]] is visiting from Portugal and I'd like to add a travel SIM for her. Her email is [[E:conceicao.m@example.pt]]."),
    ("agent_note", "kenji", [], [], "Customer disputes charge. Says card [[C:5454 5454 5454 5454]] is his business partner's ([[P:Daniel Kaplan]]) and was used without permission."),
    ("complaint", "agnes", [], [], "I am 79 and I do not use the internet. Your man on the phone, [[P:Stuart]], told me to go online. My neighbour [[P:Moira]] had to help me write this. Agnes McBride, 14 Novar Drive"),
    ("chat", "fatou", [], [], "Agent: Hi, you're chatting with [[P:Ryan]]. How can I help?\nCustomer: Hi [[P:Ryan]], I'm Fatou. I've been charged twice for June.\nAgent: Sorry about that, Fatou. Let me check."),
    ("call_note", "deandre", [], [], "[[P:Marcus]] called claiming to be the account holder. Failed security. Number called from: [[T:(901) 555-0173]]. Notified DeAndre by text."),
    ("agent_note", "bia", [], [], "Account note: customer's ex-partner [[P:Thiago Ramos]] is not authorised. Do not discuss. Possible DV - handle with care."),
    ("delivery", "tendai", [], [], "Carded. Customer collected from depot with ID. Signed T MOYO."),
    ("ticket", "lars", [], [], "The router you sent went to [[A:Flat 19, 2 Quayside]] instead of flat 9. The guy there, [[P:Piotr]], says he handed it back to your driver but I haven't got it."),
    ("complaint", "kenji", [], [], "Your technician, [[P:Brent]], parked on my neighbor's lawn at [[A:5124 Roosevelt Way NE]] and left tire ruts. [[P:Mrs. Okafor]] is furious and blames me. Please contact her: [[E:b.okafor@example.com]]."),
    ("chat", "agnes", [], [], "Customer: this is nessie, can you tell me if my bill is paid\nAgent: Hello Agnes, yes, your June bill was paid on the 3rd.\nCustomer: oh lovely thank you hen"),
    ("agent_note", "fatou", [], [], "Refund to bank account requested. Sort code 60-83-71, account [[N:55779911]], account holder [[P:Aminata Diallo]] (customer's sister). Not processed - third-party account."),
    ("call_note", "tendai", [], [], "[[P:Nyasha]] rang - says she is Tendai's wife and wants the PUK code. Not on account. Refused. She'll ask him to add her."),
    ("ticket", "bia", [], [], "Hi! Please update my address from the old place. I now live at 77 Dorchester Ave, Unit 4, Boston MA 02127. My old roommate [[P:Jen]] still gets my mail at [[A:412 E Broadway, Boston, MA 02127]]."),
    ("delivery", "deandre", [], [], "Left w/ apt manager [[P:Lashonda]]. Recipient notified."),
    ("agent_note", "lars", [], [], "Customer wants his phone number ported from [[P:Sigrid Eriksen]]'s account (his wife's) to his own. PAC requested."),
    ("complaint", "tendai", [], [], "Dear Northwind,\nI wish to complain about your Huddersfield shop. The assistant, [[P:Callum]], gave my personal details to a man in the queue who said he was my cousin. He was not. I want to know what [[P:Callum]] told him.\nTendai Moyo"),
    ("call_note", "kenji", [], [], "Cust's wife [[P:Yuki]] called - consent on file. Asked about international roaming to Japan. Added the travel pass. Cust's email kwatanabe@example.com for the receipt."),
    ("ticket", "fatou", [], [], "Please remove [[T:07700 900 622]] from my account. It belonged to my nephew [[P:Ousmane]], who has now moved to France."),
    ("delivery", "agnes", [], [], "Delivered to 14 Novar Drive. Received by: [[P:J. Reid]] (carer)."),
    ("chat", "deandre", [], [], "Customer: whats the balance\nAgent ([[P:Tiffany]]): Hi! Your balance is $64.20, due on the 15th.\nCustomer: ok bet"),
    ("agent_note", "tendai", [], [], "Identity check: passport and a bank statement. The statement also shows a payment from [[P:T. Chikwanha]]; not relevant, not kept."),
    ("ticket", "kenji", [], [], "Hello. My father-in-law [[P:Haruto Sato]] wants to switch to your service. Can he use my referral code? His number is [[T:425-555-0131]]."),
    ("call_note", "bia", [], [], "Customer said her upstairs neighbor [[P:Deb]] has been using her wifi. Advised to change the password. Sent instructions to bia.nunes@example.org."),
    ("complaint", "lars", [], [], "Hei. I want to complain about [[P:Bjørn]] in your Newcastle store. He was rude and refused to help with my upgrade. Lars Eriksen, Flat 9, 2 Quayside"),
    ("delivery", "fatou", [], [], "Attempted delivery 13:40. No answer. Left card. Neighbour at [[A:no. 33]] refused."),
    ("agent_note", "deandre", [], [], "Account holder's mother [[P:Gloria Wallace]] listed as secondary contact, [[T:(901) 555-0102]]. Confirmed with DeAndre on call."),
    ("ticket", "agnes", [], [], "My granddaughter [[P:Kirsty]] is writing this for me. I want to change to a cheaper plan. My phone number is 0141 496 0390. Thank you, Agnes"),
    ("chat", "tendai", [], [], "Customer: Hi, is [[P:Blessing]] working today? She helped me last week\nAgent: [[P:Blessing]] is off today, I'm [[P:Harvey]]. What can I do for you?"),
    ("call_note", "lars", [], [], "Spoke to Lars. He has moved in with partner [[P:Ewan Scott]] at [[A:17 Jesmond Road, Newcastle NE2 1NL]]. Wants the bills to go there from next month."),
    ("agent_note", "bia", ["8812003"], [], "Chargeback on order 8812003. Cardholder [[P:Rosa Nunes]] (customer's mother) says she didn't authorise. Card ending 1180."),
    ("ticket", "deandre", [], [], "I got a text meant for someone named [[P:Jerome Tate]] about his past-due bill. The text said call [[T:(901) 555-0166]]. Fix your system."),
    ("delivery", "kenji", [], [], "Delivered 9:51 AM. Left at front door. Photo on file. Driver: [[P:Marco]]"),
    ("complaint", "fatou", [], [], "I was sent somebody else's bill. It was for [[P:Mr Emeka Obi]] at [[A:31B Brixton Water Lane]] and showed his phone number, [[T:020 7946 0258]], and his email [[E:emeka.obi@example.co.uk]]. This is a serious data breach."),
    ("agent_note", "agnes", [], [], "Vulnerability flag added at the customer's request (hearing loss). Prefers letters. No third parties."),
    ("call_note", "deandre", ["7720318"], [], "Customer reports his cousin [[P:jamal]] used his account to order an iPhone. Order 7720318 cancelled. Fraud ref FR-2291."),
    ("ticket", "tendai", [], [], "Could you send my new SIM to my work address please: c/o [[P:Priya Desai]], Desai & Moyo Accountants, [[A:8 Market Street, Huddersfield HD1 2ES]]."),
    ("chat", "bia", [], [], "Agent: Can I ask who's on the line with you?\nCustomer: my husband [[P:Rui]], he's on speaker\nAgent: Hi [[P:Rui]]! For security I'll need Beatriz to confirm she's happy for you to listen in."),
    ("delivery", "lars", [], [], "Parcel handed to building concierge ([[P:Stephen]]). Customer informed."),
    ("agent_note", "kenji", [], [], "IBAN provided for the refund: [[N:NL91 ABNA 0417 1643 00]], holder [[P:M. de Vries]] (customer's friend in Amsterdam). Refund sent to original card instead."),
    ("ticket", "fatou", [], [], "Hello, my landlord [[P:Mr Patel]] needs a letter confirming I have broadband at this address for his insurance. Can you send one to me at fatou.diallo@example.org? Thanks"),
    ("call_note", "agnes", [], [], "[[P:Shona]] from Glasgow social work called re: customer's bill arrears. Customer consent confirmed on the call. Payment plan set up."),
    ("complaint", "deandre", [], [], "Your store on Union Ave told me my line was active but it wasn't. The rep [[P:Brittany]] had no idea what she was doing. I missed a job interview call from [[T:901-555-0149]]."),
    ("agent_note", "tendai", [], [], "Porting request in from [[P:Farai Moyo]] for [[T:07700 900 991]] - not on this account. Rejected."),
    ("delivery", "bia", [], [], "Signed for by [[P:R NUNES]]. 77 Dorchester Ave Unit 4."),
    ("ticket", "lars", [], [], "Please can you change the name on my second line to [[P:Maja Lindqvist]]? She's my stepdaughter and will use it from now on. Her email is [[E:maja.lq@example.se]]."),
    ("call_note", "fatou", [], [], "Customer called. Mentioned her daughter [[P:Awa]] set up the online account for her. Reset password; reset link to fatou.diallo@example.org."),
    ("agent_note", "deandre", [], [], "Complaint closed by [[P:Hector]] (team lead). Customer accepted $30 credit. Follow-up not needed."),
    ("ticket", "agnes", [], [], "Dear Sirs, please stop sending post for [[P:Margaret Doherty]] to my address. She lived here before me and passed away some years ago. Agnes McBride"),
    ("chat", "kenji", [], [], "Customer: can u send the receipt to my assistant instead? [[E:sarah.lindgren@example.com]]\nAgent: Sure, I'll send it to [[P:Sarah]] now."),
    ("delivery", "tendai", [], [], "Left in safe place (shed). Neighbour [[P:Ian]] at [[A:number 46]] aware."),
    ("call_note", "bia", [], [], "Cust asked to cancel the line for her late father [[P:Joaquim Nunes]], [[T:(617) 555-0198]]. Death cert needed. Sent bereavement pack."),
]  # fmt: skip
# Written after blind2 and blind3 had been measured with the first round of changes, before their
# misses were looked at and before any further change: the set for the second round.
BLIND4: list[Text] = [
    ("ticket", "mehmet", [], [], "Hello, my brother-in-law [[P:Emre]] is using the second SIM on my account and he has gone over his data again. Can you put a cap on that line? Mehmet"),
    ("call_note", "siobhan", [], [], "Cust rang re: bill. Says her da [[P:Seamus]] rang last week and was told the wrong amount. Seamus not on acct. Apologised, amount confirmed to cust only."),
    ("delivery", "lakshmi", [], [], "Package delivered 2:14 PM. Handed to neighbor in [[A:apt 3C]] ([[P:Mr. Huang]]). Customer notified."),
    ("chat", "owen", [], [], "Customer: Hi, I need to change the email on my account. [[E:o.harrington77@example.co.uk]] was my old work one and my ex [[P:Becky]] still has access to it\nAgent: I can change that now. What's the new address?\nCustomer: owen.harrington@example.com"),
    ("complaint", "marisa", [], [], "To Northwind customer care,\n\nOn May 2 your technician [[P:Dale]] came to install my internet. He was friendly but left his ladder at my neighbor [[P:Mrs. Pruitt]]'s house at [[A:4106 Speedway]] and never came back for it. She keeps asking me about it. Her phone is [[T:(512) 555-0140]].\n\nMarisa Calderón"),
    ("agent_note", "kofi", [], [], "Customer's wife [[P:Abena Mensah]] added as a named contact. Password given to both. Her mobile [[T:07700 900 437]]."),
    ("ticket", "mehmet", [], [], "my parcel was delivered to [[A:25 Green Lanes]], the kebab shop next door. the owner [[P:Hasan]] says he gave it to a courier. i never got it"),
    ("call_note", "lakshmi", [], [], "Inbound from [[P:Arjun Subramanian]] (cust's son) - not authorised. Advised cust to call. Cust called back 20 mins later, added [[P:Arjun]] as authorized user."),
    ("delivery", "owen", [], [], "Carded - no answer at Flat 1. Neighbour in [[A:Flat 2]] ([[P:K. Oduya]]) declined to accept."),
    ("ticket", "siobhan", [], [], "Could you please stop emailing [[E:gallagher.fam@example.com]]? That's my mum's address, I must have typed it by mistake. Mine is siobhan.g@example.net. Thanks, Siobhan"),
    ("agent_note", "marisa", [], [], "Payment of $120 came from a card in the name of [[P:Luz Calderón]] ending 6624. Customer confirms it is her aunt's card, used with permission."),
    ("chat", "kofi", [], [], "[11:02] [[P:Agnieszka]] (Northwind): Good morning, how can I help?\n[11:03] Kofi: my router keeps dropping\n[11:03] [[P:Agnieszka]] (Northwind): Sorry to hear that. Let me run a line test."),
    ("complaint", "owen", [], [], "Sir/Madam, I have been passed between your staff five times. First [[P:Jade]], then [[P:Connor]] in billing, then a man who would not give his name. I want one person to own my complaint. Owen Harrington"),
    ("call_note", "mehmet", [], [], "Spoke to cust. He confirmed his new address is 23 Green Lanes, N4 1HJ. Previous address removed."),
    ("agent_note", "siobhan", [], [], "Direct debit set up from account [[N:40998812]] (sort code 95-01-20), account holder [[P:Declan Gallagher]], customer's husband. Signed mandate on file."),
    ("delivery", "marisa", [], [], "Left at front desk, signed by [[P:DOMINGUEZ]]."),
    ("ticket", "lakshmi", [], [], "Hi team, my husband [[P:Venkat]] will be calling about the upgrade. He's on my account as an authorized user. His cell is [[T:919-555-0108]]."),
    ("chat", "mehmet", [], [], "Customer: salam, i want to add my cousin [[P:yusuf]] to my family plan\nAgent: Sure! I'll need his email address\nCustomer: [[E:yusuf.kaya@example.com]]"),
    ("call_note", "owen", [], [], "Owen called from 01632 960781. Wants the bill split with flatmate [[P:Tom Ashworth]]; explained we can't split one account. Suggested separate accounts."),
    ("agent_note", "kofi", [], [], "Fraud check: SIM swap attempted in the Walsall store by a man giving the name [[P:Kwame Mensah]]. ID did not match. Customer informed, password added."),
    ("complaint", "siobhan", [], [], "Dear Sir or Madam,\nI am writing about the engineer who came on 12 March, [[P:Liam]]. He parked across my neighbour's driveway at [[A:7 Ormeau Road]] for three hours and [[P:Mr Agnew]] couldn't get his car out for a hospital appointment.\nSiobhan Gallagher"),
    ("delivery", "lakshmi", [], [], "Delivered. Left in mailbox. 610 Ninth St."),
    ("ticket", "marisa", [], [], "hola, quick question: can my daughter [[P:Valentina]] keep her number if she moves to her own plan? her number is [[T:512-555-0186]]"),
    ("agent_note", "owen", [], [], "Customer disputes roaming charges from Spain. Says his phone was lent to a friend, [[P:Euan Baxter]], for the week. Charges stand."),
    ("chat", "siobhan", [], [], "Agent: Thanks for holding. Is that [[P:Mrs. Doherty]] I'm speaking with?\nCustomer: no, it's Siobhan Gallagher, the account holder\nAgent: Apologies! I had the wrong note open."),
    ("call_note", "kofi", [], [], "Cust asked for paper bills to go to his accountant, [[P:Mrs Ama Owusu]], [[A:14 Newhall Street, Birmingham B3 3PU]]. Needs written authority first."),
    ("delivery", "mehmet", [], [], "Signed for by [[P:S. Demir]] at 09:40."),
    ("ticket", "lakshmi", [], [], "Good evening, I see a charge for an international call to [[T:+91 98450 12345]]. That was to my mother [[P:Kamala]] in Chennai, but my plan includes international calls. Please refund."),
    ("agent_note", "marisa", [], [], "Customer asked to remove authorized user [[P:Gabriel Ruiz]] (ex-boyfriend). Done. Customer also changed her PIN."),
    ("complaint", "kofi", [], [], "I want to complain about the shop on Soho Road. The lady at the till, [[P:Sandra]], told my son [[P:Kojo]] that he could not pay my bill in cash. Since when?\nKofi Mensah"),
    ("call_note", "siobhan", [], [], "Outbound call re: missed payment. Spoke to a man who said he was the lodger, [[P:Niall]]. Did not discuss. Left message for cust to call back."),
    ("chat", "owen", [], [], "Customer: Can you tell me who [[P:Rhys]] is? There's a note on my account saying [[P:Rhys]] called about it\nAgent: I'm sorry, I can see the note but I can't share details of the caller.\nCustomer: fine"),
    ("ticket", "mehmet", [], [], "Please send the new router to my work: [[A:Unit 4, 19 Seven Sisters Road, London N7 6AA]]. Reception is run by [[P:Zeynep]], she'll sign for it."),
    ("delivery", "marisa", [], [], "Delivered 11:52 AM, handed to resident. Signed: M CALDERON."),
    ("agent_note", "lakshmi", [], [], "Refund declined: customer asked for it to go to her brother's card [[C:3056 9309 0259 04]]. Refund can only go to the original card."),
    ("call_note", "kofi", [], [], "Kofi rang, said his neighbour [[P:Mr Bello]] at [[A:no. 79]] keeps getting his letters. Checked address on file - correct. Raised with Royal Mail."),
    ("ticket", "owen", [], [], "Cheers for sorting the refund. Could you also send a copy of the letter to my dad, [[P:Richard Harrington]], at [[A:2 The Paddocks, Ludlow SY8 1LR]]? He pays half the bill."),
    ("chat", "lakshmi", [], [], "Agent ([[P:Trevor]]): Thanks for waiting, Lakshmi. I've reset your voicemail PIN.\nCustomer: Thanks [[P:Trevor]]!"),
    ("complaint", "mehmet", [], [], "Your driver left my parcel with somebody at [[A:no. 21]] who I have never met, she said her name was [[P:Gül]]. Then she said she never got it. I want my money back."),
    ("agent_note", "siobhan", [], [], "Name on account changed from Siobhan McCann to Siobhan Gallagher after marriage. Marriage certificate seen."),
    ("call_note", "marisa", [], [], "Caller: [[P:Hector Calderón]], says he's Mari's father. Asked for her account balance. Refused, not authorized."),
    ("delivery", "kofi", [], [], "Attempted delivery. Left with neighbour [[P:Precious]] at [[A:number 75]]. Card through door."),
    ("ticket", "siobhan", [], [], "Please can the bills be addressed to both of us? Siobhan Gallagher and [[P:Declan Gallagher]]. We're both on the tenancy now."),
    ("agent_note", "owen", [], [], "Complaint from third party: [[P:Mrs Pauline Fenwick]] says customer's dog barks during engineer visits. Not our matter, closed. Her contact: [[E:pfenwick@example.org]]."),
    ("chat", "marisa", [], [], "Customer: my husband [[P:Joaquín]] wants his own line\nAgent: Great, he can sign up online or in store\nCustomer: ok gracias"),
    ("call_note", "lakshmi", [], [], "Customer reports her identity was used by a former roommate, [[P:Brittany Cole]], to open a line at [[A:228 Hillsborough St, Raleigh, NC 27603]]. Fraud case opened."),
    ("ticket", "kofi", [], [], "Good afternoon. My account number is NW207390. Please move my direct debit to the 1st of the month. Regards, Kofi"),
    ("agent_note", "mehmet", [], [], "NI number provided by the customer matched. A second NI number on the scan ([[I:TN 31 77 48 C]]) belongs to his wife, not recorded."),
    ("complaint", "lakshmi", [], [], "I am extremely unhappy with [[P:Kyle]] at your Durham store who told me I had to pay $40 to transfer my own number."),
    ("delivery", "siobhan", [], [], "Left with [[P:Bernadette]] at [[A:No 3]], as per customer's delivery preferences."),
    ("call_note", "owen", [], [], "[[P:Priti]] from the Shrewsbury store called to confirm the cust's handset repair is ready for collection."),
    ("ticket", "marisa", [], [], "Can you send me a copy of the contract? Also my mom, [[P:Rosario Calderón]], wants to know if she can transfer her line to my account. Her account number is [[N:NW311402]]."),
    ("chat", "kofi", [], [], "Customer: can i pay with my brother's card?\nAgent: Only if he's present and agrees. Is he with you?\nCustomer: yes, [[P:Yaw]] is here"),
    ("agent_note", "siobhan", [], [], "Customer's son [[P:Oisín]] (age 16) has a line on her account. Spending cap of £20 applied at customer's request."),
    ("call_note", "mehmet", [], [], "Call from [[P:DC Harris]], Met Police, re: stolen handset reported by customer. Crime ref given. Passed to the law enforcement liaison team."),
    ("delivery", "owen", [], [], "Parcel too large for letterbox. Taken to [[A:Flat 3]], signed [[P:A.Mistry]]."),
    ("ticket", "lakshmi", [], [], "Please cancel the line ending 0108. It was my husband's but he passed away last month. His name was [[P:Venkatesh Subramanian]]."),
    ("complaint", "owen", [], [], "Complaint: your agent [[P:Gemma]] hung up on me twice. I was only asking why I was charged for a second line that belongs to [[P:Marcus Bell]], who I have never heard of."),
    ("agent_note", "kofi", [], [], "Bill sent to [[A:77 Soho Hill, Birmingham B19 1AG]] in error (typo in the address). Correct address is 77 Soho Road, B21 9SP. Incident logged."),
    ("chat", "mehmet", [], [], "Agent: Who would you like to add as a named contact?\nCustomer: my wife, [[P:Elif Yilmaz]], her number [[T:07700 900 816]]\nAgent: Done!"),
]  # fmt: skip
SETS = {"blind2": BLIND2, "blind3": BLIND3, "blind4": BLIND4}


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
    for n, (kind, who, refs, others, marked) in enumerate(texts, start=1):
        subject = {key: list(values) for key, values in SUBJECTS[who].items()}
        subject["accounts"] = [*subject["accounts"], *refs]
        text, spans = parse(marked)
        result.append({"id": f"{split}-{n:03d}", "split": split, "kind": kind, "subject": subject,
                       "others": others, "text": text, "spans": spans})  # fmt: skip
    return result


def main() -> None:
    rows = [row for split, texts in SETS.items() for row in lines(split, texts)]
    assert len({r["text"] for r in rows}) == len(rows), "duplicate text"
    with open(HERE / "blind.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    for split in SETS:
        mine = [r for r in rows if r["split"] == split]
        print(f"{split}: {len(mine)} texts, {sum(len(r['spans']) for r in mine)} labelled spans")


if __name__ == "__main__":
    main()
