"""`python -m app.tsa serve|keys|stamp ...`"""

from app.tsa.cli import tsa_cli

tsa_cli(prog_name="python -m app.tsa")
