"""``python -m lit_optim`` = the ``lit-optim`` console script."""

from lit_optim.cli import main

main()
