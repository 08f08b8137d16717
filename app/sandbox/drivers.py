"""Drive workflow paths through the deal services in the simulation sandbox.

Every product runs at the services level: for each path a real deal is created in the sandbox database from
a sample intake form of the product for the city, and each transition is brought about the way it happens
in production — a person's event through the deal services (confirm, title transfer, manual actions with a
reason and their inputs), money through the bank simulator (/sim/pay), bank answers through the platform's
jobs and the simulator's signed callbacks, deadlines by moving the sandbox clock and firing the due timers.
A guard is met by what the path needs: the amount paid in (full, partial, enough for the next month), the
lease length on the form, or earlier stages run first. What this city's config cannot bring about is
`Unreachable` (a note); anything else that goes wrong is a problem."""

from __future__ import annotations

import sqlite3
from collections import deque
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from app.deals.sample_forms import form_has, product_form, sample_form
from app.domain.cities import CityConfig
from app.domain.money import parse_yuan
from app.domain.rent import plan_rent
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from app.sandbox.bank import BankSnapshot, SandboxBank
from app.sandbox.harness import People, QuietLog, SandboxClock
from app.sandbox.path_run import PathRun
from app.sandbox.steps import FAILURES, FAILURES_OF_A_PATH, LAST_GUARDS, Step, Unreachable, wants
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.parameters import resolve

MAX_UNITS = 24  # months or stages run before the last one: more is not a path worth simulating


@dataclass(frozen=True)
class _Snapshot:
    """The sandbox where paths part: both databases, the clock, how far the deal's timeline was read."""

    platform: sqlite3.Connection
    bank: BankSnapshot
    now: datetime
    seen_event_id: int


# --- one product ----------------------------------------------------------------------------------------


class ProductDriver:
    """Runs the paths of one product of one city in the sandbox."""

    def __init__(
        self,
        rt: Runtime,
        bank: SandboxBank,
        clock: SandboxClock,
        city: CityConfig,
        product: str,
        people: People,
        log: QuietLog,
    ) -> None:
        self.rt, self.bank, self.clock, self.city, self.people, self.log = rt, bank, clock, city, people, log
        self.config = city.product(product)
        self.variant = rt.products.get(product)  # its declaration: base form and base product
        self.definition: WorkflowDefinition = rt.workflow(self.config.workflow_id, self.config.workflow_version)
        self.params = resolve(self.definition.parameters, self.config.overrides())
        self.by_edge = {(t.source, t.event, t.target): t for t in self.definition.transitions}
        self.imports = 0

    def run_all(self, paths: list[tuple[Transition, ...]]) -> list[Exception | None]:
        """Bring every path about, each on a deal of its own as far as it is its own: paths with the same
        beginning share it (one deal goes through it once; where they part the sandbox is snapshotted and
        each continues from the snapshot). Per path: None, or why it failed (Unreachable, PathProblem,
        BankProblem, a service's error)."""
        outcomes: dict[int, Exception | None] = {}
        runs: list[tuple[int, PathRun]] = []
        for index, path in enumerate(paths):
            try:
                runs.append((index, PathRun(self, path)))
            except Unreachable as why:
                outcomes[index] = why
        groups: dict[tuple[int | None, bool], list[tuple[int, PathRun]]] = {}
        for index, run in runs:
            groups.setdefault(run.creation(), []).append((index, run))
        for group in groups.values():
            lead = group[0][1]
            try:
                lead.create()
            except Exception as error:  # a bug met on the way is a finding about these paths, not a crash
                outcomes.update(dict.fromkeys((index for index, _ in group), error))
                continue
            for _, run in group:
                run.deal_id = lead.deal_id
            self._explore(group, 0, outcomes)
        return [outcomes.get(index) for index in range(len(paths))]

    def _explore(self, group: list[tuple[int, PathRun]], cursor: int, outcomes: dict[int, Exception | None]) -> None:
        """Run the paths of `group` (one deal, all at `cursor`) to their ends."""
        lead = group[0][1]
        done = [index for index, run in group if cursor >= len(run.plan)]
        if done:
            try:
                self.bank.check(self.rt)  # nothing refused or failed on the way
                outcomes.update(dict.fromkeys(done))
            except FAILURES_OF_A_PATH as error:
                outcomes.update(dict.fromkeys(done, error))
        group = [(index, run) for index, run in group if cursor < len(run.plan)]
        branches: dict[tuple[Step, bool], list[tuple[int, PathRun]]] = {}
        for index, run in group:
            branches.setdefault(run.step_key(cursor), []).append((index, run))
        saved = self._snapshot(lead) if len(branches) > 1 else None
        for number, branch in enumerate(branches.values()):
            if number and saved is not None:
                self._restore(saved, branch)
            self._step(branch, cursor, outcomes)

    def _step(self, branch: list[tuple[int, PathRun]], cursor: int, outcomes: dict[int, Exception | None]) -> None:
        lead = branch[0][1]
        try:
            fired = lead.iterate(cursor)
        except Exception as error:  # a bug met on the way is a finding about these paths, not a crash
            outcomes.update(dict.fromkeys((index for index, _ in branch), error))
            return
        following: dict[int, list[tuple[int, PathRun]]] = {}
        for index, run in branch:
            run.deal_id, run.seen_event_id = lead.deal_id, lead.seen_event_id
            try:
                following.setdefault(run.advance(cursor, fired), []).append((index, run))
            except FAILURES_OF_A_PATH as error:
                outcomes[index] = error
        saved = self._snapshot(lead) if len(following) > 1 else None
        for number, (after, rest) in enumerate(following.items()):
            if number and saved is not None:
                self._restore(saved, rest)
            self._explore(rest, after, outcomes)

    def _snapshot(self, lead: PathRun) -> _Snapshot:
        platform = sqlite3.connect(":memory:")
        with closing(sqlite3.connect(self._platform_file())) as live:
            live.backup(platform)
        return _Snapshot(platform, self.bank.snapshot(), self.clock.now, lead.seen_event_id)

    def _restore(self, saved: _Snapshot, runs: list[tuple[int, PathRun]]) -> None:
        self.rt.db.engine.dispose()  # no pooled connection keeps what the snapshot undoes
        with closing(sqlite3.connect(self._platform_file())) as live:
            saved.platform.backup(live)
        self.bank.restore(saved.bank)
        self.clock.now = saved.now
        for _, run in runs:
            run.seen_event_id = saved.seen_event_id

    def _platform_file(self) -> str:
        database = self.rt.db.engine.url.database
        assert database, "the sandbox database is a file"
        return database

    # how many months or stages a path's "last" guard counts, and the loop that runs one more

    def lease_months(self, path: tuple[Transition, ...]) -> int | None:
        """The lease a path implies: as many months as it releases, one more when it never reaches the last;
        never shorter than one payment cycle (earlier months are then run first, see `plan`)."""
        releases = [need for t in path if (need := wants(t)) and need[0] == "last_rent_month"]
        if not releases:
            return None
        implied = len(releases) + (0 if any(value for _, value in releases) else 1)
        return max(implied, int(self.installment.get("months_per_installment", 1)))

    def _units(self, guard: str, path: tuple[Transition, ...]) -> int:
        """How many months (of the lease) or stages (of the release rule) the path's deal has."""
        if guard == "last_rent_month":
            return self.lease_months(path) or 0
        return len(self.config.release.tranches) if self.config.release else 0

    @cached_property
    def installment(self) -> dict[str, str]:
        """The shortest payment cycle the form offers whose rent this city supervises (深圳 exempts the first
        three months of an installment: paying monthly, nothing would be held)."""
        if not form_has(self.config, self.variant, "months_per_installment"):
            return {}
        form = sample_form(self.config, self.variant)
        monthly, deposit = parse_yuan(form["monthly_rent_fen"]), parse_yuan(form.get("deposit_fen") or "0")
        exempt = (self.params["rent_months_exempt"], self.params["deposit_months_exempt"])
        for option in product_form(self.config, self.variant).field("months_per_installment").options:
            try:
                plan_rent(monthly, int(option), deposit, *exempt)
            except ValidationError:
                continue
            return {"months_per_installment": option}
        return {}  # nothing supervised whatever the cycle: creating the deal says so

    def plan(self, path: tuple[Transition, ...]) -> list[Step]:
        """The path's steps, with the earlier stages run first when it needs the last one."""
        steps = [Step(t, False) for t in path]
        guard = next((need[0] for t in path if (need := wants(t)) and need[0] in LAST_GUARDS), None)
        if guard is None:
            return steps
        releases = [need for t in path if (need := wants(t)) and need[0] == guard]
        total = self._units(guard, path)
        reaches_last = any(value for _, value in releases)
        if not reaches_last:
            if total < len(releases) + 1:
                raise Unreachable(f"只有 {total} 期，走不到「非最后一期」")
            return steps
        earlier = total - len(releases)
        if earlier < 0:
            raise Unreachable(f"只有 {total} 期")
        if earlier == 0:
            return steps
        if earlier > MAX_UNITS:
            raise Unreachable(f"需先完成 {earlier} 期")
        loop = self._loop(guard)
        on_loop = {t.source for t in loop}
        entry = next((i for i, t in enumerate(path) if t.source in on_loop), None)
        if entry is None:
            raise Unreachable("路径不经过阶段循环")
        start = next(i for i, t in enumerate(loop) if t.source == path[entry].source)
        one_round = [Step(t, True) for t in loop[start:] + loop[:start]]
        return steps[:entry] + one_round * earlier + steps[entry:]

    def _loop(self, guard: str) -> list[Transition]:
        """The not-last release and the shortest way back to where it was released (no failures, no
        negated guards), e.g. in_progress → awaiting_acceptance → stage_releasing → in_progress."""
        release = next(t for t in self.definition.transitions if t.guard == f"!{guard}")
        queue: deque[tuple[str, list[Transition]]] = deque([(release.target, [])])
        seen = {release.target}
        while queue:
            state, way = queue.popleft()
            if state == release.source:
                return [release, *way]
            for t in self.definition.transitions:
                usable = t.event not in FAILURES and not (t.guard or "").startswith("!") and t.source != t.target
                if t.source == state and usable and t.target not in seen:
                    seen.add(t.target)
                    queue.append((t.target, [*way, t]))
        raise Unreachable(f"找不到回到「{self.definition.label(release.source)}」的流转")
