"""Callbacks sent several at once (`CallbackSender.deliver_due`): the same notifications arrive as when sent one
by one (dropped never, duplicates twice, held-back ones late), the two copies of a duplicate never in one batch,
and without the reorder fault every notification still arrives in the order it was written."""

from __future__ import annotations

from pathlib import Path

from app.tools.banksim.faults import REORDER_HOLD_S
from tests.integration.simulator_support import make_simulator, running_receiver
from tests.integration.test_bank_simulator_faults import NOTIFICATION_FAULTS, _arrivals_under_faults


def test_batches_keep_the_fault_decisions(tmp_path: Path, keys_dir: Path) -> None:
    sim = make_simulator(tmp_path / "faults.db", keys_dir)
    sender = sim.parts.worker.sender
    with running_receiver() as receiver:
        outbox = _arrivals_under_faults(sim, receiver.url, **NOTIFICATION_FAULTS)
        sim.clock.advance(0.5)
        with sim.parts.store.transaction() as tx:
            batch = tx.due_deliveries(sim.clock(), sender.parallel)
        assert len(batch) > 1 and len({d.notification_id for d in batch}) == len(batch)  # one copy per batch
        while sender.deliver_due():
            pass
        early = sum(1 for body in receiver.bodies if body["type"] == "funds_arrived")
        sim.clock.advance(REORDER_HOLD_S)
        while sender.deliver_due():
            pass
        sender.close()
    sent = sorted(d["body"]["amount_fen"] for d in outbox if d["status"] != "dropped")
    received = [body["amount_fen"] for body in receiver.bodies if body["type"] == "funds_arrived"]
    assert sorted(received) == sent  # duplicates twice, dropped never
    held = {d["body"]["amount_fen"] for d in outbox if d["next_attempt_at"] - d["created_at"] > 0.6}
    assert set(received[early:]) == held - {d["body"]["amount_fen"] for d in outbox if d["status"] == "dropped"}


def test_without_reorder_notifications_keep_their_order(tmp_path: Path, keys_dir: Path) -> None:
    sim = make_simulator(tmp_path / "ordered.db", keys_dir)
    sender = sim.parts.worker.sender
    with running_receiver() as receiver:
        outbox = _arrivals_under_faults(sim, receiver.url, duplicate=0.25, seed=3)
        batches = []
        while attempted := sender.deliver_due():
            batches.append(attempted)
        sender.close()
    assert set(batches) == {1}  # one notify_url: the oldest pending one is the only one due
    written = [d["body"]["amount_fen"] for d in outbox]  # duplicates' copies one after the other
    assert [body["amount_fen"] for body in receiver.bodies if body["type"] == "funds_arrived"] == written
