"""The request type: a table of phrases with weights, in the words people actually write.

Word boundaries, case-folded, so a privacy officer can read and amend it. The highest score
wins; the others that reach the threshold are kept as ``also_requested`` for a human to see.
When no phrase is recognised, the trained classifier (``intake.training``) gives a second
opinion. A type a regime does not know is fitted to its nearest one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dsar.model import Regime, RequestType
from intake.training.classifier import second_opinion
from intake.typos import repair_spelling


def ask_second_opinion(
    text: str, scores: dict[RequestType, tuple[int, list[str]]], regime: Regime | None
) -> tuple[RequestType | None, str]:
    """When no rule recognised the request: the statistical model's type, if it is sure enough
    (intake/training/classifier.py), as the regime names it; else None and why."""
    opinion = second_opinion(text)
    if opinion is None:
        return None, "no request wording recognised"
    if opinion.request_type is None or not opinion.decides:
        return None, f"no request wording recognised; {opinion.describe()}"
    fitted_type, _, fitted = fit_type_to_regime(opinion.request_type, [], scores, regime)
    chosen = fitted_type or opinion.request_type
    return chosen, f"type {chosen.value} ({opinion.describe()}{f'; {fitted}' if fitted else ''})"


@dataclass(frozen=True)
class Rule:
    label: str  # what a privacy officer would call it; reasons quote it
    target: RequestType
    weight: int
    pattern: re.Pattern[str]


def _r(label: str, target: RequestType, weight: int, *alternatives: str) -> Rule:
    """One row of the table: a label for reasons, the request type, a weight, phrasings."""
    return Rule(label, target, weight, re.compile("|".join(alternatives), re.IGNORECASE))


ACC, ERA, REC = RequestType.ACCESS, RequestType.ERASURE, RequestType.RECTIFICATION


POR, RES, OBJ = RequestType.PORTABILITY, RequestType.RESTRICTION, RequestType.OBJECTION


OPT, LIM = RequestType.OPT_OUT_SALE_SHARING, RequestType.LIMIT_SENSITIVE


_DATA = (
    r"(?:personal |personel |persnal |pesonal )?"
    r"(?:data|info|information|informations|details|records|file|files)"
)


_ME = r"(?:about|on|of|for) me\b"


_ERASE_VERBS = (
    r"delete|deleted|deleting|erase|erased|erasing|remove|removed|removing|wipe|wiped|purge|purged|destroy"
)


_PROVIDER = r"(?:provider|company|service|app|supplier|network|bank|controller|operator|platform|carrier)"


TYPE_RULES: list[Rule] = [
    # access: GDPR Art 15, DPA 2018 s.45, CCPA right to know, LGPD Art 18 I-II, PIPEDA 4.9
    _r("subject access request", ACC, 5, r"\b(?:data )?subject access(?: request)?\b", r"\bd?sar\b"),
    _r(
        "right of access",
        ACC,
        4,
        r"\bright (?:of|to) access\b",
        r"\baccess request\b",
        r"\brequest(?:ing)? access\b",
    ),
    _r("copy of my data", ACC, 4, rf"\bcop(?:y|ies|py|ie) of (?:all |any )?(?:of )?(?:my|the) {_DATA}"),
    _r("access to my data", ACC, 4, rf"\baccess to (?:all )?(?:of )?(?:my|the) {_DATA}"),
    _r(
        "what data do you hold",
        ACC,
        4,
        r"\b(?:what|which) (?:personal |kind of |sort of |types? of )?"
        r"(?:data|info|information|details|records)\b"
        r"(?:\W+\w+){0,4}?\W+(?:hold|held|have|got|keep|kept|store|stored|collect|collected|process|processed)\b",
        r"\bwhat (?:do )?you know about me\b",
        rf"\b(?:tell|show|let) me (?:know )?(?:what|everything|all)\b(?:\W+\w+){0, 4}?\W+{_ME}",
    ),
    _r(
        "see my file",
        ACC,
        3,
        rf"\b(?:see|view|inspect|look at|obtain|receive|download) (?:all )?(?:of )?(?:my|the) {_DATA}",
    ),
    _r(
        "held about me",
        ACC,
        2,
        r"\b(?:hold|held|holding|have|has|got|keep|kept|collected|gathered|stored|process|processed|processing"
        rf"|use|used) {_ME}",
        r"\bme concernant\b",
    ),
    _r(
        "where it came from, who it went to",
        ACC,
        2,
        r"\bwhere you got (?:it|them|my \w+) from\b",
        r"\bwho you(?:'ve| have)? (?:shared|disclosed|given|passed|sold) (?:it|them|my \w+)\b",
        r"\brequest(?:ing)?:? (?:a copy of |copies of )?(?:all )?(?:of )?(?:my |the )?"
        r"personal (?:data|information)\b",
    ),
    _r("Article 15", ACC, 5, r"\bart(?:icle|\.)? ?15\b", r"\bsection (?:7|45) of the data protection act"),
    _r(
        "right to know",
        ACC,
        4,
        r"\bright to know\b",
        r"\brequest to know\b",
        r"\bcategories of personal information\b",
        r"\bspecific pieces of personal information\b",
    ),
    _r("confirm whether you process", ACC, 3, r"\bconfirm (?:whether|if)(?: or not)? you (?:are )?process"),
    _r(
        "send me my data",
        ACC,
        2,
        r"\b(?:send|give|provide) me (?:with )?(?:a copy of |a list of )?(?:all )?(?:of )?(?:the |my )?"
        + _DATA,
    ),
    _r(
        "access (Portuguese, Spanish, French, German)",
        ACC,
        4,
        r"\bacesso (?:a|aos|à|às) (?:meus |minhas )?(?:dados|informa)",
        r"confirma[çc][ãa]o da exist[êe]ncia",
        r"\bquais (?:s[ãa]o )?(?:os )?(?:meus )?dados\b",
        r"\bacceso a mis datos\b",
        r"\bqu[ée] datos\b",
        r"droit d'acc[èe]s",
        r"acc[èe]s [àa] (?:mes|toutes mes) (?:donn[ée]es|renseignements)",
        r"\bcopie (?:de|des) (?:toutes )?(?:mes|les) (?:donn[ée]es|informations|renseignements)",
        r"\bauskunft",
        r"kopie meiner",
    ),
    # erasure: GDPR Art 17, CCPA right to delete, LGPD Art 18 IV and VI
    _r("right to be forgotten", ERA, 5, r"\bright to (?:be forgotten|erasure|deletion|delete)\b"),
    _r("Article 17", ERA, 5, r"\bart(?:icle|\.|[íi]culo)? ?17\b"),
    _r(
        "deletion request",
        ERA,
        4,
        r"\b(?:request(?:ing)?|requests) to (?:delete|erase)\b",
        r"\b(?:deletion|erasure) request\b",
        r"\brequest (?:for|of) (?:the )?(?:deletion|erasure)\b",
    ),
    _r(
        "delete my data or account",
        ERA,
        4,
        rf"\b(?:{_ERASE_VERBS}|get rid of)\b(?:\W+\w+){{0,4}}?\W+"
        r"(?:data|information|info|details|account|accounts|records|profile|everything|database|databases"
        r"|systems|me from)\b",
        rf"\b(?:data|information|info|details|account|records|profile)\b(?:\W+\w+){{0,2}}?\W+(?:{_ERASE_VERBS})\b",
    ),
    _r(
        "delete it",
        ERA,
        4,
        r"\b(?:want|like|need|have|get) (?:them|it|this|those|these|all of it|everything|all that) (?:\w+ )?"
        r"(?:erased|deleted|removed|wiped|destroyed)\b",
    ),
    _r("erase or delete", ERA, 1, r"\b(?:erase|erasure|deletion|delete|forget me|get rid of)\b"),
    _r("close my account", ERA, 2, r"\b(?:close|cancel|terminate) (?:down )?(?:my|our|the) account\b"),
    _r(
        "erasure (Portuguese, Spanish, French, German)",
        ERA,
        4,
        r"\bexclu(?:ir|s[ãa]o|am|a|irem)\b",
        r"\belimina(?:r|[çc][ãa]o|ci[óo]n)\b",
        r"\bapag(?:ar|uem|ue)\b",
        r"\bsupresi[óo]n\b",
        r"\bsuprim(?:ir|an)\b",
        r"\bborr(?:ar|en)\b",
        r"\bsuppression\b",
        r"\bsupprimer\b",
        r"\beffac(?:er|ement)\b",
        r"droit [àa] l'oubli",
        r"\bl[öo]sch(?:en|ung)\b",
        r"recht auf vergessenwerden",
    ),
    # rectification: GDPR Art 16, CCPA right to correct, LGPD Art 18 III
    _r(
        "Article 16 rectification",
        REC,
        5,
        r"\bright to (?:rectification|correct|correction)\b",
        r"\bart(?:icle|\.)? ?16\b",
    ),
    _r(
        "rectify",
        REC,
        4,
        r"\brectif(?:y|ied|ication)\b",
        r"\brequest to correct\b",
        r"\bcorrection request\b",
        r"\brequest for (?:a )?correction\b",
        r"\bberichtig",
        r"\bcorre[çc][ãa]o\b",
    ),
    _r(
        "correct my details",
        REC,
        3,
        r"\b(?:correct|correcting|update|updating|amend|amending|change|changing|fix|fixing|corrigir|atualizar)"
        r"\b(?:\W+\w+){0,4}?\W+(?:address|name|surname|spelling|spelt|date of birth|birth date|dob|birthday"
        r"|email address|phone number|mobile number|details|record|records|information|endere[çc]o)\b",
        r"\b(?:name|surname|address|email address|number) (?:has |have )?changed\b",
        r"\bchange of (?:name|surname|address)\b",
        r"\bname change\b",
    ),
    _r(
        "put it right",
        REC,
        3,
        r"\bput (?:it|this|that|them) right\b",
        r"\bset (?:it|this|the record) straight\b",
        r"\b(?:be |been |get |got )?(?:corrected|amended|rectified)\b",
    ),
    _r(
        "recorded as", REC, 2, r"\b(?:recorded|listed|shown|registered|spelt|spelled) as\b", r"\binstead of\b"
    ),
    _r(
        "inaccurate",
        REC,
        2,
        r"\b(?:inaccurate|incorrect|wrong|misspel\w*|mis-spel\w*|out of date|outdated|spelt wrong"
        r"|spelled wrong|not accurate|errone\w+|got married)\b",
    ),
    # portability: GDPR Art 20, LGPD Art 18 V
    _r(
        "data portability",
        POR,
        5,
        r"\bportab(?:ility|le)\b",
        r"\bart(?:icle|\.)? ?20\b",
        r"portabilidade",
        r"portabilit[ée]",
        r"daten[üu]bertragbarkeit",
    ),
    _r(
        "transfer to another provider",
        POR,
        4,
        r"\b(?:transfer|transferred|move|moving|port|porting|send|transmit|give|take)\b(?:\W+\w+){0,5}?\W+"
        rf"(?:to|over to) (?:my |a |the )?(?:new|another|other|different) {_PROVIDER}",
    ),
    _r(
        "machine-readable export",
        POR,
        3,
        r"\bmachine[- ]readable\b",
        r"\bstructured,? commonly used\b",
        r"\bexport (?:all )?(?:of )?(?:my|our)\b",
        r"\b(?:csv|json|spreadsheet|excel)\b",
    ),
    # restriction: GDPR Art 18
    _r(
        "restrict processing",
        RES,
        4,
        r"\brestrict(?:ed|ing|ion)?\b(?:\W+\w+){0,3}?\W+(?:processing|use|using)\b",
        r"\brestriction\b",
        r"\bart(?:icle|\.)? ?18\b(?!\W*(?:da |of the |of )?(?:lgpd|lei))",
        r"limitation du traitement",
        r"einschr[äa]nkung",
    ),
    _r(
        "stop processing",
        RES,
        3,
        r"\b(?:stop|cease|suspend|pause|freeze|block)(?:\W+\w+){0,1}?\W+(?:processing|using|use)\b",
        r"\bfreeze (?:my|the|all) (?:personal )?(?:data|information|details|records)\b",
    ),
    _r(
        "limit how my data is used",
        RES,
        3,
        r"\blimit\b(?:\W+\w+){0,4}?\W+(?:used|use|using|processed|processing)\b(?!\W+of (?:my )?sensitive)",
    ),
    _r("restrict", RES, 1, r"\brestrict\w*\b", r"\bfreeze\b"),
    _r(
        "while accuracy is checked, legal claims",
        RES,
        2,
        r"\blegal claims?\b",
        r"\bwhile you (?:check|verify|investigate|look into)\b",
        r"\bcontest\w* the accuracy",
    ),
    # objection: GDPR Art 21 (direct marketing: absolute, 21(2)-(3))
    _r(
        "right to object",
        OBJ,
        4,
        r"\bright to object\b",
        r"\bart(?:icle|\.)? ?21\b",
        r"\bobject(?:ing)? to\b",
        r"\bobjection\b",
        r"\bopposition\b",
        r"\bm'oppose\b",
        r"\boposi[çc][ãa]o\b",
        r"\bwiderspr(?:uch|eche)\b",
    ),
    _r(
        "direct marketing",
        OBJ,
        3,
        r"\bdirect marketing\b",
        r"\b(?:marketing|sales) (?:e-?mails?|calls?|texts?|messages?|communications?|lists?|material|sms)\b",
        r"\bpromotional\b",
        r"\bnewsletters?\b",
        r"\bunsubscribe\b",
        r"\btake me off\b",
        r"\bmailing lists?\b",
        r"\bcold call\w*",
        r"\bstop (?:sending|emailing|calling|texting|contacting|messaging|ringing|phoning)\b",
    ),
    _r(
        "opt out of marketing",
        OBJ,
        4,
        r"\bopt(?:ed|ing)?[- ]?out of (?:all |any |your )?(?:marketing|e-?mails|newsletters|communications"
        r"|promotions|offers|texts|calls)",
    ),
    _r("marketing, profiling", OBJ, 2, r"\bprofiling\b", r"\blegitimate interests?\b", r"\bmarketing\b"),
    # opt-out of sale or sharing: CCPA 1798.120, VCDPA, CPA, CTDPA, UCPA
    _r(
        "do not sell or share",
        OPT,
        5,
        r"\bdo not (?:sell|share)\b",
        r"\bdon't (?:sell|share)\b",
        r"\bstop (?:selling|sharing)\b",
        r"\b(?:sale|selling|sell) (?:and|or|/) (?:shar\w+)\b",
        r"\bsale of (?:my |our )?(?:personal )?(?:data|info)",
        r"\bselling (?:of )?(?:my |our )?(?:personal )?(?:data|info)",
    ),
    _r(
        "targeted advertising",
        OPT,
        4,
        r"\btargeted (?:advertising|ads|advertisements)\b",
        r"\bcross[- ]context behaviou?ral\b",
        r"\bsharing (?:of )?my (?:personal )?(?:data|info)",
        r"\bshar(?:e|ing)\b(?:\W+\w+){0,4}?\W+(?:for|with) (?:\w+ )?(?:advertis\w+|advertisers|marketers)",
    ),
    _r("opt out", OPT, 2, r"\bopt(?:ed|ing)?[- ]?out\b"),
    _r("global privacy control", OPT, 3, r"\bglobal privacy control\b", r"\bgpc\b"),
    # limit the use of sensitive personal information: CCPA 1798.121
    _r(
        "limit use of sensitive information",
        LIM,
        6,
        r"\blimit (?:the )?(?:use|using|usage)(?: and disclosure)? of (?:my )?sensitive",
    ),
    _r("sensitive personal information", LIM, 3, r"\bsensitive (?:personal )?(?:information|data|info)\b"),
    _r(
        "sensitive categories",
        LIM,
        1,
        r"\bprecise geolocation\b",
        r"\bhealth (?:information|data|info)\b",
        r"\bbiometric\b",
        r"\bsexual orientation\b",
        r"\bsocial security number\b",
        r"\bunion membership\b",
        r"\breligious beliefs\b",
    ),
]


#: Verbs for what an organisation does with data, in every form people write them.
_HOLD = (
    r"(?:hold|holds|held|holding|have|has|having|had|got|keep|keeps|kept|keeping|store|stores|stored"
    r"|storing|collect|collects|collected|collecting|process|processes|processed|processing|retain"
    r"|retains|retained|retaining|maintain|maintains|maintained|possess|possesses|gather|gathered"
    r"|record|records|recorded|obtain|obtained|obtaining|receive|received|acquire|acquired|source"
    r"|sourced|get|gets|getting|saved|save|saves|treat|treating|treated|handle|handling|handled)"
)


_DATA_WORDS = r"(?:data|info|information|details|records|files?|particulars)"


_MATERIAL = (
    r"(?:e-?mails?|letters?|notes|recordings?|calls?|correspondence|statements?|footage|photos?|images?"
    r"|contracts?|communications?|messages?|chats?|logs?|history|everything|anything|transcripts?)"
)


_PLAIN_ERASE = r"(?:delete|erase|remove|wipe|purge|destroy|scrub|expunge|get rid of|dispose of)"


_CONTACT_KINDS = (
    r"(?:calls?|phone calls|e-?mails?|texts?|sms|messages?|marketing|offers|promotions|letters|junk"
    r"|spam|leaflets|adverts?|advertising|newsletters?|contact|mail|post)"
)


#: The same rights in the wider phrasing people use: inflections, "it"/"them" for the data,
#: what they want to see rather than "data", other European languages. Read after misspelt
#: request words are repaired (intake/typos.py).
WIDER_TYPE_RULES: list[Rule] = [
    # access
    _r(
        "what data do you hold (any wording)",
        ACC,
        4,
        rf"\b(?:what|which|whatever)\b(?:\W+\w+){{0,3}}?\W+{_DATA_WORDS}\b(?:\W+\w+){{0,6}}?\W+{_HOLD}\b",
        rf"\b(?:what|which) (?:\w+ )?{_DATA_WORDS} (?:is|are) (?:being )?(?:held|kept|stored|processed)\b",
        r"\bwhat (?:have|do|did) you (?:got|have|hold|keep|know|store|collect)\b",
        r"\bwhat (?:\w+ ){0,3}?(?:on file|on record|on your (?:system|systems|records|database|files))\b",
    ),
    _r(
        "give me my data (any wording)",
        ACC,
        3,
        r"\b(?:furnish|provide|send|supply|give|share|forward|receive|obtain|get|see|view|know|have|access"
        r"|disclose|release|produce|make available)\b(?:\W+(?:me|to me|with|the|a|an|full|complete|list"
        r"|copy|copies|details|summary|overview|report|record|of|all|any|everything|available)){0,6}\W+"
        r"(?:my|all my) (?:own )?(?:personal |private |customer )?(?:data|info|information|details|records"
        r"|file|files|particulars)\b",
        r"\b(?:quels?|quelles?) (?:sont les )?(?:donn[ée]es|informations|renseignements)\b",
        r"\b(?:d[ée]tenez|conservez|avez) (?:\w+ ){0,3}?(?:[àa] mon sujet|sur moi|me concernant)\b",
    ),
    _r(
        "information relating to me",
        ACC,
        3,
        r"\b(?:provide|send|supply|disclose|furnish|give)\b(?:\W+\w+){0,3}?\W+(?:personal )?"
        r"(?:data|information|records)\b(?:\W+\w+){0,3}?\W+"
        r"(?:relating to|concerning|regarding|about|on|of) me\b",
    ),
    _r(
        "everything you hold",
        ACC,
        2,
        rf"\b(?:all|any|everything|anything)\b(?:\W+\w+){{0,3}}?\W+(?:that )?(?:you|your company|you guys)"
        rf"(?: \w+)? {_HOLD}\b",
        rf"\b{_HOLD} (?:\w+ )?{_ME}",
        r"\b(?:data|information|records) (?:you )?"
        r"(?:hold|held|have|keep|kept|store|stored|process|processed)\b",
        r"\b(?:relating to|concerning|regarding|pertaining to) me\b",
    ),
    _r(
        "find out what you hold",
        ACC,
        2,
        r"\bfind out (?:what|which|whether|if|how)\b",
        r"\b(?:what|which) (?:\w+ )?(?:purposes?|finality|reasons?)\b"
        r"(?:\W+\w+){0,4}?\W+(?:use|using|process)",
    ),
    _r(
        "asks for recordings or footage",
        ACC,
        2,
        r"\b(?:request|requesting|want|like|need|ask for|obtain|get|receive|see|view|have|send|give|provide)"
        r"\b(?:\W+\w+){0,3}?\W+(?:footage|recordings?|transcripts?|notes)\b",
    ),
    _r(
        "recordings, footage, notes",
        ACC,
        2,
        r"\b(?:cctv|camera|video|bodycam|body[- ]worn)\b(?:\W+\w+){0,3}?\W+(?:footage|images?|recordings?)\b",
        r"\bfootage\b",
        r"\b(?:call|phone|telephone|voice) recordings?\b",
        r"\brecordings? of (?:my|the|our|all|any) (?:\w+ )?(?:calls?|conversations?)\b",
        r"\btranscripts?\b",
    ),
    _r(
        "copies of what you hold",
        ACC,
        4,
        rf"\bcop(?:y|ies) of (?:all |any |the |my |our |your )*(?:\w+ )?{_MATERIAL}\b",
        r"\b(?:request|obtain|get|receive|want|like|need|ask for|have) (?:a |an )?(?:full |complete )?"
        r"(?:copy|copies|access)\b(?! of (?:the |your )?(?:policy|terms|contract|invoice|bill|receipt))",
    ),
    _r(
        "send it to me",
        ACC,
        2,
        r"\b(?:send|give|provide|forward|e-?mail|post|supply|disclose|share|show) (?:me|to me)\b"
        rf"(?:\W+\w+){{0,4}}?\W+(?:{_DATA_WORDS}|{_MATERIAL}|copy|copies)\b",
        r"\bdisclos\w* (?:to me|of (?:all |the |my )?(?:personal )?(?:data|information))",
        r"\bfreedom of information\b|\bfoia?\b",
    ),
    _r(
        "access (Spanish, Italian, Dutch, French, German, Polish)",
        ACC,
        4,
        r"\bderecho de acceso\b",
        r"\bacceso a (?:mis|los|todos mis) datos\b",
        r"\bdiritto di accesso\b",
        r"\baccesso ai (?:miei )?dati\b",
        r"\bquali dati\b",
        r"\binzage(?:verzoek)?\b",
        r"\bwelke (?:persoons)?gegevens\b",
        r"\bwelche (?:personenbezogenen |pers[öo]nlichen )?daten\b",
        r"\bquelles (?:sont les )?(?:donn[ée]es|informations)\b",
        r"\bcommunication de (?:mes|toutes mes) donn[ée]es\b",
        r"\bdost[ęe]p do (?:moich )?danych\b",
        r"\bkopi[ęe] (?:moich )?danych\b",
    ),
    # erasure
    _r(
        "forget me",
        ERA,
        4,
        r"\bforget (?:about )?(?:me|i exist|all about me|my \w+)\b",
        r"\b(?:remove|delete|erase) all traces?\b|\b(?:all|every|any) traces? of me\b",
    ),
    _r(
        "delete it",
        ERA,
        2,
        rf"\b{_PLAIN_ERASE}\w* (?:of )?(?:it|them|this|that|all|everything|all of it|the lot|the rest)\b",
        r"\b(?:destroy|dispose of|shred)\b",
    ),
    _r(
        "ask for deletion",
        ERA,
        4,
        r"\b(?:request|requesting|requests|ask|asking|demand|demanding|seek|seeking|want|require|wish)"
        r"\w* (?:for )?(?:the |an |immediate |complete |full |permanent )*(?:deletion|erasure|removal"
        r"|destruction)\b",
        r"\bexclu(?:de|ding) (?:all )?(?:of )?(?:my|me)\b",
        r"\bno (?:reason|need|right|business|basis|legal basis) (?:\w+ ){0,2}?to (?:keep|hold|store|retain"
        r"|have|process)\b",
    ),
    _r(
        "I want it gone",
        ERA,
        4,
        r"\b(?:want|like|need) (?:it|them|this|my \w+|all my \w+|everything) (?:\w+ )?(?:gone|deleted|erased"
        r"|removed|wiped)\b",
    ),
    _r(
        "stop holding my data",
        ERA,
        3,
        rf"\bno longer (?:want (?:you|your company) to )?(?:{_HOLD}|have) (?:any of )?(?:my|any)\b",
        rf"\b(?:don't|do not|dont) want (?:you|your company) to (?:{_HOLD}) (?:any of )?(?:my|any)\b",
        r"\bwhy (?:do|are|would) you still (?:have|hold|keep|holding|keeping|storing|store|got)\b",
        r"\b(?:deactivate|shut down|shut) (?:my|the) (?:account|profile)\b",
    ),
    _r(
        "erasure (Italian, Dutch, Polish, Spanish)",
        ERA,
        4,
        r"\bcancellazione\b",
        r"\bcancellare (?:i |tutti i )?(?:miei )?dati\b",
        r"\bdiritto all'oblio\b",
        r"\bverwijder\w*\b",
        r"\bvergetelheid\b",
        r"\busuni[ęe]cie\b|\busun[ąa][ćc]\b",
        r"\bderecho al olvido\b",
    ),
    # rectification
    _r(
        "put it right (any wording)",
        REC,
        2,
        r"\b(?:amend|correct|update|fix|change|rectify|sort out|sort) (?:it|them|this|that|these|those"
        r"|the (?:error|mistake|typo|record|records|entry|spelling))\b",
        r"\bshould (?:read|say|show)\b",
        r"\bthe (?:correct|right|proper|actual|real) (?:\w+ ){0,3}?(?:is|are|should be)\b",
        r"\b(?:typo|typos|spelling mistake)\b",
        r"\b(?:incorrectly|wrongly|mistakenly)\b",
        r"\bnot up to date\b|\bno longer (?:correct|accurate|valid|current|right)\b|\bincomplete\b",
    ),
    _r(
        "new details",
        REC,
        2,
        r"\bnew (?:home |postal |e-?mail |phone |mobile )?(?:address|surname|name|number|e-?mail)\b",
        r"\b(?:i've|i have|i|we've|we have|we) (?:recently |just )?(?:moved|relocated)\b",
        r"\b(?:got|recently|just) (?:married|divorced)\b",
        r"\bdeed poll\b|\bmaiden name\b",
        r"\bi now live\b|\bnow living at\b|\bmy (?:current|correct|new) address\b",
    ),
    _r(
        "change it from this to that",
        REC,
        3,
        r"\b(?:change|changing|update|updating|amend|amending|correct|correcting|alter|altering|switch)\b"
        r"(?:\W+\w+){0,4}?\W+from\b(?:\W+\S+){1,4}?\W+to\b",
        r"\b(?:recorded|listed|shown|registered|spelt|spelled|written|entered|stored|saved|noted|appears)"
        r"(?: \w+){1,3} as\b",
        r"\bbut (?:it |this |that )?(?:must|should|ought to) (?:be|read|say)\b",
        r"\b(?:adapt|modify|alter|adjust) (?:it|this|that|them|my \w+)\b",
        r"\b(?:change|update|amend|correct) (?:\w+ ){0,2}?(?:title|gender|pronouns?|initials?|middle name)\b",
    ),
    _r(
        "you have it wrong",
        REC,
        3,
        r"\b(?:spelt|spelled|spelling|got|have|has|show|shows|showing|list|lists|listed)\b(?:\W+\w+){0,3}?\W+"
        r"(?:wrong|wrongly|incorrect|incorrectly|inaccurate|inaccurately|misspelt|misspelled)\b",
    ),
    _r(
        "rectification (Spanish, Italian, Dutch, French, German, Portuguese)",
        REC,
        4,
        r"\brectificaci[óo]n\b|\brectificar\b|\bcorregir\b",
        r"\brettifica\w*\b|\bcorreggere\b",
        r"\brectificatie\b|\bcorrigeren\b",
        r"\brectifier\b|\bcorriger\b",
        r"\bkorrigier\w*\b",
        r"\bretifica[çc][ãa]o\b|\bretificar\b",
    ),
    # portability
    _r(
        "send it straight to the new provider",
        POR,
        4,
        r"\b(?:transmit|transfer|send|pass|port|move|give|hand|forward)\w*\b(?:\W+\w+){0,4}?\W+"
        r"(?:directly|straight|direct) to\b",
        r"\b(?:bring|carry|reuse|re-use|import|upload|take)\b(?:\W+\w+){0,5}?\W+"
        rf"(?:to|into|with) (?:my |a |the )?(?:new|another|other|different) {_PROVIDER}",
        r"\bin a (?:\w+ )?(?:format|file) (?:that )?(?:i|we) can "
        r"(?:use|import|take|reuse|re-use|upload|open)\b",
    ),
    _r(
        "a file another company can load",
        POR,
        3,
        r"\b(?:in|as) (?:a|an|one) (?:\w+ )?(?:file|format|export|download)\b(?:\W+\w+){0,5}?\W+"
        r"(?:load|import|upload|read|reuse|re-use|use|take|bring|move|transfer)\b",
        r"\b(?:load|import|upload) (?:it|them|my \w+)? ?into (?:their|the new|another|a new)\b",
    ),
    _r(
        "switching provider",
        POR,
        2,
        rf"\bswitch\w* (?:over )?(?:to )?(?:a |another |my |the )?(?:new |different |other )?"
        rf"(?:\w+ )?{_PROVIDER}",
        r"\bexport\w*\b",
        r"\bxml\b",
    ),
    _r(
        "portability (other languages)",
        POR,
        5,
        r"\bportab\w+",
        r"\bportabilit[àa]\b",
        r"\boverdraagbaarheid\b",
        r"\bprzenoszenia danych\b",
    ),
    # restriction
    _r(
        "use it for nothing else",
        RES,
        4,
        r"\b(?:don't|do not|must not|mustn't|should not|shouldn't|never|not to) use (?:it|them|this|my \w+"
        r"|any of (?:it|my \w+))(?: \w+){0,2} (?:for anything|other than|except|in the meantime)",
        r"\b(?:only|just) (?:store|keep|hold|retain) (?:it|them|my)\b",
        r"\b(?:other than|except for|except|beyond) (?:simply |just )?"
        r"(?:storing|keeping|holding|retaining)\b",
        r"\b(?:keep|preserve|retain|hold) (?:it|them|my (?:\w+ )?(?:data|information|records))\b"
        r"(?:\W+\w+){0,5}?\W+but (?:do not|don't|not|stop|never)\b",
        r"\b(?:put|place) (?:a )?(?:hold|freeze|block|restriction) on\b",
        r"\b(?:put|place|keep)\b(?:\W+\w+){0,3}?\W+on hold\b",
        r"\b(?:use|processing|data|information)\b(?:\W+\w+){0,2}?\W+"
        r"(?:restricted|frozen|blocked|suspended)\b",
        r"\b(?:do not|don't|must not|never|not) (?:\w+ ){0,12}?use (?:it|them|this|my \w+) "
        r"(?:in any (?:other )?way|at all|for any(?:thing)?)\b",
        r"\b(?:storage|storing it) only\b|\bonly (?:for )?storage\b",
        r"\bnothing (?:should|must|may) be (?:changed|used|processed|deleted)\b",
    ),
    _r(
        "until the dispute is settled",
        RES,
        2,
        r"\b(?:court|legal) (?:case|proceedings|action|claim)\b|\blawsuit\b|\blitigation\b|\btribunal\b",
        r"\buntil (?:the |my |this |our )?(?:dispute|complaint|investigation|matter|appeal|claim|case"
        r"|objection)\b",
        r"\buntil (?:it|this|that|they|the \w+|my \w+)(?: \w+)? (?:is|are|has been|have been"
        r"|finish\w*|conclude\w*|decide\w*|resolve\w*) ?(?:resolved|settled|sorted|investigated|decided"
        r"|concluded|finished|closed|complete|over)?\b",
        r"\bwhile (?:the )?(?:\w+ )?(?:investigate|investigates|investigating|investigation|check|checks"
        r"|review|reviews|look into|looks into)\b",
        r"\b(?:disput|contest)(?:e|es|ed|ing)\b",
        r"\bpending (?:the )?(?:outcome|investigation|resolution|review|result|verification)\b",
    ),
    _r(
        "restriction (other languages)",
        RES,
        4,
        r"\blimitaci[óo]n del tratamiento\b",
        r"\blimitazione\b",
        r"\bbeperking\b",
        r"\blimita[çc][ãa]o do tratamento\b|\bbloqueio\b",
        r"\bograniczeni\w+ przetwarzania\b",
    ),
    # objection
    _r(
        "no more marketing",
        OBJ,
        4,
        rf"\b(?:don't|do not|dont|no longer) (?:want|wish) (?:to (?:receive|get|hear)\s)?(?:any )?"
        rf"(?:more |further |any )?(?:\w+ )?{_CONTACT_KINDS}\b",
        rf"\bno (?:more|further) (?:\w+ )?{_CONTACT_KINDS}\b",
        r"\b(?:take|get|strike|cross|remove) (?:me|my (?:\w+ )?(?:name|number|details|email|address))"
        r"(?: \w+){0,2} off\b",
        r"\b(?:call|calling|mailing|marketing|contact|sales|distribution) list\b",
    ),
    _r(
        "I object",
        OBJ,
        4,
        r"\bi (?:hereby |strongly |formally )?object\b(?! to\b)",
        r"\bobject(?:s|ed|ing)? (?:against|on the grounds)\b",
        r"\bwithdraw\w* (?:my |all )?(?:consent|permission)\b",
        r"\b(?:don't|do not|no longer) (?:give (?:my )?)?consent\b",
    ),
    _r(
        "no more of your mail",
        OBJ,
        4,
        rf"\bstop (?:all |the |these |those |your |any |sending |posting )*(?:\w+ )?(?:{_CONTACT_KINDS}"
        r"|catalogues?|catalogs?|brochures?|flyers?|leaflets?|surveys?)\b",
        r"\b(?:don't|do not|dont|never|please don't) (?:contact|call|email|e-mail|text|phone|ring|message"
        r"|write to|send) (?:me|us)\b",
        r"\bkeep (?:getting|receiving) (?:\w+ )?(?:offers|emails|e-mails|texts|calls|messages|marketing"
        r"|catalogues|leaflets|junk|spam)\b",
    ),
    _r(
        "stop contacting me",
        OBJ,
        3,
        r"\bstop\b(?:\W+\w+){0,3}?\W+(?:contacting|calling|emailing|e-mailing|texting|ringing|phoning"
        r"|bothering|pestering|spamming|sending|profiling|tracking|targeting|posting|mailing)\b",
        r"\bkeeps? (?:on )?(?:ringing|calling|emailing|texting|phoning|contacting|messaging) me\b",
        r"\bleave me alone\b|\bjunk mail\b",
    ),
    _r(
        "objection (other languages)",
        OBJ,
        4,
        r"\boposici[óo]n\b|\bme opongo\b",
        r"\bopposizione\b|\bmi oppongo\b",
        r"\bbezwaar\b",
        r"\bje m'oppose\b",
        r"\bsprzeciw\w*\b",
    ),
    # opt-out of sale or sharing
    _r(
        "no selling to third parties",
        OPT,
        4,
        r"\bopt (?:me|us|my \w+) out\b",
        r"\b(?:sell|sold|selling|sells|share|shared|sharing|going|passed|given)\b(?:\W+\w+){0,4}?\W+"
        r"(?:to|with) (?:\w+ )?(?:data brokers?|third[- ]part(?:y|ies)|advertisers|marketers|ad networks?)\b",
        r"\b(?:not|never) (?:to )?(?:sell|share)\b",
        r"\bmay not (?:sell|share)\b",
        r"\bright to opt[- ]?out\b|\byour privacy choices\b|\bopt[- ]out preference signal\b",
        r"\bopt[- ]?out (?:request|form)\b",
    ),
    _r(
        "data brokers, ad targeting",
        OPT,
        3,
        r"\bdata brokers?\b",
        r"\b(?:personali[sz]ed|interest[- ]based|behaviou?ral) (?:ads|advertising|advertisements)\b",
        r"\bad targeting\b",
        r"\bfor (?:money|profit)\b|\bmoneti[sz]\w*",
    ),
    # limit the use of sensitive personal information
    _r(
        "limit sensitive information (any wording)",
        LIM,
        5,
        r"\blimit\b(?:\W+\w+){0,5}?\W+sensitive\b",
        r"\bright to limit\b",
        r"\b(?:use|using|disclosure) of (?:my )?sensitive\b",
    ),
    _r(
        "limit, about sensitive categories",
        LIM,
        3,
        r"\blimit\b(?=.*\b(?:health|medical|religio\w*|biometric|genetic|racial|ethnic|sex life|sexual"
        r"|precise (?:geo)?location|social security|immigration|citizenship|union membership|face scan"
        r"|fingerprint))",
        r"\b(?:health|medical|religio\w*|biometric|genetic|racial|ethnic|sexual|precise location)\b"
        r"(?=.*\blimit\b)",
    ),
]


TYPE_RULES += WIDER_TYPE_RULES


#: "please don't delete my data", never "if you don't delete it I will complain"
_NEGATED_ERASURE = re.compile(
    r"(?<!if you )(?<!unless you )\b(?:do not|don't|dont|never|no need to)\s+(?:\w+\s+){0,2}?"
    r"(?:delete|erase|remove|close)\w*",
)


TYPE_THRESHOLD = 3


_TIE_ORDER = [LIM, OPT, POR, REC, RES, ERA, ACC, OBJ]


def score_types(text: str) -> dict[RequestType, tuple[int, list[str]]]:
    # Read as written and with misspelt English request words repaired: a rule matching
    # either counts once ("acceso a mis datos" must stay Spanish, "delet my acount" be read).
    texts = {_NEGATED_ERASURE.sub(" ", t) for t in (text, repair_spelling(text))}
    scores: dict[RequestType, tuple[int, list[str]]] = {}
    for rule in TYPE_RULES:
        if any(rule.pattern.search(t) for t in texts):
            total, labels = scores.get(rule.target, (0, []))
            scores[rule.target] = (total + rule.weight, [*labels, rule.label])
    return scores


def pick_type(
    scores: dict[RequestType, tuple[int, list[str]]],
) -> tuple[RequestType | None, list[RequestType], str]:
    ranked = sorted(
        (t for t, (s, _) in scores.items() if s >= TYPE_THRESHOLD),
        key=lambda t: (-scores[t][0], _TIE_ORDER.index(t)),
    )
    if not ranked:
        return None, [], "no request wording recognised"
    best = ranked[0]
    score, labels = scores[best]
    reason = f"type {best.value} ({', '.join(labels)}; score {score})"
    if len(ranked) > 1:
        reason += f"; also mentions {', '.join(t.value for t in ranked[1:])}"
    return best, ranked[1:], reason


#: Regimes with the opt-out of sale/sharing and targeted advertising (CCPA 1798.120, VA, CO, CT, UT)
#: and, in the CCPA, the right to limit the use of sensitive personal information (1798.121).
US_REGIMES = frozenset({Regime.CCPA, Regime.VCDPA, Regime.CPA, Regime.CTDPA, Regime.UCPA})


#: on a tie (LEGAL.md §1). UK/EU GDPR, LGPD: "opt me out of marketing" or "don't share it with
#: advertisers" is an objection (Art 21(2): direct marketing, profiling for it; LGPD Art 18 §2),
#: "only use my health data for the service" an objection or a restriction (LGPD "bloqueio"),
#: whichever its wording leans to. PIPEDA has neither an opt-out nor a restriction: withdrawing
#: consent (Sch 1 cl 4.3.8) is its objection. The US laws have no objection or restriction:
#: wording about selling, sharing, targeted ads or profiling is their opt-out, about sensitive
#: data (CCPA only) the right to limit.
_NEAREST_TYPE: dict[tuple[str, RequestType], tuple[RequestType, ...]] = {
    ("GDPR", OPT): (OBJ, RES),
    ("GDPR", LIM): (RES, OBJ),
    ("PIPEDA", OPT): (OBJ,),
    ("PIPEDA", LIM): (OBJ,),
    ("CCPA", RES): (LIM, OPT),
    ("CCPA", OBJ): (LIM, OPT),
    ("US", RES): (OPT,),
    ("US", OBJ): (OPT,),
}


def _family(regime: Regime | None) -> str | None:
    if regime is None:
        return None
    if regime is Regime.CCPA:
        return "CCPA"
    if regime in US_REGIMES:
        return "US"
    return "PIPEDA" if regime is Regime.PIPEDA else "GDPR"


def fit_type_to_regime(
    request_type: RequestType | None,
    also: list[RequestType],
    scores: dict[RequestType, tuple[int, list[str]]],
    regime: Regime | None,
) -> tuple[RequestType | None, list[RequestType], str | None]:
    """The request type as the regime names it: a type the law does not have becomes the one
    that carries the same wish there, chosen by which of them the wording scored higher for.
    In the US, an objection or restriction stays as read unless the wording also speaks of
    selling, sharing, ads or sensitive data (then it is the opt-out or the limit)."""
    family = _family(regime)
    if request_type is None or family is None:
        return request_type, also, None
    options = _NEAREST_TYPE.get((family, request_type), ())
    found = {t: scores.get(t, (0, []))[0] for t in options}
    nearest = request_type
    if family in ("CCPA", "US"):
        nearest = next((t for t in options if found[t] > 0), request_type)
    elif options:
        nearest = max(options, key=lambda t: (found[t], -options.index(t)))
    # what else it mentions, in the regime's words too (in the US as read: only the main wish is
    # re-read, since "stop the emails" beside "do not sell" is no opt-out of its own)
    lacking = family in ("GDPR", "PIPEDA")
    rest = [_NEAREST_TYPE[(family, t)][0] if lacking and (family, t) in _NEAREST_TYPE else t for t in also]
    rest = [t for t in dict.fromkeys(rest) if t is not nearest]
    if nearest is request_type:
        return nearest, rest, None
    if lacking:
        return nearest, rest, f"read as {nearest.value}: {regime} has no {request_type.value} right"
    return nearest, rest, f"read as {nearest.value}: the {regime} right for this wording"
