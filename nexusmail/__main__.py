"""Allow `python -m nexusmail` (used by the systemd unit)."""

from nexusmail.cli.main import main

raise SystemExit(main())
