"""Spelling repairs before the request type is read: "coppy of al my informaton", "delet my acount".

People write to a privacy mailbox in a hurry, on phones, and in a second language. The type rules
are written in correct English; this pass rewrites the words they depend on when a word is one
edit away (a letter missing, extra, wrong or two swapped: optimal string alignment distance 1)
from one of them, plus the text-speak people actually use ("u", "ur", "pls"). It is deterministic
and local (RapidFuzz's edit distance, no dictionary download), and it never touches:

- words of fewer than five letters (too many real words are one edit from "data" or "copy"),
- real words that sit one edit from a request word ("remote", "expert", "date"),
- anything but the text used for classification: identifiers are read from the original text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: The words the type rules hinge on, in the forms people use.
REQUEST_WORDS: tuple[str, ...] = _words(
    """
    access account accounts address amend amended categories consent contact correct corrected
    correction delete deleted deletion details disclose disclosed erase erased erasure
    everything export footage forget forgotten information inaccurate incorrect marketing object
    objection personal please portability process processing receive recordings records rectify
    rectification remove removed request requesting restrict restriction sensitive sharing
    subject transfer unsubscribe update updated wrong number selling third parties purpose
    purposes collected stored holding copy data info
    """
)
#: Real words one edit from a request word: left as written.
REAL_WORDS: frozenset[str] = frozenset(
    _words(
        """
    abject accent accept accepts access accused adders address amends anything bequest collect
    collects consent consents contact contacts content contest contract corrects deceive deletes
    deplete depleted detail dispose disposed emend entails erase expert experts exports exposed
    falling folding forged forger forgets forgot holding holdings lumber marketed markets
    molding numbed number object objects person personal personnel plead pleased pleases process
    procession purposed raised receipt recipe recorded records regard regards remote remover
    removes requests restore retails scaring searing selling shading shaking shaping sharing
    shoring sparing spelling staring stored stores storey subjects telling thirds thirst
    transfers update updater updates wrongs yelling
    """
    )
)
#: Text-speak and common slips that are too short for the edit-distance pass.
SHORTHAND: dict[str, str] = {
    "u": "you",
    "ur": "your",
    "yr": "your",
    "al": "all",
    "pls": "please",
    "plz": "please",
    "plse": "please",
    "thx": "thanks",
    "dont": "don't",
    "cant": "can't",
    "wont": "won't",
    "im": "i'm",
    "ive": "i've",
    "wat": "what",
    "wot": "what",
    "abt": "about",
    "info's": "info",
    "infos": "info",
    "datas": "data",
    "informations": "information",
    "acc": "account",
    "acct": "account",
    "a/c": "account",
    "dets": "details",
    "deets": "details",
    "coppy": "copy",
    "cpy": "copy",
    "delet": "delete",
    "dlete": "delete",
    "delte": "delete",
    "deleat": "delete",
    "deleet": "delete",
    "eraze": "erase",
    "recieve": "receive",
    "recive": "receive",
    "adress": "address",
    "persnal": "personal",
    "personel": "personal",
}
_WORD = re.compile(r"[a-z][a-z'/]*")
_MIN_LENGTH = 5


@lru_cache(maxsize=8192)
def repair_word(word: str) -> str:
    """The request word ``word`` was meant to be, or ``word`` itself."""
    if word in SHORTHAND:
        return SHORTHAND[word]
    if len(word) < _MIN_LENGTH or word in REAL_WORDS or word in _VOCABULARY:
        return word
    match = process.extractOne(word, REQUEST_WORDS, scorer=OSA.distance, score_cutoff=1)
    if match is None:
        return word
    return str(match[0])


def repair_spelling(text: str) -> str:
    """``text`` (already lower-cased) with misspelt request words repaired."""
    return _WORD.sub(lambda m: repair_word(m.group(0)), text)


_VOCABULARY = frozenset(REQUEST_WORDS)
