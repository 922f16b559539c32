"""`python -m orchardist` is the `orchardist` command."""

from orchardist.cli.main import main

main()
