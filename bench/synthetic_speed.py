"""bench/synthetic_speed: how fast crmindex.testing.synthetic generates records on one core.

Reports records/s for contacts, companies and deals (the dataclass objects) and for contact index rows
in batches of 1,000 (what the loaders send), by CPU time (this process) and by wall-clock time.

    python -m bench.synthetic_speed [--contacts 200000] [--seed 42] [--allow-busy]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench.common import LoadWatch, add_load_args, write_results
from crmindex.testing.synthetic import SyntheticCRM


def _rate(n: int, run: Callable[[], Iterable[object]]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in run():
        pass
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return n / max(cpu, 1e-9), n / max(wall, 1e-9)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contacts", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=42)
    add_load_args(p)
    args = p.parse_args(argv)
    load = LoadWatch.begin(args)
    crm = SyntheticCRM(seed=args.seed, contacts=args.contacts)
    print(f"{crm!r}")
    cases: list[tuple[str, int, Callable[[], Iterable[object]]]] = [
        ("contacts", crm.n_contacts, crm.contacts),
        ("companies", crm.n_companies, crm.companies),
        ("deals", crm.n_deals, crm.deals),
        (
            "contact rows (batches of 1,000)",
            crm.n_contacts,
            lambda: (r for b in crm.batches("contacts", 1000) for r in b),
        ),
    ]
    rates: dict[str, Any] = {}
    for name, n, run in cases:
        cpu, wall = _rate(n, run)
        rates[name] = {"records": n, "per_s_cpu": round(cpu), "per_s_wall": round(wall)}
        print(f"  {name:34s} {n:>9,}  {cpu:>10,.0f}/s cpu  {wall:>10,.0f}/s wall")
    figures = {"params": vars(args), "rates": rates}
    print(f"written {write_results('synthetic_speed', figures, load)}")
    return figures


if __name__ == "__main__":
    main()
