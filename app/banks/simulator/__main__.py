"""`python -m app.banks.simulator serve|pay ...`"""

from app.banks.simulator.cli import bank_sim

bank_sim(prog_name="python -m app.banks.simulator")
