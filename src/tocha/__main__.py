"""`python -m tocha` runs the command-line interface."""

from tocha.cli import main

raise SystemExit(main())
