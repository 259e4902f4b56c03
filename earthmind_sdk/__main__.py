"""``python -m earthmind_sdk`` is the ``earthmind`` command."""
import sys

from .cli import main

sys.exit(main())
