"""``python -m bnnkit``: the same as the ``bnnkit`` command."""

from bnnkit.cli import main

raise SystemExit(main())
