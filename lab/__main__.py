"""Run the CLI as `python -m lab`."""

from lab.cli import main

raise SystemExit(main())
