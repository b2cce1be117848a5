"""`python -m tfgan3d.eval.fcr MODE ...`: the same as `python -m tfgan3d.eval fcr MODE ...`."""
from tfgan3d.eval.fcr.cli import main

main()
