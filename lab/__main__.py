"""Run the CLI as `python -m lab`."""

try:
    from lab.cli.app import main
except KeyboardInterrupt:  # Ctrl-C while starting up: nothing ran yet
    raise SystemExit(130) from None

raise SystemExit(main())
