"""python -m thinksteer_analysis figures|summary|acceptance RUN_DIR ...: the same as the console command
thinksteer-analysis (cli.py)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m thinksteer_analysis"))
