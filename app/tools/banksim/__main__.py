"""`python -m app.tools.banksim serve|pay ...`"""

from app.tools.banksim.cli import bank_sim

bank_sim(prog_name="python -m app.tools.banksim")
