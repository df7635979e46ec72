"""``python -m lit_optim`` = the ``lit-optim`` console script."""

from lit_optim.tools.main import main

main()
