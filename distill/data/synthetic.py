"""Synthetic FUNSD-like forms, drawn on the fly: the offline quickstart and the test data.

A form is a header at the top, question/answer pairs in rows of two (or more) columns,
section headers and `other` text in between, and a footer line. Every word is drawn
with PIL's default font at its box, and boxes are normalised with the image's own size.
Deterministic for a seed: each form has its own random.Random, seeded from
(seed, split, index), so a form does not change when the number of forms does.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import datasets
from PIL import Image, ImageDraw, ImageFont

from distill.data.funsd import enclosing_box, normalize_box
from distill.errors import DistillError
from distill.schema import features, segment_tags

PAGE_SIZE = (600, 800)  # the smallest page; a form with many words gets a wider, taller one
MARGIN = 24
COLUMN_WIDTH = 268
COLUMN_GAP = 16
WORD_GAP = 4
BODY_FONT_SIZE = 11
SECTION_FONT_SIZE = 13
TITLE_FONT_SIZE = 15
INK = (0, 0, 0)

Box = tuple[int, int, int, int]

# --- vocabulary -------------------------------------------------------------------------

# One-word lists are split on spaces, phrase lists on "|".
TITLE_FIRST = "PURCHASE EXPENSE EMPLOYEE MARKETING RESEARCH SALES PROJECT ACCOUNT PRODUCT TRAVEL".split()
TITLE_FIRST += "VENDOR QUALITY PROGRAM MEDIA BUDGET SHIPPING".split()
TITLE_SECOND = "ORDER REQUEST REPORT APPLICATION AUTHORIZATION SUMMARY INFORMATION EVALUATION".split()
TITLE_SECOND += "RECORD TRANSMITTAL PROPOSAL CHECKLIST".split()
SECTIONS = "Shipping Information|Billing Details|Contact Information|PART I|PART II".split("|")
SECTIONS += "Comments|Approvals|Budget|Distribution|Product Details|For Office Use Only".split("|")
SECTIONS += ["Summary of Costs"]
OTHER_LINES = "Please type or print clearly|Page 1 of 2|CONFIDENTIAL|For office use only".split("|")
OTHER_LINES += "Return this form to the Marketing Department|See attached sheet".split("|")
OTHER_LINES += "Do not write below this line|All fields are required".split("|")
OTHER_LINES += ["Copies: File, Accounting, Legal"]
FOOTERS = ["Page 2", "Rev. 3/97", "CONFIDENTIAL", "Form 1047"]
FILLER = "the of and to new test market sample results program report final review store product".split()
FILLER += "study data attached per request please call plan".split()
FIRST_NAMES = "John Mary Robert Susan James Linda David Karen Thomas Nancy R. J. K. Paul Carol Steven".split()
LAST_NAMES = "Smith Miller Johnson Brown Davis Wilson Moore Taylor Anderson Lee Harris Clark Lewis".split()
LAST_NAMES += "Walker Hall Young King Wright Scott Green".split()
COMPANY_WORDS = "Acme National General United Southern Atlantic Pioneer Summit".split()
COMPANY_KINDS = "Tobacco Research Supply Marketing Products Services Foods Paper".split()
COMPANY_SUFFIXES = "Co. Inc. Corp. Company Ltd.".split()
STREETS = "Main Oak Park Elm Market Church Maple Broad Lake Hill".split()
STREET_KINDS = "Street Avenue Road Blvd. Drive Lane".split()
CITIES = "Chicago|Richmond|Greensboro|New York|Louisville|Atlanta|Boston|Winston-Salem".split("|")
STATES = "NC VA NY KY GA IL MA TX CA NJ".split()
MONTHS = "January February March April May June July August September October November December".split()
DEPARTMENTS = "Marketing|Research and Development|Sales|Legal|Accounting|Purchasing".split("|")
PRODUCTS = "Regular|Menthol|Lights|Ultra Lights|King Size|100s|Filter|Special Blend".split("|")
JOB_TITLES = "Manager|Director|Sales Representative|Brand Manager|Analyst|Vice President".split("|")


def _date(r: random.Random) -> str:
    month, day, year = r.randint(1, 12), r.randint(1, 28), r.randint(85, 99)
    style = r.randrange(3)
    if style == 0:
        return f"{month:02d}/{day:02d}/{year}"
    if style == 1:
        return f"{MONTHS[month - 1]} {day}, 19{year}"
    return f"{day}-{month}-{year}"


def _name(r: random.Random) -> str:
    return f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"


def _phone(r: random.Random) -> str:
    area, line = r.randint(201, 989), r.randint(0, 9999)
    return f"({area}) 555-{line:04d}" if r.random() < 0.5 else f"{area}-555-{line:04d}"


def _company(r: random.Random) -> str:
    return f"{r.choice(COMPANY_WORDS)} {r.choice(COMPANY_KINDS)} {r.choice(COMPANY_SUFFIXES)}"


def _money(r: random.Random) -> str:
    return f"${r.randint(1, 99999):,}.{r.randint(0, 99):02d}"


def _sentence(r: random.Random) -> str:
    return " ".join(r.choice(FILLER) for _ in range(r.randint(3, 6)))


# (question, how to draw its answer): the field names and values of 1990s paper forms.
FIELDS: list[tuple[str, Callable[[random.Random], str]]] = [
    ("Date:", _date),
    ("Name:", _name),
    ("Phone:", _phone),
    ("Fax:", _phone),
    ("Company:", _company),
    ("Address:", lambda r: f"{r.randint(1, 9999)} {r.choice(STREETS)} {r.choice(STREET_KINDS)}"),
    ("City:", lambda r: r.choice(CITIES)),
    ("State:", lambda r: r.choice(STATES)),
    ("Zip Code:", lambda r: f"{r.randint(10000, 99999)}"),
    ("Account No.:", lambda r: f"{r.randint(100000, 99999999)}"),
    ("Order No.:", lambda r: f"{r.choice('ABCPX')}-{r.randint(1000, 99999)}"),
    ("Total:", _money),
    ("Amount:", _money),
    ("Cost per Unit:", _money),
    ("Quantity:", lambda r: f"{r.randint(1, 5000):,}"),
    ("Number of Pages:", lambda r: str(r.randint(1, 20))),
    ("Title:", lambda r: r.choice(JOB_TITLES)),
    ("Department:", lambda r: r.choice(DEPARTMENTS)),
    ("Signature:", _name),
    ("Approved By:", _name),
    ("Prepared By:", _name),
    ("Contact Person:", _name),
    ("To:", _name),
    ("From:", _name),
    ("Date of Birth:", _date),
    ("Start Date:", _date),
    ("Due Date:", _date),
    ("Product:", lambda r: r.choice(PRODUCTS)),
    ("Brand:", lambda r: f"{r.choice(COMPANY_WORDS)} {r.choice(PRODUCTS)}"),
    ("Budget Code:", lambda r: f"{r.randint(100, 999)}-{r.randint(10, 99)}"),
    ("Subject:", _sentence),
    ("Remarks:", _sentence),
]

# --- content: what a form says ----------------------------------------------------------


@dataclass
class Segment:
    """One entity: a FUNSD segment label and its words."""

    label: str  # header | question | answer | other
    words: list[str]


@dataclass
class Item:
    """One thing on the page: a title, a section header, a full-width line, a pair in a cell, a footer."""

    kind: str  # title | section | line | pair | footer
    segments: list[Segment]


def form_content(r: random.Random, n_words: int) -> list[Item]:
    """A title, then pairs with the odd section header and other line, then a footer; n_words words."""
    budget = n_words

    def item(kind: str, *texts: tuple[str, str]) -> Item | None:
        nonlocal budget
        segments = []
        for label, text in texts:
            words = text.split()[:budget]
            budget -= len(words)
            if words:
                segments.append(Segment(label, words))
        return Item(kind, segments) if segments else None

    # A footer (a Bates number, as on most FUNSD pages, or a short line) on all but tiny forms.
    footer = str(r.randint(1000000000, 2099999999)) if r.random() < 0.6 else r.choice(FOOTERS)
    footer_words = len(footer.split()) if n_words > 8 else 0
    budget -= footer_words
    title = f"{r.choice(TITLE_FIRST)} {r.choice(TITLE_SECOND)}" + (" FORM" if r.random() < 0.4 else "")
    items = [item("title", ("header", title))]
    if r.random() < 0.6:
        items.append(item("line", ("other", _company(r) if r.random() < 0.5 else r.choice(OTHER_LINES))))
    fields = _field_order(r)
    while budget > 0:
        roll = r.random()
        if roll < 0.06:
            items.append(item("section", ("header", r.choice(SECTIONS))))
        elif roll < 0.12:
            items.append(item("line", ("other", r.choice(OTHER_LINES) if r.random() < 0.6 else _sentence(r))))
        else:
            question, answer = next(fields)
            # About one field in ten is left blank, as on real forms.
            items.append(
                item("pair", ("question", question), ("answer", answer(r) if r.random() < 0.9 else ""))
            )
    budget += footer_words
    items.append(item("footer", ("other", footer)))
    return [i for i in items if i is not None]


def _field_order(r: random.Random) -> Iterator[tuple[str, Callable[[random.Random], str]]]:
    """Every field once in a random order before any repeats (only long forms repeat fields)."""
    while True:
        yield from r.sample(FIELDS, len(FIELDS))


# --- layout and drawing -----------------------------------------------------------------


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=8192)
def word_stamp(word: str, size: int) -> tuple[Image.Image, Box]:
    """The word's ink as a mask and its box relative to the text origin.

    Drawing text costs ~60 us a word; stamping a cached mask costs ~1 us, and form
    vocabulary repeats, so this is what keeps generation above 100 forms a second.
    """
    font = _font(size)
    left, top, right, bottom = (int(v) for v in font.getbbox(word))
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), word, fill=255, font=font)
    return mask, (left, top, right, bottom)


@dataclass
class Placed:
    """A word at its place on the page: pixel box, segment index, font size."""

    word: str
    box: Box
    segment: int
    size: int


class Page:
    """Flows words left to right, wrapping inside a cell, rows down the page."""

    def __init__(self, columns: int, line_height: int, x_jitter: int) -> None:
        self.columns = columns
        self.line_height = line_height
        self.left = MARGIN + x_jitter
        self.width = max(PAGE_SIZE[0], 2 * MARGIN + columns * COLUMN_WIDTH + (columns - 1) * COLUMN_GAP)
        self.y = MARGIN  # top of the next row
        self.cell = 0  # pairs placed in the open row
        self.row_bottom = MARGIN  # last text line of the open row
        self.placed: list[Placed] = []
        self.n_segments = 0

    def flow(self, words: list[str], x: int, y: int, left: int, right: int, size: int) -> tuple[int, int]:
        """Place words from (x, y), wrapping at `right` back to `left`; returns the next (x, y)."""
        for word in words:
            _, (ink_left, ink_top, ink_right, ink_bottom) = word_stamp(word, size)
            if x + ink_right > right and x > left:
                x, y = left, y + self.line_height
            box = (x + ink_left, y + ink_top, x + ink_right, y + ink_bottom)
            self.placed.append(Placed(word, box, self.n_segments, size))
            x += ink_right + WORD_GAP
        self.n_segments += 1
        return x, y

    def add(self, item: Item) -> None:
        if item.kind == "title":
            self._title(item.segments[0])
        elif item.kind == "pair":
            self._pair(item.segments)
        elif item.kind == "footer":
            # At the foot of the page, or below the content of a page that grew.
            self._close_row()
            self.y = max(self.y + self.line_height, PAGE_SIZE[1] - MARGIN - self.line_height)
            self._line(item.segments[0], BODY_FONT_SIZE)
        else:
            self._line(item.segments[0], SECTION_FONT_SIZE if item.kind == "section" else BODY_FONT_SIZE)

    def _title(self, segment: Segment) -> None:
        self._close_row()
        width = int(_font(TITLE_FONT_SIZE).getlength(" ".join(segment.words)))
        x = max(self.left, (self.width - width) // 2)
        _, y = self.flow(segment.words, x, self.y, self.left, self.width - MARGIN, TITLE_FONT_SIZE)
        self.y = y + 2 * self.line_height

    def _line(self, segment: Segment, size: int) -> None:
        self._close_row()
        _, y = self.flow(segment.words, self.left, self.y, self.left, self.width - MARGIN, size)
        self.y = y + self.line_height + (size - BODY_FONT_SIZE)

    def _pair(self, segments: list[Segment]) -> None:
        if self.cell == self.columns:
            self._close_row()
        if self.cell == 0:
            self.row_bottom = self.y
        left = self.left + self.cell * (COLUMN_WIDTH + COLUMN_GAP)
        x, y = left, self.y
        for segment in segments:
            x, y = self.flow(segment.words, x, y, left, left + COLUMN_WIDTH, BODY_FONT_SIZE)
            x += 2 * WORD_GAP  # a wider gap between a question and its answer
        self.row_bottom = max(self.row_bottom, y)
        self.cell += 1

    def _close_row(self) -> None:
        """Move below the open row of pairs, if there is one."""
        if self.cell:
            self.y = self.row_bottom + self.line_height
            self.cell = 0

    def height(self) -> int:
        bottom = max((p.box[3] for p in self.placed), default=0)
        return max(PAGE_SIZE[1], bottom + MARGIN)

    def draw(self) -> Image.Image:
        image = Image.new("RGB", (self.width, self.height()), "white")
        draw = ImageDraw.Draw(image)
        for p in self.placed:
            mask, _ = word_stamp(p.word, p.size)
            draw.bitmap(p.box[:2], mask, fill=INK)
        return image


def columns_for(n_words: int) -> int:
    """Two columns for FUNSD-sized forms; more for huge ones, so the page stays roughly page-shaped."""
    # About 3 words a cell and 18 px a row: sqrt(n/30) columns keep the page about as tall as a page.
    return max(2, round(math.sqrt(n_words / 30)))


def make_form(r: random.Random, n_words: int, word_boxes: bool = False) -> tuple[dict, Image.Image]:
    """One form's columns (image excluded) and its image."""
    content = form_content(r, n_words)
    page = Page(columns_for(n_words), line_height=r.randint(16, 20), x_jitter=r.randint(-8, 8))
    segments: list[Segment] = []
    for item in content:
        page.add(item)
        segments += item.segments
    image = page.draw()
    tags = [tag for s in segments for tag in segment_tags(s.label, len(s.words))]
    boxes = _boxes(page.placed, word_boxes)
    form = {
        "tokens": [p.word for p in page.placed],
        "bboxes": [normalize_box(list(box), image.size) for box in boxes],
        "ner_tags": tags,
    }
    return form, image


def _boxes(placed: list[Placed], word_boxes: bool) -> list[Box]:
    if word_boxes:
        return [p.box for p in placed]
    by_segment: dict[int, list[Box]] = {}
    for p in placed:
        by_segment.setdefault(p.segment, []).append(p.box)
    union = {s: tuple(enclosing_box([list(b) for b in boxes])) for s, boxes in by_segment.items()}
    return [union[p.segment] for p in placed]


# --- the dataset ------------------------------------------------------------------------


def make_synthetic(
    num_train: int = 48,
    num_test: int = 16,
    max_words: int = 120,
    seed: int = 0,
    word_boxes: bool = False,
) -> datasets.DatasetDict:
    """A train/test DatasetDict of synthetic forms with the hub schema.

    Each form has between max_words/2 and max_words words. Boxes are segment boxes like
    FUNSD's (word_boxes=True: each word's own box). Images decode as RGB PIL images; they
    are stored as JPEG (quality 90): ~1 ms a page where a PNG takes ~6 ms, more than
    laying out and drawing the whole form, and the model sees them at 224x224 anyway.
    """
    _check_sizes(num_train, num_test, max_words)
    splits = {}
    for split, count in (("train", num_train), ("test", num_test)):
        rows = [_row(seed, split, i, max_words, word_boxes) for i in range(count)]
        columns = {name: [row[name] for row in rows] for name in features()}
        description = f"synthetic forms (seed {seed}, {count} {split} forms, at most {max_words} words each)"
        info = datasets.DatasetInfo(description=description, features=features())
        splits[split] = datasets.Dataset.from_dict(columns, features=features(), info=info)
    return datasets.DatasetDict(splits)


def _row(seed: int, split: str, index: int, max_words: int, word_boxes: bool) -> dict:
    # A string seed is hashed with SHA-512 by random.seed: stable across runs and platforms.
    r = random.Random(f"docdistill-synthetic:{seed}:{split}:{index}")
    n_words = r.randint(math.ceil(max_words / 2), max_words)
    form, image = make_form(r, n_words, word_boxes)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    form["id"] = f"synthetic-{seed}-{split}-{index:05d}"
    form["image"] = {"bytes": buffer.getvalue(), "path": None}
    return form


def _check_sizes(num_train: int, num_test: int, max_words: int) -> None:
    if num_train < 0 or num_test < 0:
        raise DistillError(f"synthetic form counts must be >= 0, got {num_train} train and {num_test} test")
    if max_words < 1:
        raise DistillError(f"synthetic forms need max words >= 1, got {max_words}")
