"""The old name of `python -m distill.studies.ocr`: says so in one line (the study moved to distill/studies/)."""

import sys

if __name__ == "__main__":
    print(
        "python -m distill.ocr_report moved: run `python -m distill.studies.ocr` (same options)",
        file=sys.stderr,
    )
    sys.exit(2)
