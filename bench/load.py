"""Mixed load on real `relaydesk serve` processes, with a ledger, and kill -9 if asked.

    .venv/bin/python bench/load.py [--nodes 1,2,4] [--messages 4000] [--kills 0]
                                   [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Web-chat visitors (websockets), bridge customers (signed HTTP), mail customers (SMTP,
to the nodes' receivers) and Telegram chats (webhook updates as Telegram posts them;
replies to a local Bot API) write through round-robin TCP proxies in front of the
nodes (tests/support/load.py); each customer
waits for its message to be acknowledged before the next, as a person does. With
one node and no --pg the store is SQLite; with --pg every node shares one new
PostgreSQL database. For each node count: messages per second, p50/p99 of the
acknowledgement and of the reply per channel, and, on PostgreSQL, what each message
cost the database (commits, rows written and WAL bytes, from pg_stat_database and
the WAL position). The ratios are to one node in the same run. On this 2-core machine
the nodes, the proxy, the customers and PostgreSQL share two cores: several nodes
prove correctness here, not scale. With --kills K, K random nodes are killed with
SIGKILL at random moments and restarted, and the ledger is checked (the durability
run: 10,000 messages is `--messages 10000 --kills 5`).

Details go to bench/results/load.json and load.md; the last line is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.load import LoadSettings, run_load, scratch_database  # noqa: E402

RESULTS = ROOT / "bench" / "results"


async def database_cost(url: str) -> dict[str, int]:
    """Commits, rows written and the WAL position of ``url``'s database, now."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted, "
                        "pg_current_wal_lsn() - '0/0'::pg_lsn "
                        "FROM pg_stat_database WHERE datname = current_database()"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return {"commits": int(row[0]), "rows": int(row[1]), "wal_bytes": int(row[2])}


async def one(args: argparse.Namespace, nodes: int, folder: Path) -> dict[str, Any]:
    if not args.pg:
        url = f"sqlite+aiosqlite:///{folder / 'relaydesk.db'}"
        return await _measured(args, nodes, folder, url, None)
    async with scratch_database(args.pg, "relaydesk_load") as url:
        return await _measured(args, nodes, folder, url, url)


async def _measured(
    args: argparse.Namespace, nodes: int, folder: Path, url: str, pg: str | None
) -> dict[str, Any]:
    settings = LoadSettings(
        folder=folder,
        database=url,
        nodes=nodes,
        messages=args.messages,
        visitors=args.visitors,
        bridge_senders=args.bridge_senders,
        mail_senders=args.mail_senders,
        telegram_chats=args.telegram_chats,
        kills=args.kills,
        seconds=args.seconds,
        seed=args.seed,
    )
    before = await database_cost(pg) if pg else None
    result = await run_load(settings)
    figures = result.figures()
    if pg and before:
        after = await database_cost(pg)
        acked = max(figures["messages_acked"], 1)
        # Includes the nodes' own background work during the run (sweeps, leases).
        figures["per_message"] = {k: (after[k] - before[k]) / acked for k in after}
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for nodes in [int(n) for n in args.nodes.split(",")]:
        if nodes > 1 and not args.pg:
            raise SystemExit("several nodes need --pg")
        with tempfile.TemporaryDirectory(prefix="relaydesk-load-") as tmp:
            runs.append(await one(args, nodes, Path(tmp)))
        print(json.dumps(runs[-1]["by_channel"]), file=sys.stderr)
    base = runs[0]["messages_per_second"] or 1.0
    for run in runs:
        run["ratio_to_one_node"] = (run["messages_per_second"] or 0.0) / base
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            k: getattr(args, k)
            for k in (
                "messages",
                "visitors",
                "bridge_senders",
                "mail_senders",
                "telegram_chats",
                "kills",
                "seed",
            )
        },
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", default="1", help="node counts, e.g. 1,2,4")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--bridge-senders", type=int, default=20)
    parser.add_argument("--mail-senders", type=int, default=10)
    parser.add_argument("--telegram-chats", type=int, default=10)
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "durability" if args.kills else "load"
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# {'Durability' if args.kills else 'Load'} benchmark",
        "",
        f"`bench/load.py --nodes {args.nodes} --messages {args.messages} --kills {args.kills}"
        f"{' --pg …' if args.pg else ''}`, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {args.visitors} web-chat visitors, "
        f"{args.bridge_senders} bridge customers, {args.mail_senders} mail customers and "
        f"{args.telegram_chats} Telegram chats, each waiting for its acknowledgement.",
        "",
        "| nodes | store | msg/s | × 1 node | commits / rows / WAL bytes per msg "
        "| kills | faults | Telegram replies sent again (no idempotency key) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def ms(spread: dict[str, float | None]) -> str:
        return " / ".join("–" if v is None else f"{v:.0f}" for v in spread.values()) + " ms"

    for run in results["runs"]:
        cost = run.get("per_message")
        spent = (
            f"{cost['commits']:.1f} / {cost['rows']:.1f} / {cost['wal_bytes']:.0f}" if cost else "–"
        )
        lines.append(
            f"| {run['nodes']} | {run['database']} | {run['messages_per_second']:.0f} "
            f"| {run['ratio_to_one_node']:.2f} | {spent} "
            f"| {run['kills']} | {sum(run['faults'].values())} | {run['telegram_resent']} |"
        )
    lines += [
        "",
        "Per channel: messages acknowledged, acknowledgement and first-reply p50 / p99.",
        "",
        "| nodes | channel | acked | ack p50 / p99 | reply p50 / p99 |",
        "|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        for channel, figures in run["by_channel"].items():
            lines.append(
                f"| {run['nodes']} | {channel} | {figures['acked']} | {ms(figures['ack_ms'])} "
                f"| {ms(figures['reply_ms'])} |"
            )
    lines.append("")
    (RESULTS / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    faults = sum(sum(run["faults"].values()) for run in results["runs"])
    if args.kills:
        print(f"durability_faults: {faults}")
    else:
        print(
            f"load_msgs_per_s_{results['runs'][-1]['nodes']}_nodes: "
            f"{results['runs'][-1]['messages_per_second']:.0f}"
        )


if __name__ == "__main__":
    main()
