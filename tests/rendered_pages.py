"""Pages rendered with known words at known places (a TrueType font, large and clean), for real OCR tests.

Each word's true box is the box of its own ink, found from its pixels, not from font metrics.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

FONT = "DejaVuSans.ttf"  # Debian's fonts-dejavu-core; Pillow finds it under /usr/share/fonts
VOCABULARY = (
    "invoice total amount date number account name address phone street city county "
    "payment balance order customer company signature approved received program budget "
    "tobacco research report brand market sample quantity price credit office manager"
).split()


@dataclass(frozen=True)
class TrueWord:
    text: str
    box: tuple[int, int, int, int]  # ink box in pixels
    line: int


def font(size: int = 40) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        pytest.skip(f"no {FONT} on this machine (apt-get install fonts-dejavu-core)")


def render_page(
    lines: list[list[str]], size: int = 40, width: int = 1400, margin: int = 80
) -> tuple[Image.Image, list[TrueWord]]:
    """A white page with each line's words left to right; the words' ink boxes."""
    face = font(size)
    line_height = int(size * 2.2)
    page = Image.new("RGB", (width, margin * 2 + line_height * len(lines)), "white")
    draw = ImageDraw.Draw(page)
    truth = []
    for n, words in enumerate(lines):
        x, y = margin, margin + n * line_height
        for word in words:
            mask = Image.new("L", page.size, 0)
            ImageDraw.Draw(mask).text((x, y), word, font=face, fill=255)
            box = mask.getbbox()
            assert box is not None
            draw.text((x, y), word, font=face, fill="black")
            truth.append(TrueWord(word, box, n))
            x = box[2] + size  # a wide, clean gap between words
    return page, truth


def random_lines(seed: int, lines: int = 6, words: int = 4) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [rng.choice(VOCABULARY) if rng.random() < 0.8 else str(rng.randint(10, 99999)) for _ in range(words)]
        for _ in range(lines)
    ]


def inside(box: tuple[int, ...], outer: tuple[int, ...], slack: int) -> bool:
    """`box` lies within `outer` grown by `slack` pixels on every side."""
    return (
        box[0] >= outer[0] - slack
        and box[1] >= outer[1] - slack
        and box[2] <= outer[2] + slack
        and box[3] <= outer[3] + slack
    )


def annotated_form(folder: Path, seed: int = 0, name: str = "form", size: int = 28) -> Path:
    """A FUNSD-layout form (annotations/NAME.json + images/NAME.png): each rendered line a segment."""
    image, truth = render_page(random_lines(seed, lines=5, words=3), size=size)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    image.save(folder / "images" / f"{name}.png")
    labels = ["header", "question", "answer", "other"]
    form = []
    for line in sorted({t.line for t in truth}):
        words = [{"text": t.text, "box": list(t.box)} for t in truth if t.line == line]
        form.append({"id": line, "label": labels[line % 4], "words": words})
    path = folder / "annotations" / f"{name}.json"
    path.write_text(json.dumps({"form": form}))
    return path


def fits(box: tuple[int, ...], outer: tuple[int, ...], slack: int, cover: float = 0.8) -> bool:
    """`box` lies inside `outer` (grown by `slack`) and covers at least `cover` of its area: the word's box."""
    width = min(box[2], outer[2]) - max(box[0], outer[0])
    height = min(box[3], outer[3]) - max(box[1], outer[1])
    area = (outer[2] - outer[0]) * (outer[3] - outer[1])
    return inside(box, outer, slack) and width > 0 and height > 0 and width * height >= cover * area
