"""Allow `python -m nexusmail` (used by the systemd unit)."""

from nexusmail.cli import main

raise SystemExit(main())
