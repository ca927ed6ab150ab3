"""`python -m diagnose` (and `torchrun -m diagnose`) runs the command line."""

from diagnose.cli import main

if __name__ == "__main__":
    main()
