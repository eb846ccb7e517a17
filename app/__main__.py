"""`python -m app ...` is the same as the `sdunet-explorer` command."""

from app.cli import main

raise SystemExit(main())
