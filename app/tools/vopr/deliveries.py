"""The network between the fake bank and the platform: notifications delivered through the real `receive()`,
late, out of order, twice (sometimes under a new notification id), with the answer lost, or dropped."""

from __future__ import annotations

import traceback
from datetime import timedelta

from app.bank_inbox import receive as bank_callbacks
from app.banks.protocol import encode_json
from app.platform.errors import CunguanError
from app.tools.vopr.environment import BANK
from app.tools.vopr.fake_bank import Delivery
from app.tools.vopr.world import SeedWorld


class Deliveries(SeedWorld):
    """The bank's notifications on their way to the platform."""

    def _deliver_one(self, delivery: Delivery) -> bool:
        """Deliver through the real receive(); True when the bank got a 200 (OK or DUPLICATE)."""
        raw = encode_json(delivery.body)
        nonce = f"{self.rng.getrandbits(128):032x}"
        try:
            body = bank_callbacks.parse_notification(raw)
            answer = bank_callbacks.receive(self.rt_web, BANK, raw, body, nonce)
        except CunguanError as error:  # the endpoint answers 4xx: a truthful bank should never see that
            self._fail(f"callback {delivery.body['type']} answered {error.code}: {error.message} {error.details!r}")
            return False
        except Exception:  # the endpoint would answer 500
            self._fail(f"callback {delivery.body['type']} raised (HTTP 500): {traceback.format_exc(limit=6)}")
            return False
        if answer not in ("OK", "DUPLICATE"):
            self._fail(f"callback answered {answer!r}")
        self._note(f"deliver {delivery.body['type']} {delivery.body['notification_id'][:8]} -> {answer}")
        self._count(f"callback_{answer.lower()}")
        return True

    def _deliver(self, healthy: bool = False) -> bool:
        due = [d for d in self.bank.outbox if d.due <= self.clock.now]
        if not due:
            return False
        delivery = self.rng.choice(due)  # out of order
        self.bank.outbox.remove(delivery)
        if not healthy and self.rng.random() < self.p_drop:
            self.bank.dropped.append(delivery)
            self._note(f"drop {delivery.body['type']} {delivery.body['notification_id'][:8]}")
            self._count("dropped")
            return True
        delivered = self._deliver_one(delivery)
        answer_lost = not healthy and self.rng.random() < self.p_answer_lost
        if not delivered or answer_lost:  # no 200 seen by the bank: it resends later
            delivery.due = self.clock.now + timedelta(seconds=self.rng.uniform(1, 60))
            self.bank.outbox.append(delivery)
            self._count("resent")
        elif not healthy and self.rng.random() < self.p_dup:
            if self.rng.random() < 0.5:  # some banks resend the same fact under a new notification id
                fresh = {**delivery.body, "notification_id": f"{self.rng.getrandbits(128):032x}"}
                self._deliver_one(Delivery(fresh, delivery.due))
                self._count("duplicated_new_id")
            else:
                self._deliver_one(delivery)
                self._count("duplicated")
        return True
