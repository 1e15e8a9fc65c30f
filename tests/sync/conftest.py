"""The sync tests share the room helpers of tests/messages."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "messages"))
