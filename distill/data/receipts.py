"""Synthetic receipts with a CORD-like label set: the pipeline exercised offline on a second label set.

A receipt is a store header (outside any entity), menu lines (count, name, unit price, price,
sometimes a sub-item), subtotal/tax/service/discount lines, the total, the payment and the
change, and a closing line. Labels follow CORD v2's dotted names (menu.nm, total.total_price...);
like CORD, a line's key words ("TOTAL") share its value's label. Boxes are word boxes (CORD's
quads are per word) on a drawn page; deterministic per (seed, split, index) like the form generator.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import datasets
from PIL import Image, ImageDraw

from distill.data.funsd import normalize_box
from distill.data.synthetic import _check_sizes, _font
from distill.labels import LabelSet
from distill.schema import features

# Sorted, as the labels of any user data are (distill.labels): what a CORD run would see.
RECEIPT_LABELS = LabelSet(
    tuple(
        sorted(
            [
                "menu.cnt",
                "menu.nm",
                "menu.price",
                "menu.sub_nm",
                "menu.sub_price",
                "menu.unitprice",
                "sub_total.discount_price",
                "sub_total.service_price",
                "sub_total.subtotal_price",
                "sub_total.tax_price",
                "total.cashprice",
                "total.changeprice",
                "total.creditcardprice",
                "total.menuqty_cnt",
                "total.total_price",
            ]
        )
    )
)

STORES = "KOPI KENANGAN|BAKMI GM|SOLARIA|HOKBEN|CAFE BATAVIA|WARUNG TEKKO|PIZZA MARZANO".split("|")
STREETS = "Jl. Sudirman|Jl. Thamrin|Jl. Gatot Subroto|Jl. Kemang Raya|Grand Indonesia".split("|")
CLOSING = "Thank you|Terima kasih|Please come again|Follow us @store".split("|")
DISHES = "Iced Latte|Nasi Goreng|Mie Ayam|Chicken Katsu|Es Teh Manis|Caesar Salad|Beef Burger".split("|")
DISHES += "Cappuccino|Pisang Goreng|Soto Ayam|Croissant|Americano|Fried Rice Special|Air Mineral".split("|")
EXTRAS = "Extra Shot|Less Sugar|Add Cheese|Large|Egg".split("|")
FONT_SIZE = 12
LINE_HEIGHT = 20
WIDTH = 380
MARGIN = 16


def _money(value: int) -> str:
    return f"{value:,}"


@dataclass
class Part:
    """Text on a receipt line, right-aligned or not, with its label (None: outside)."""

    text: str
    label: str | None
    right: bool = False


def receipt_lines(r: random.Random) -> list[list[Part]]:
    """What one receipt says, line by line."""
    lines: list[list[Part]] = [
        [Part(r.choice(STORES), None)],
        [Part(f"{r.choice(STREETS)} No. {r.randint(1, 200)}", None)],
        [
            Part(
                f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/20{r.randint(17, 24)} {r.randint(8, 22)}:{r.randint(0, 59):02d}",
                None,
            )
        ],
    ]
    subtotal, quantity = 0, 0
    for _ in range(r.randint(1, 6)):
        count, unit = r.randint(1, 4), r.randrange(5_000, 95_000, 500)
        quantity += count
        subtotal += count * unit
        line = [Part(str(count), "menu.cnt"), Part(r.choice(DISHES), "menu.nm")]
        if count > 1 and r.random() < 0.5:
            line.append(Part(f"@{_money(unit)}", "menu.unitprice"))
        line.append(Part(_money(count * unit), "menu.price", right=True))
        lines.append(line)
        if r.random() < 0.3:
            extra = r.randrange(2_000, 10_000, 500)
            subtotal += extra
            lines.append(
                [Part(f"+ {r.choice(EXTRAS)}", "menu.sub_nm"), Part(_money(extra), "menu.sub_price", True)]
            )
    total = subtotal
    lines.append(
        [
            Part("SUBTOTAL", "sub_total.subtotal_price"),
            Part(_money(subtotal), "sub_total.subtotal_price", True),
        ]
    )
    if r.random() < 0.5:
        discount = subtotal // 10
        total -= discount
        lines.append(
            [
                Part("DISCOUNT", "sub_total.discount_price"),
                Part(f"-{_money(discount)}", "sub_total.discount_price", True),
            ]
        )
    if r.random() < 0.5:
        service = subtotal // 20
        total += service
        lines.append(
            [
                Part("SERVICE 5%", "sub_total.service_price"),
                Part(_money(service), "sub_total.service_price", True),
            ]
        )
    tax = subtotal // 10
    total += tax
    lines.append([Part("TAX 10%", "sub_total.tax_price"), Part(_money(tax), "sub_total.tax_price", True)])
    lines.append([Part("TOTAL", "total.total_price"), Part(_money(total), "total.total_price", True)])
    if r.random() < 0.5:
        lines.append([Part(f"QTY {quantity}", "total.menuqty_cnt")])
    if r.random() < 0.5:
        paid = (total // 50_000 + 1) * 50_000
        lines.append([Part("CASH", "total.cashprice"), Part(_money(paid), "total.cashprice", True)])
        lines.append(
            [Part("CHANGE", "total.changeprice"), Part(_money(paid - total), "total.changeprice", True)]
        )
    else:
        lines.append(
            [Part("DEBIT CARD", "total.creditcardprice"), Part(_money(total), "total.creditcardprice", True)]
        )
    lines.append([Part(r.choice(CLOSING), None)])
    return lines


def make_receipt(r: random.Random) -> tuple[dict, Image.Image]:
    """Words, word boxes (0..1000) and BIO tag ids of one drawn receipt, and its page."""
    lines = receipt_lines(r)
    font = _font(FONT_SIZE)
    image = Image.new("RGB", (WIDTH, 2 * MARGIN + LINE_HEIGHT * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    tokens, boxes, tags = [], [], []
    for row, line in enumerate(lines):
        y = MARGIN + row * LINE_HEIGHT
        x = MARGIN
        previous: str | None = None
        for part in line:
            words = part.text.split()
            if part.right:  # prices line up on the right edge, as on a till roll
                x = WIDTH - MARGIN - int(draw.textlength(part.text, font=font))
            for i, word in enumerate(words):
                left, top, right, bottom = draw.textbbox((x, y), word, font=font)
                draw.text((x, y), word, font=font, fill=(0, 0, 0))
                tokens.append(word)
                boxes.append(normalize_box([left, top, right, bottom], image.size))
                # A key and its value on one line ("TOTAL 60,500") are one entity, as in CORD.
                begins = i == 0 and part.label != previous
                tag = "O" if part.label is None else f"{'B' if begins else 'I'}-{part.label}"
                tags.append(RECEIPT_LABELS.label2id[tag])
                x = right + int(draw.textlength(" ", font=font))
            x += 12
            previous = part.label
    return {"tokens": tokens, "bboxes": boxes, "ner_tags": tags}, image


def make_receipts(num_train: int = 48, num_test: int = 16, seed: int = 0) -> datasets.DatasetDict:
    """A train/test DatasetDict of synthetic receipts, tags in RECEIPT_LABELS' order."""
    _check_sizes(num_train, num_test, 1)
    feats = features(RECEIPT_LABELS.tags)
    splits = {}
    for split, count in (("train", num_train), ("test", num_test)):
        rows = []
        for index in range(count):
            r = random.Random(f"docdistill-receipt:{seed}:{split}:{index}")
            form, image = make_receipt(r)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=90)
            rows.append(
                {
                    **form,
                    "id": f"receipt-{seed}-{split}-{index:05d}",
                    "image": {"bytes": buffer.getvalue(), "path": None},
                }
            )
        columns = {name: [row[name] for row in rows] for name in feats}
        info = datasets.DatasetInfo(
            description=f"synthetic receipts (seed {seed}, {count} {split})", features=feats
        )
        splits[split] = datasets.Dataset.from_dict(columns, features=feats, info=info)
    return datasets.DatasetDict(splits)
