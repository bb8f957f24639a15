"""Drawing the reading lists: who reads which case, in which order, with which side as A.

Pure Python over plain ids (no ORM), so the draw is the same in the service, the tests and the
benchmark, and a list for thousands of cases costs only the arithmetic.

Rules, each drawn from one seeded ``random.Random`` so the lists can be re-derived:
- k readers per case of every arm, loads balanced per arm (within one read) and, through the
  tie-break on the total, over the whole list;
- within each reader and each arm (each pair type), as many reads with the candidate on A as
  on B (the odd one out alternating between readers and arms);
- every list is shuffled as a whole, so arms interleave at random and a read's position never
  says its arm; then two reads of one imaging study are kept at least ``gap`` other reads
  apart (a reader comparing two arms of one study side by side could guess which is which);
- practice cases go to every reader, ahead of the real ones, in an order and with sides drawn
  per reader (balanced like the real reads) from a generator of their own: the real part of
  every list is exactly the list the same seed draws without practice cases, so practice
  cases never count in the balance of real reads.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

# Re-shuffles tried before a list is declared impossible to spread (tiny lists only: in a
# realistic list the repair below almost never reaches the end without a free read).
SPREAD_TRIES = 200


@dataclass(frozen=True)
class CaseKey:
    """A case as the draw needs it: its id, its imaging study and its arm (None: no arms)."""

    case: int
    imaging: int
    arm: Hashable


@dataclass(frozen=True)
class Read:
    case: int
    side: str  # where the case's second (candidate) report is shown: "A", "B" or ""


class SpreadImpossible(ValueError):
    """A reader's list cannot keep the reads of one imaging study ``gap`` apart."""


def balanced_sides(count: int, *, extra_to_a: bool, rng: random.Random) -> list[str]:
    """Exactly half the sides A (the odd one out decided by ``extra_to_a``), shuffled."""
    a_count = count // 2 + (1 if count % 2 and extra_to_a else 0)
    sides = ["A"] * a_count + ["B"] * (count - a_count)
    rng.shuffle(sides)
    return sides


def _repair(order: list[CaseKey], gap: int) -> bool:
    """Move reads so no two of one imaging study are within ``gap``; False if stuck at the end."""
    last: dict[int, int] = {}
    n = len(order)
    for i in range(n):
        imaging = order[i].imaging
        if imaging in last and i - last[imaging] <= gap:
            for j in range(i + 1, n):
                other = order[j].imaging
                if other not in last or i - last[other] > gap:
                    order[i], order[j] = order[j], order[i]
                    imaging = other
                    break
            else:
                return False
        last[imaging] = i
    return True


def spread(items: Sequence[CaseKey], *, gap: int, rng: random.Random) -> list[CaseKey]:
    """``items`` in a random order with the reads of one imaging study ``gap`` apart."""
    for _ in range(SPREAD_TRIES):
        order = list(items)
        rng.shuffle(order)
        if gap <= 0 or _repair(order, gap):
            return order
    raise SpreadImpossible(
        f"A list of {len(items)} reads cannot keep the reads of one imaging study {gap} "
        "apart; lower the gap or add cases."
    )


def reading_lists_draw(
    *,
    cases: Sequence[CaseKey],
    readers: Sequence[int],
    reads_per_case: int | None,
    pairwise: bool,
    gap: int,
    seed: int,
    practice: Sequence[CaseKey] = (),
) -> dict[int, list[Read]]:
    """Every reader's list, in reading order: the ``practice`` cases first, then the real
    ``cases``. ``reads_per_case`` None: every reader reads every case. Raises SpreadImpossible
    when a list cannot keep the gap."""
    lists = _real_lists_draw(
        cases=cases,
        readers=readers,
        reads_per_case=reads_per_case,
        pairwise=pairwise,
        gap=gap,
        seed=seed,
    )
    if not practice:
        return lists
    # A string seed is hashed with SHA-512 (not Python's salted hash): the same every run.
    rng = random.Random(f"practice:{seed}")
    for index, reader in enumerate(readers):
        if pairwise:
            sides = balanced_sides(len(practice), extra_to_a=index % 2 == 0, rng=rng)
        else:
            sides = [""] * len(practice)
        side_of = {c.case: s for c, s in zip(practice, sides, strict=True)}
        first = [
            Read(case=c.case, side=side_of[c.case]) for c in spread(practice, gap=gap, rng=rng)
        ]
        lists[reader] = first + lists[reader]
    return lists


def _real_lists_draw(
    *,
    cases: Sequence[CaseKey],
    readers: Sequence[int],
    reads_per_case: int | None,
    pairwise: bool,
    gap: int,
    seed: int,
) -> dict[int, list[Read]]:
    rng = random.Random(seed)
    arms: dict[Hashable, list[CaseKey]] = {}
    for case in cases:
        arms.setdefault(case.arm, []).append(case)
    mine: dict[int, dict[Hashable, list[CaseKey]]] = {r: {a: [] for a in arms} for r in readers}
    total = dict.fromkeys(readers, 0)
    for arm, members in arms.items():
        if reads_per_case is None:
            for reader in readers:
                mine[reader][arm] = list(members)
            continue
        order = list(members)
        rng.shuffle(order)
        for case in order:
            # Least loaded in this arm first, then overall, ties at random: per-arm loads differ
            # by at most one and the totals follow.
            ranked = sorted(readers, key=lambda r: (len(mine[r][arm]), total[r], rng.random()))
            for reader in ranked[:reads_per_case]:
                mine[reader][arm].append(case)
                total[reader] += 1
    lists: dict[int, list[Read]] = {}
    for index, reader in enumerate(readers):
        side_of: dict[int, str] = {}
        for arm_index, members in enumerate(mine[reader].values()):
            if pairwise:
                # Alternate which reader (and arm) gets the odd extra A so the panel as a whole
                # stays balanced too.
                extra_to_a = (index + arm_index) % 2 == 0
                sides = balanced_sides(len(members), extra_to_a=extra_to_a, rng=rng)
            else:
                sides = [""] * len(members)
            side_of.update((c.case, s) for c, s in zip(members, sides, strict=True))
        every = [c for members in mine[reader].values() for c in members]
        lists[reader] = [
            Read(case=c.case, side=side_of[c.case]) for c in spread(every, gap=gap, rng=rng)
        ]
    return lists
