"""A statistical second opinion on an email's request type, for when the rules cannot tell.

The phrase rules (intake/mail/) decide whenever they recognise request wording; when they
recognise none the message would go to triage. Then this model reads the same text and, if it
is sure enough, names the type instead. It never overrides a type the rules found.

Why this shape:
- TF-IDF over words (1-2) and characters (2-5, inside word boundaries) with a logistic
  regression (scikit-learn): small, fast, readable as weights, robust to the typos and
  inflections phrase rules miss, and it gives a probability to compare with a threshold.
- Trained deterministically, at first use, once per process, from ``types.json`` shipped beside
  this file: no pickles (a pickle is code, and would tie the package to one scikit-learn
  version). The texts come from the corpus sets the rules were tuned on, never from the sets
  kept unseen (holdout-5 and later), so those still measure mail neither has seen.
- "none" is a class of its own (questions, complaints, spam): the model may say a message is
  not a request, and then the message stays in triage.
- ``THRESHOLD`` is chosen by 5-fold cross-validation on the training texts
  (``choose_threshold``): the lowest probability at which the out-of-fold decisions are at
  least ``TARGET_PRECISION`` right. A test recomputes it, so it cannot drift from the data.

Never raises: without scikit-learn or the training file, there is simply no second opinion.
The text it reads is personal data: it is never logged, and reasons quote only the label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dsar.model import RequestType

TRAINING_FILE = Path(__file__).with_name("types.json")
#: the label for "not a data-subject request" (a question, a complaint, spam)
NOT_A_REQUEST = "none"
#: out-of-fold decisions at or above the threshold must be at least this often right
TARGET_PRECISION = 0.95
#: the probability from which the second opinion decides: ``choose_threshold`` on the
#: cross-validated training texts (tests/test_mailparse.py recomputes it)
THRESHOLD = 0.5
#: the candidates ``choose_threshold`` tries, lowest first
THRESHOLD_GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(16))
FOLDS = 5
SEED = 0


@dataclass(frozen=True)
class TrainingExample:
    """One training text with its label (a request type's value, or ``NOT_A_REQUEST``)."""

    text: str  # the words parse_message classifies, lower-cased (intake.mail.classification_text)
    label: str
    source: str  # the corpus file it came from, and its set


@dataclass(frozen=True)
class Opinion:
    """What the model thinks one message asks for, and how sure it is."""

    label: str
    probability: float
    threshold: float = THRESHOLD

    @property
    def request_type(self) -> RequestType | None:
        return None if self.label == NOT_A_REQUEST else RequestType(self.label)

    @property
    def decides(self) -> bool:
        return self.request_type is not None and self.probability >= self.threshold

    def describe(self) -> str:
        """For the reason: the label and the numbers, never the text."""
        verdict = "decides" if self.decides else "not sure enough"
        return (
            f"statistical second opinion {self.label} p={self.probability:.2f}, "
            f"threshold {self.threshold:.2f}: {verdict}"
        )


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold figures on the training texts."""

    accuracy: float  # top label right, every class counted ("none" included)
    threshold: float  # what choose_threshold picked
    precision: float  # of the decisions at that threshold (a type named), the share right
    coverage: float  # of the request texts (not "none"), the share it named a type for
    n: int


_DIGITS = re.compile(r"\d")


def features_text(text: str) -> str:
    """Digits folded (account numbers, dates and phone numbers say nothing about the type)."""
    return _DIGITS.sub("0", text.lower())


def load_examples(path: Path = TRAINING_FILE) -> list[TrainingExample]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [TrainingExample(r["text"], r["label"], r["source"]) for r in rows]


def build_model() -> Any:
    """An untrained pipeline: the same settings for training and for cross-validation."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        (
                            "words",
                            TfidfVectorizer(
                                ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b"
                            ),
                        ),
                        (
                            "chars",
                            TfidfVectorizer(
                                analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2
                            ),
                        ),
                    ]
                ),
            ),
            ("model", LogisticRegression(C=20.0, max_iter=5000, class_weight="balanced")),
        ]
    )


def train(examples: Sequence[TrainingExample]) -> Any:
    model = build_model()
    model.fit([features_text(e.text) for e in examples], [e.label for e in examples])
    return model


@lru_cache(maxsize=1)
def _trained() -> Any | None:
    """Trained once per process at first use; None if it cannot be (then no second opinion)."""
    try:
        return train(load_examples())
    except Exception:  # no scikit-learn, no or broken training file: the rules alone decide
        return None


def second_opinion(text: str, threshold: float = THRESHOLD) -> Opinion | None:
    """The model's best label for ``text`` (as ``classification_text`` gives it). Never raises."""
    try:
        model = _trained()
        if model is None or not text.strip():
            return None
        probabilities = model.predict_proba([features_text(text)])[0]
        best = int(probabilities.argmax())
        return Opinion(str(model.classes_[best]), float(probabilities[best]), threshold)
    except Exception:
        return None


def out_of_fold(
    examples: Sequence[TrainingExample], folds: int = FOLDS, seed: int = SEED
) -> list[tuple[str, float]]:
    """Each example's best label and probability from a model that never saw it."""
    from sklearn.model_selection import StratifiedKFold

    labels = [e.label for e in examples]
    result: list[tuple[str, float]] = [("", 0.0)] * len(examples)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(labels, labels):
        model = train([examples[i] for i in train_idx])
        probabilities = model.predict_proba([features_text(examples[i].text) for i in test_idx])
        for i, row in zip(test_idx, probabilities, strict=True):
            best = int(row.argmax())
            result[i] = (str(model.classes_[best]), float(row[best]))
    return result


def _decisions(
    examples: Sequence[TrainingExample], predictions: list[tuple[str, float]], threshold: float
) -> tuple[int, int]:
    """(decided, right): how many got a type named at ``threshold``, and how many of those rightly."""
    decided = right = 0
    for e, (label, p) in zip(examples, predictions, strict=True):
        if label != NOT_A_REQUEST and p >= threshold:
            decided += 1
            right += label == e.label
    return decided, right


def choose_threshold(examples: Sequence[TrainingExample], predictions: list[tuple[str, float]]) -> float:
    """The lowest threshold whose out-of-fold decisions are at least TARGET_PRECISION right."""
    for threshold in THRESHOLD_GRID:
        decided, right = _decisions(examples, predictions, threshold)
        if decided and right / decided >= TARGET_PRECISION:
            return threshold
    return 1.0  # never sure enough: the rules alone decide


def cross_validate(examples: Sequence[TrainingExample] | None = None) -> CrossValidation:
    """5-fold cross-validation on the training texts: accuracy, and the threshold it supports."""
    examples = list(examples if examples is not None else load_examples())
    predictions = out_of_fold(examples)
    accuracy = sum(label == e.label for e, (label, _) in zip(examples, predictions, strict=True))
    threshold = choose_threshold(examples, predictions)
    decided, right = _decisions(examples, predictions, threshold)
    requests = [i for i, e in enumerate(examples) if e.label != NOT_A_REQUEST]
    covered, _ = _decisions([examples[i] for i in requests], [predictions[i] for i in requests], threshold)
    return CrossValidation(
        accuracy=accuracy / len(examples),
        threshold=threshold,
        precision=right / decided if decided else 1.0,
        coverage=covered / len(requests) if requests else 0.0,
        n=len(examples),
    )
