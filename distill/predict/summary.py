"""The counters of a prediction run and the closing lines the CLI prints from them."""

from __future__ import annotations

from dataclasses import dataclass

from distill.predict.stream import LabelledPage


@dataclass
class Totals:
    pages: int = 0
    failed: int = 0
    words: int = 0
    entities: int = 0
    ocr_pages: int = 0
    ocr_seconds: float = 0.0  # summed over pages (in the workers, side by side, with --workers N)
    read_seconds: float = 0.0  # decoding images, rendering PDF pages, parsing JSON
    model_seconds: float = 0.0
    wall_seconds: float = 0.0
    settings: str = ""  # the model's windows and box mode, repeated at the end

    def add(self, result: LabelledPage) -> None:
        page = result.page
        self.pages += 1
        self.words += len(result.words)
        self.entities += len(result.entities)
        self.read_seconds += page.read_seconds
        if page.ocr_seconds > 0:  # OCR ran on it (annotation JSON and pages that failed before do not)
            self.ocr_pages += 1
            self.ocr_seconds += page.ocr_seconds
        if page.error is not None:
            self.failed += 1

    @property
    def ocr_share(self) -> float | None:
        """OCR's share of the work spent on the pages: OCR / (OCR + reading + model)."""
        work = self.ocr_seconds + self.read_seconds + self.model_seconds
        return self.ocr_seconds / work if work > 0 else None

    def lines(self, workers: int = 1) -> list[str]:
        rate = self.pages / self.wall_seconds if self.wall_seconds > 0 else float("nan")
        failed = f" ({self.failed} failed: see the lines above)" if self.failed else ""
        lines = [
            f"{self.pages} pages{failed}, {self.words} words, {self.entities} entities in "
            f"{self.wall_seconds:.1f} s: {rate:.2f} pages/s"
        ]
        share = self.ocr_share
        if self.ocr_pages and share is not None:
            side = f" in {workers} worker processes" if workers > 1 else ""
            lines.append(
                f"OCR {share:.0%} of the page time: OCR {self.ocr_seconds:.1f} s over {self.ocr_pages} pages{side}, "
                f"model {self.model_seconds:.1f} s, reading {self.read_seconds:.1f} s"
            )
        else:
            lines.append(
                f"no OCR (words from annotation JSON): model {self.model_seconds:.1f} s, reading {self.read_seconds:.1f} s"
            )
        return lines + ([self.settings] if self.settings else [])
