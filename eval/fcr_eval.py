"""The old command path `python -m tfgan3d.eval.fcr_eval MODE ...`, documented before the fcr
evaluation became the package eval/fcr/ (one module per mode): it runs the same command line."""
from tfgan3d.eval.fcr.cli import main

if __name__ == "__main__":
    main()
