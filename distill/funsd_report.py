"""The old name of `python -m distill.studies.funsd`: says so in one line (the study moved to distill/studies/)."""

import sys

if __name__ == "__main__":
    print(
        "python -m distill.funsd_report moved: run `python -m distill.studies.funsd` (same options)",
        file=sys.stderr,
    )
    sys.exit(2)
