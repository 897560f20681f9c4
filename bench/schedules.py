"""How fast the pure schedule code answers, in one process, no database.

Two figures, each the best and median of several rounds:

* "who is on call now" for 1,000 schedules, each of 3 layers (weekly, daily, 12-hourly) with
  restrictions and 50 overrides, in zones with and without DST (target: under 100 ms);
* "a year of shifts" (final, per layer and gaps) for one such schedule (target: under 50 ms).

The first round runs with cold per-zone caches, as after a restart; later rounds warm.

    python bench/schedules.py
    python bench/schedules.py --schedules 1000 --rounds 7 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock

from tocsin.schedules import wallclock
from tocsin.schedules.definition import (
    LayerDef,
    OverrideDef,
    Restriction,
    Rotation,
    ScheduleDef,
    Weekday,
)
from tocsin.schedules.oncall import who_is_on_call
from tocsin.schedules.shifts import compute_shifts

ZONES = (
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/London",
)
NOW = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # inside New York's repeated hour
WEEKDAYS = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


def local(*fields: int) -> datetime:
    """A wall-clock reading in the schedule's zone, as handoffs are given."""
    return datetime(*fields)  # noqa: DTZ001 - naive on purpose


def build_schedule(rng: random.Random, overrides: int) -> ScheduleDef:
    people = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(8)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    layers = (
        LayerDef(
            id=uuid.UUID(int=rng.getrandbits(128)),
            name="weekly",
            start=start,
            end=None,
            rotation=Rotation.WEEKLY,
            turn_length=1,
            handoff=local(2025, 1, 6, 9),
            participants=tuple((person,) for person in people[:5]),
        ),
        LayerDef(
            id=uuid.UUID(int=rng.getrandbits(128)),
            name="business hours",
            start=start,
            end=None,
            rotation=Rotation.DAILY,
            turn_length=1,
            handoff=local(2025, 1, 6, 8, 30),
            participants=((people[5],), (people[6], people[7])),
            restrictions=(Restriction(clock(9), clock(17), WEEKDAYS),),
        ),
        LayerDef(
            id=uuid.UUID(int=rng.getrandbits(128)),
            name="nights",
            start=start,
            end=None,
            rotation=Rotation.HOURLY,
            turn_length=12,
            handoff=local(2025, 1, 6, 20),
            participants=tuple((person,) for person in people[2:7]),
            restrictions=(
                Restriction(clock(22), clock(6), WEEKDAYS),
                Restriction(clock(20), clock(8), (Weekday.SAT, Weekday.SUN)),
            ),
        ),
    )
    # Overrides spread over the year around now, a few covering now itself.
    spread = []
    for _ in range(overrides):
        begins = NOW + timedelta(hours=rng.randint(-24 * 180, 24 * 180))
        spread.append(
            OverrideDef(
                id=uuid.UUID(int=rng.getrandbits(128)),
                user_ids=(rng.choice(people),),
                start=begins,
                end=begins + timedelta(hours=rng.randint(1, 48)),
            )
        )
    return ScheduleDef(time_zone=rng.choice(ZONES), layers=layers, overrides=tuple(spread))


def timed(work: Callable[[], object], rounds: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each round (CPU time is what a busy, shared machine
    distorts least)."""
    wall, cpu = [], []
    for _ in range(rounds):
        began, began_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return wall, cpu


def report(what: str, figures: tuple[list[float], list[float]], target_ms: float) -> None:
    """Prints both clocks; the verdict uses CPU time, since on a shared machine wall time
    mostly measures the other processes."""
    wall, cpu = figures
    median_cpu = statistics.median(cpu)
    verdict = "ok" if median_cpu < target_ms else "OVER TARGET"
    print(
        f"{what}:\n  cpu:  cold {cpu[0]:.1f} ms, best {min(cpu):.1f} ms, "
        f"median {median_cpu:.1f} ms (target < {target_ms:.0f} ms: {verdict})\n"
        f"  wall: cold {wall[0]:.1f} ms, best {min(wall):.1f} ms, "
        f"median {statistics.median(wall):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--overrides", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()

    rng = random.Random(4)
    schedules = [build_schedule(rng, args.overrides) for _ in range(args.schedules)]
    wallclock._year_table.cache_clear()

    def everyone_now() -> None:
        for schedule in schedules:
            who_is_on_call(schedule, NOW)

    def a_year() -> None:
        compute_shifts(schedules[0], NOW, NOW + timedelta(days=365))

    lookup = timed(everyone_now, args.rounds)
    wallclock._year_table.cache_clear()
    year = timed(a_year, args.rounds)
    result = compute_shifts(schedules[0], NOW, NOW + timedelta(days=365))
    print(f"{args.schedules} schedules x 3 layers with restrictions x {args.overrides} overrides")
    report(f"who is on call now, all {args.schedules} schedules", lookup, 100)
    report(
        f"a year of shifts for one schedule ({len(result.final)} final shifts, "
        f"{sum(len(shifts) for shifts in result.layers.values())} layer shifts, "
        f"{len(result.gaps)} gaps)",
        year,
        50,
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(everyone_now)
        profiler.runcall(a_year)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
