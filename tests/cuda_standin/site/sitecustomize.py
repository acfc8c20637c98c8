"""Python runs this at start-up when this folder is on PYTHONPATH: the CUDA stand-in, when asked for.

Only with DOCDISTILL_CUDA_STANDIN=1 (tests/cuda_standin explains what it does); every Python
process started with that environment gets it, the bench's memory-probe children included.
"""

import os
import sys
from pathlib import Path

if os.environ.get("DOCDISTILL_CUDA_STANDIN") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout holding tests/
    from tests.cuda_standin import activate

    activate()
