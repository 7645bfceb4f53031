"""Holds: a receiver that is down costs one attempt per retry period, not one per message.

After a retryable failure a subscription is *held* until its next retry time, the backoff
doubling with each failed probe. While held, its messages are not attempted one by one (each
with its own claim, attempt and settle row, thousands a second under load): they are
*parked* in the outbox (:data:`~sinergia.storage.base.PARKED`), one write each. At the retry
time one *probe* claims a batch of the parked messages and attempts it: success releases
every parked message of the subscription (the notifier's claim loop takes them in bites its
backlog holds, so a long backlog makes no long write); a failure counts an attempt for the
probe's messages, parks them again and holds longer.

A parked message carries its give-up time: when its own retries would all have been made
(:meth:`RetryPolicy.remaining`), never before the probe that follows it. So messages are
given up on the schedule they had before, and a receiver that comes back in time gets them
all.

Holds live in each process. Another process sharing the outbox learns that a receiver is down
by its own first failure; parked messages that no hold of a process covers (a restart, or a
process that died holding them) are found by its sweep of the outbox and probed at once. So
nothing stays parked for good, and each process probes a subscription at most once a period.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sinergia.broker.delivery import RetryPolicy, backoff
from sinergia.storage.base import PARKED

Key = tuple[str, str]   # (tenant, subscription id)


@dataclass(slots=True)
class Hold:
    level: int = 0          # failed probes in a row
    until: float = 0.0      # no attempt before this (time.time())
    probing: bool = False   # a probe is in flight: everything else waits for its outcome
    endpoint: str = ""      # the receiver that failed (a subscription may change it)


class Holds:
    def __init__(self, policy: RetryPolicy, *, grace: float,
                 rand: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self.grace = grace   # a probe's longest attempt: parked messages outlive it
        self._rand = rand
        self._holds: dict[Key, Hold] = {}
        # asked for every message parked, thousands a second: computed once
        self._remaining = [policy.remaining(n) for n in range(policy.max_attempts + 1)]

    def __bool__(self) -> bool:
        return bool(self._holds)

    def __contains__(self, key: Key) -> bool:
        return key in self._holds

    def held(self, key: Key, now: float) -> bool:
        """Messages of ``key`` are to be parked, not attempted."""
        hold = self._holds.get(key)
        return hold is not None and (hold.probing or now < hold.until)

    def failed(self, key: Key, now: float, *, probe: bool, endpoint: str = "") -> None:
        """An attempt to ``endpoint`` failed and may succeed later. Only a probe, or a failure
        once the hold is over, holds longer: attempts already in flight when it began do not."""
        hold = self._holds.get(key)
        if hold is None:
            hold = self._holds[key] = Hold()
        hold.endpoint = endpoint
        if probe:
            hold.probing = False
        elif hold.probing or now < hold.until:
            return
        hold.level += 1
        hold.until = now + backoff(hold.level, base=self.policy.backoff_base,
                                   cap=self.policy.backoff_cap, rand=self._rand)

    def reached(self, key: Key) -> bool:
        """The receiver answered: forget the hold; True if there was one (its parked
        messages are to be released)."""
        return self._holds.pop(key, None) is not None

    def probe_ended(self, key: Key) -> None:
        """A probe ended without an outcome (the outbox could not be read, or it broke):
        probed again when next due."""
        hold = self._holds.get(key)
        if hold is not None:
            hold.probing = False

    def adopt(self, key: Key, now: float) -> None:
        """Parked messages with no hold here (a restart, another process's): probe now."""
        if key not in self._holds:
            self._holds[key] = Hold(until=now)

    def due(self, now: float, endpoint: Callable[[Key], str | None] = lambda key: None
            ) -> list[Key]:
        """The holds whose retry time has come, marked as probing; holds over for longer
        than the longest backoff are forgotten (the receiver gets a fresh start). A hold
        whose subscription now has another ``endpoint`` than the one that failed is due at
        once: the receiver was fixed, there is no reason to wait."""
        keys = []
        for key, hold in list(self._holds.items()):
            if hold.endpoint and not hold.probing and now < hold.until \
                    and endpoint(key) not in (None, hold.endpoint):
                hold.level, hold.until = 0, now
            if hold.probing or now < hold.until:
                continue
            if hold.level and now > hold.until + self.policy.backoff_cap:
                del self._holds[key]
                continue
            hold.probing = True
            keys.append(key)
        return keys

    def park_due(self, key: Key, attempts: int, now: float) -> float:
        """The ``due`` that parks a message with ``attempts`` made: PARKED plus the time it
        is given up at."""
        give_up = now + self._remaining[min(attempts, self.policy.max_attempts)]
        hold = self._holds.get(key)
        if hold is not None:
            give_up = max(give_up, hold.until + self.grace)
        return PARKED + give_up
