"""OCR words against gold words: match them by box overlap, and carry predicted labels onto the gold words.

Scoring a model from OCR input against the gold annotation needs one unit both sides share: the
gold words. Each gold word takes the OCR word that covers most of it (overlap measured against the
smaller of the two boxes, so an OCR word that merged two gold words matches both, and one of two
OCR pieces of a gold word still matches it); a gold word no OCR word covers is missed and counts
as O. The predicted tag of the matched OCR word becomes the gold word's, with B-/I- redone along
the gold words so that a span stays one entity where the OCR merged or split its words. Entity F1
over the gold words then charges the OCR's misses, splits and merges to the model that read it,
which is what a user with scans gets. (No library aligns word boxes like this; it is a few lines.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Box = Sequence[float]
MIN_OVERLAP = 0.5  # of the smaller box's area


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def match_words(
    gold: Sequence[Box], ocr: Sequence[Box], min_overlap: float = MIN_OVERLAP
) -> list[int | None]:
    """For each gold box, the index of the OCR box that covers most of it (None: no OCR word does)."""
    matches: list[int | None] = []
    for g in gold:
        best, best_inter = None, 0.0
        for j, o in enumerate(ocr):
            inter = _intersection(g, o)
            if inter > best_inter:
                best, best_inter = j, inter
        smaller = min(_area(g), _area(ocr[best])) if best is not None else 0.0
        # Degenerate (zero-area) boxes cannot overlap: such a gold word counts as missed.
        matches.append(
            best if best is not None and smaller > 0 and best_inter / smaller >= min_overlap else None
        )
    return matches


def project_tags(matches: Sequence[int | None], ocr_tags: Sequence[str]) -> list[str]:
    """The gold words' tags from the matched OCR words' tags, B-/I- redone along the gold words.

    A gold word continues the entity before it (I-X) when that word has the same type and either
    shares its OCR word or its OCR word itself continues (I-X); otherwise it starts one (B-X).
    """
    tags: list[str] = []
    previous: int | None = None
    for match in matches:
        tag = ocr_tags[match] if match is not None else "O"
        if tag == "O":
            tags.append("O")
        else:
            kind = tag[2:]
            same_kind = bool(tags) and tags[-1] != "O" and tags[-1][2:] == kind
            continues = same_kind and (match == previous or tag.startswith("I-"))
            tags.append(f"{'I' if continues else 'B'}-{kind}")
        previous = match
    return tags


@dataclass(frozen=True)
class WordAgreement:
    gold: int  # gold words
    matched: int  # gold words some OCR word covers
    same_text: int  # ... whose OCR word reads the same (case and surrounding punctuation aside)
    ocr: int  # OCR words
    unmatched_ocr: int  # OCR words covering no gold word

    def __add__(self, other: WordAgreement) -> WordAgreement:
        return WordAgreement(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.gold, self.matched, self.same_text, self.ocr, self.unmatched_ocr)


def _norm(text: str) -> str:
    return text.strip().strip(".,:;!?\"'()[]").lower()


def word_agreement(
    gold_words: Sequence[str], ocr_words: Sequence[str], matches: Sequence[int | None]
) -> WordAgreement:
    used = {m for m in matches if m is not None}
    return WordAgreement(
        gold=len(gold_words),
        matched=sum(m is not None for m in matches),
        same_text=sum(
            m is not None and _norm(ocr_words[m]) == _norm(g)
            for g, m in zip(gold_words, matches, strict=True)
        ),
        ocr=len(ocr_words),
        unmatched_ocr=len(ocr_words) - len(used),
    )
