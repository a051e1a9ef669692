"""Put the project root on sys.path so tests import ``components`` and ``offline`` as the program does."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
