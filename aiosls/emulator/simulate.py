"""Simulated writers and consumers, so the emulator shows real, moving lag.

Pure and synchronous like :mod:`.state`: :meth:`Simulator.tick` reads the state's clock and
applies everything that happened since the last tick, in time order, so the result depends
only on the clock and never on how often ``tick`` runs. The emulator calls it every 0.5 s
with real time; a test calls it (or :meth:`aiosls.emulator.Emulator.advance`) with a fake
clock and gets exactly the lag the seed implies.

- **Writers**: every logstore with ``write_rate > 0`` receives that many packages per second
  on each readwrite shard, evenly spaced (read-only shards receive nothing).
- **Consumers**: every group with ``simulate`` set acts every :data:`COMMIT_INTERVAL` seconds
  (counted from the seed time): it heartbeats (so it holds the shards, like a real consumer)
  and commits a checkpoint per shard with ``update_time`` = that moment:

  ``healthy``   commits the end cursor (caught up; lag stays under the commit interval);
  ``slow``      advances through the data at half speed (half the write rate): lag grows
                by 0.5 s every second;
  ``stalled``   commits its starting checkpoint again each time: ``update_time`` moves, the
                checkpoint does not;
  ``stopped``   neither heartbeats nor commits (a dead consumer);
  ``rewinding`` acts like ``healthy`` until :data:`REWIND_AFTER` seconds after the seed time,
                then jumps back to the oldest retained data once and from there advances at
                the write rate (1 s of data per second), so its lag stays where the jump put it.

  Simulated consumers start from their seeded checkpoints (no checkpoint: the end cursor)
  and commit forcibly, whoever holds the shard: a client's own commit to a simulated group
  lasts until the group's next one.
- **Retention**: packages older than the logstore's TTL (``ttl_seconds`` when seeded) expire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from .state import ConsumerGroupState, EmulatorState, LogstoreState, decode_cursor, encode_cursor, to_ns

__all__ = ["COMMIT_INTERVAL", "MAX_EVENTS", "REWIND_AFTER", "SIMULATIONS", "Simulator"]

#: The behaviours a seeded consumer group can simulate.
SIMULATIONS: Final = ("healthy", "slow", "stalled", "stopped", "rewinding")
#: Seconds between two commits (and heartbeats) of a simulated consumer.
COMMIT_INTERVAL: Final = 2
#: Seconds after the seed time at which a ``rewinding`` group jumps back.
REWIND_AFTER: Final = 10
#: Most consumer events one :meth:`Simulator.tick` replays (two hours at one per 2 s).
MAX_EVENTS: Final = 3_600
_NS: Final = 1_000_000_000
_PERIOD: Final = COMMIT_INTERVAL * _NS


def write_step(rate: float) -> int:
    """Nanoseconds between two packages written at ``rate`` packages per second."""
    return max(1, round(_NS / rate))


class Simulator:
    """Drives the writers, consumers and retention of ``state`` from ``start`` on."""

    def __init__(self, state: EmulatorState, start: datetime) -> None:
        self.state = state
        #: Seed time in ns: consumer events happen at ``start + k * COMMIT_INTERVAL``.
        self.start_ns = to_ns(start)
        #: Time (ns) up to which everything has been applied.
        self.now_ns = self.start_ns

    def tick(self) -> None:
        """Apply writes, commits, heartbeats and expiry from the last tick up to the clock."""
        now = to_ns(self.state.clock())
        if now <= self.now_ns:
            return
        stores = [ls for p in self.state.projects.values() for ls in p.logstores.values()]
        groups = [
            (ls, cg)
            for p in self.state.projects.values()
            for ls in p.logstores.values()
            for cg in ls.consumer_groups.values()
            if cg.simulate is not None
        ]
        k = (self.now_ns - self.start_ns) // _PERIOD + 1
        last = (now - self.start_ns) // _PERIOD
        # Consumer events are replayed one by one (writes interleaved) for exact lag; a clock
        # that jumps hours ahead replays only the last MAX_EVENTS of them, and none without groups.
        k = max(k, last + 1 - (MAX_EVENTS if groups else 0))
        event = self.start_ns + k * _PERIOD
        while event <= now:
            self._write(stores, event)
            for ls, cg in groups:
                self._act(ls, cg, event)
            event += _PERIOD
        self._write(stores, now)
        self.now_ns = now

    @staticmethod
    def _write(stores: list[LogstoreState], until_ns: int) -> None:
        for ls in stores:
            if ls.write_rate > 0 and ls.next_write_ns <= until_ns:
                step = write_step(ls.write_rate)
                n = (until_ns - ls.next_write_ns) // step + 1
                for shard in ls.shards.values():
                    if shard.status == "readwrite":
                        shard.append(n, ls.next_write_ns, step)
                ls.next_write_ns += n * step
            ls.expire(until_ns)

    def _act(self, ls: LogstoreState, cg: ConsumerGroupState, at_ns: int) -> None:
        mode = cg.simulate
        if mode == "stopped":
            return
        self._heartbeat(ls, cg)
        elapsed = _PERIOD
        rewind = mode == "rewinding" and not cg.rewound and at_ns - self.start_ns >= REWIND_AFTER * _NS
        if rewind:
            cg.rewound = True
        for sid, shard in ls.shards.items():
            newest = shard.end_cursor - 1
            pos = cg.positions.get(sid, newest)
            if mode == "healthy" or (mode == "rewinding" and not cg.rewound):
                pos = newest
            elif rewind:
                pos = shard.begin_cursor - 1
            elif mode == "slow":
                pos = min(newest, pos + elapsed // 2)
            elif mode == "rewinding":
                pos = min(newest, pos + elapsed)
            cg.positions[sid] = pos
            entry = cg.checkpoints.get(sid)
            if mode == "stalled" and entry is not None and entry["checkpoint"]:
                checkpoint = entry["checkpoint"]  # byte for byte the same, even if expired
            else:
                checkpoint = encode_cursor(shard.cursor_at(pos + 1))
            cg.checkpoints[sid] = {
                "shard": sid,
                "checkpoint": checkpoint,
                "updateTime": at_ns // 1000,
                "consumer": cg.sim_consumer,
            }

    def _heartbeat(self, ls: LogstoreState, cg: ConsumerGroupState) -> None:
        now = self.state.clock().timestamp()
        cg.expire(now)
        cg.heartbeats[cg.sim_consumer] = now
        cg.rebalance(ls.shards)


def start_positions(cg: ConsumerGroupState, ls: LogstoreState) -> None:
    """Set a simulated group's starting positions from its checkpoints (none: the end)."""
    for sid, shard in ls.shards.items():
        entry = cg.checkpoints.get(sid)
        cp = entry["checkpoint"] if entry else ""
        cg.positions[sid] = decode_cursor(cp) - 1 if cp else shard.end_cursor - 1
