"""The waiting side of a paused gate: wake-ups, UI answers, deadlines."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from wflo_prefect.approvals import artifact
from wflo_prefect.approvals.decision import ApprovalDecision
from wflo_prefect.approvals.errors import ApprovalGateError
from wflo_prefect.approvals.notify import notify_all
from wflo_prefect.approvals.policy import ApprovalPolicy
from wflo_prefect.approvals.prefect_run import (
    pause_run,
    read_answer,
    read_state,
    refresh_form,
    resume_run,
)
from wflo_prefect.approvals.request import beat, channel_list, prefect_timeout
from wflo_prefect.approvals.settings import get_approval_settings
from wflo_prefect.approvals.settle import apply_deadline, resume_answer
from wflo_prefect.approvals.ui_answers import count_ui_answer
from wflo_prefect.approvals.wakeup import RunWatcher
from wflo_prefect.ledger import get_ledger
from wflo_prefect.ledger.approvals import ApprovalRequestRecord
from wflo_prefect.ledger.models import utcnow

__all__ = ["Waiter", "settle_read"]


class Waiter:
    """The waiting side of one gate."""

    def __init__(
        self,
        request: ApprovalRequestRecord,
        policy: ApprovalPolicy,
        flow_run_id: UUID,
    ) -> None:
        self.request = request
        self.policy = policy
        self.flow_run_id = flow_run_id
        self.settings = get_approval_settings()
        self.tiers = [
            channel_list(policy.notify),
            *(channel_list(t.notify) for t in policy.escalation),
        ]
        self.attempt = 0
        self.base_key = ""
        self.last_beat = time.monotonic()
        self.wake: str | None = None
        self.token: str | None = None
        #: The decision, once the waiter has seen the request settled (built once).
        self.decision: ApprovalDecision | None = None

    def pause(self, watcher: RunWatcher) -> None:
        self.attempt += 1
        watcher.arm()
        self.base_key, paused_at = pause_run(
            self.flow_run_id, self.request, self.attempt, prefect_timeout(self.policy)
        )
        watcher.paused(paused_at)
        get_ledger().approvals.transition(
            self.request.id, from_statuses=["pending"], keyset=self.base_key
        )

    def heartbeat(self) -> None:
        if time.monotonic() - self.last_beat >= self.settings.heartbeat_seconds:
            self.last_beat = time.monotonic()
            self.token = beat(self.request.id, self.wake, self.token)

    def seconds_to_deadline(self) -> float:
        deadline = self.request.deadline_at
        if deadline is None:
            return float("inf")
        return max(0.0, (deadline - utcnow()).total_seconds())

    def on_deadline(self) -> bool:
        """Escalate or time out; True when the request is settled."""
        repo = get_ledger().approvals
        current = repo.get(self.request.id) or self.request
        if current.status != "pending":
            self.request = current
            return True
        current, escalated = apply_deadline(current)
        self.request = current
        if escalated and self.base_key:
            # The form's approver select and the artifact list who may answer now.
            refresh_form(self.flow_run_id, self.base_key, current)
            artifact.publish(current)
        if escalated and current.tier < len(self.tiers):
            notify_all(current, self.tiers[current.tier], current.tier)
        return current.status != "pending"

    def take_ui_answer(
        self, current: ApprovalRequestRecord
    ) -> tuple[ApprovalRequestRecord, ApprovalDecision | None] | None:
        """Count an answer submitted in the Prefect UI form (verified first).

        ``current`` is the request as just read from the ledger.

        Prefect may publish the ``Running`` event a moment before the resume's
        transaction (state and answer) is visible: a missing answer is read again
        briefly before it counts as a resume without an answer.
        """
        answer = read_answer(self.flow_run_id, self.base_key)
        for delay in _REREAD_DELAYS if answer is None else ():
            time.sleep(delay)
            answer = read_answer(self.flow_run_id, self.base_key)
            if answer is not None:
                break
        return self.count_answer(answer, current)

    def count_answer(
        self, answer: Mapping[str, Any] | None, current: ApprovalRequestRecord | None = None
    ) -> tuple[ApprovalRequestRecord, ApprovalDecision | None] | None:
        """Verify and count one form answer; refusals are audited and logged, never raised.

        ``current`` is the request as just read (read here when not given).
        """
        if current is None:
            current = get_ledger().approvals.get(self.request.id) or self.request
        return count_ui_answer(current, answer, self.flow_run_id)

    def resume_settled(self, watcher: RunWatcher) -> None:
        """The request is settled and the run still paused: see that it is resumed, once.

        Whoever claims the resume first (this waiter, or the party that recorded
        the decision) resumes the run; the other only waits for it to run again.
        A claimer that dies before resuming is covered: after the slow-poll period
        with the run still paused, the waiter resumes it (Prefect aborts a second
        resume of a run that is no longer paused).
        """
        repo = get_ledger().approvals
        found = repo.with_votes(self.request.id)
        if found is not None:
            self.request, votes = found
            self.decision = ApprovalDecision.from_ledger(self.request, votes)
        decision = self.decision or ApprovalDecision.from_ledger(self.request, [])
        answer = resume_answer(self.request, decision)
        check = False  # the first time, this waiter knows it paused the run itself
        give_up = time.monotonic() + self.settings.fallback_poll_seconds
        delays = iter(_REREAD_DELAYS)
        while True:
            if repo.claim_resume(self.request.id):
                if not resume_run(self.flow_run_id, answer, check=check):
                    repo.release_resume(self.request.id)
                return
            state = read_state(self.flow_run_id)
            if state is None or not state.is_paused():
                return  # the claimer resumed it
            if time.monotonic() >= give_up:
                # The claimer is gone without resuming; Prefect aborts a second resume.
                resume_run(self.flow_run_id, answer, check=True)
                return
            check = True
            watcher.wait(next(delays, _REREAD_DELAYS[-1]))

    def take_resumed(
        self, watcher: RunWatcher, current: ApprovalRequestRecord | None = None
    ) -> bool:
        """The run was resumed: count the form's answer; True when settled, else pause again.

        ``current`` is the request as just read from the ledger (read here when not given).
        """
        repo = get_ledger().approvals
        if current is None:
            current = repo.get(self.request.id) or self.request
        if current.status == "pending":
            counted = self.take_ui_answer(current)
            if counted is not None and counted[1] is not None:
                # This answer settled it, and its vote claimed the resume: no re-read.
                current, self.decision = counted
                self.request = current
                return True
            current = repo.get(self.request.id) or current
        self.request = current
        if current.status != "pending":
            # Settled by a decider while the UI resumed the run: the run already runs.
            repo.claim_resume(current.id)
            return True
        self.pause(watcher)
        return False

    def wait(self) -> ApprovalRequestRecord:
        repo = get_ledger().approvals
        watcher = RunWatcher(self.flow_run_id).start()
        self.wake = watcher.address
        self.token = beat(self.request.id, self.wake, self.token)
        try:
            self.pause(watcher)
            if self.request.tier == 0:
                notify_all(self.request, self.tiers[0], 0)
            poll_at = time.monotonic() + self.settings.fallback_poll_seconds
            while True:
                timeout = min(
                    poll_at - time.monotonic(),
                    self.seconds_to_deadline(),
                    self.settings.heartbeat_seconds,
                )
                changed = watcher.wait(max(timeout, 0.0))
                # Decisions made through wflo are in the ledger before any resume.
                current = repo.get(self.request.id) or self.request
                if current.status != "pending":
                    self.request = current
                    self.resume_settled(watcher)
                    return self.request
                self.heartbeat()
                if changed and watcher.resumed:
                    # A Running event after this pause: resumed (the UI's form), so
                    # read the answer now instead of reading the run first.
                    if self.take_resumed(watcher, current):
                        return self.request
                    continue
                if not changed and time.monotonic() < poll_at and self.seconds_to_deadline() > 0:
                    # Woken only to beat: the run is read from Prefect on its events, the
                    # slow poll or the deadline (a thousand waiting gates would otherwise
                    # read their runs at every heartbeat). At the deadline it is read
                    # first: an answer given in the UI just before it, whose event has not
                    # arrived yet, still counts.
                    continue
                poll_at = time.monotonic() + self.settings.fallback_poll_seconds
                state = read_state(self.flow_run_id)
                if changed and state is not None and state.is_paused():
                    state = settle_read(self.flow_run_id, state, watcher)
                if state is None:
                    raise ApprovalGateError(
                        "The paused flow run disappeared from Prefect",
                        value=str(self.flow_run_id),
                        hint="Check the Prefect API the run reports to",
                    )
                if state.is_paused():
                    if self.seconds_to_deadline() <= 0 and self.on_deadline():
                        self.resume_settled(watcher)
                        return self.request
                    continue
                if state.is_running():
                    if self.take_resumed(watcher):
                        return self.request
                    continue
                raise ApprovalGateError(
                    f"The flow run left its approval gate in state {state.name!r}",
                    value=str(self.flow_run_id),
                    hint=state.message or "It was cancelled or ended from outside the gate",
                )
        finally:
            watcher.close()


# The server may publish a state event a moment before its transaction is visible;
# after an event, re-read briefly instead of waiting for the slow poll.
_REREAD_DELAYS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.5)


def settle_read(flow_run_id: UUID, state: Any, watcher: RunWatcher) -> Any:
    for delay in _REREAD_DELAYS:
        if watcher.wait(delay):
            # Another push arrived (e.g. a decision): let the main loop look at it now.
            watcher.nudge()
            return state
        fresh = read_state(flow_run_id)
        if fresh is None or not fresh.is_paused():
            return fresh
    return state
