"""``python -m kclient ...``: the command line (see kclient.cli)."""

from kclient.cli import main

raise SystemExit(main())
