"""Where a web-chat message's time goes: py-spy samples the RelayDesk server of
``chat_bench.py`` while 50 visitors ask in a closed loop.

    .venv/bin/pip install py-spy   # a sampling profiler; not a project dependency
    .venv/bin/python bench/profile_chat.py [--seconds 8]

The shares are of the event loop thread's samples (the thread that serves every
request; SQLite writes run on it too). Sampling slows the server, so the rate printed
here is lower than chat_bench's: read the shares, not the rate. Details go to
bench/results/profile.md; the last line printed is the headline.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BENCH = ROOT / "bench" / "chat_bench.py"

# (label, a frame whose inclusive time is the bucket); later buckets exclude earlier ones.
BUCKETS: list[tuple[str, str]] = [
    ("idle: the loop waiting for work (selector)", "EpollSelector.select ("),
    ("bot decision (Bot.decide)", "Bot.decide ("),
    (
        "the rest of the unit of work: contact, conversation, message, reply, outbox row, "
        "commit (Router._store)",
        "Router._store (",
    ),
    ("storing the two chat frames (StoredVisitorStream.append)", "StoredVisitorStream.append ("),
    ("outbox delivery bookkeeping (OutboxDispatcher._deliver)", "OutboxDispatcher._deliver ("),
    ("web-chat socket read/write and JSON (WebChatChannel)", "WebChatChannel."),
    ("aiohttp and asyncio (the rest of the loop)", "BaseEventLoop._run_once"),
]
SQL_FRAMES = {
    "SQLAlchemy ORM session, compile and result handling": re.compile(r"\(sqlalchemy/"),
    "SQLite itself (execute and commit)": re.compile(r"_Cursor\.execute|_Connection\.commit"),
}


def _main_thread_stacks(raw: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any("serve_router" in f for f in frames):
            stacks.append((frames, int(count)))
    return stacks


def _breakdown(stacks: list[tuple[list[str], int]]) -> tuple[int, list[tuple[str, int]]]:
    total = sum(n for _, n in stacks)
    taken: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        for label, marker in BUCKETS:
            if any(marker in f for f in frames):
                taken[label] += n
                break
    rows = [(label, taken[label]) for label, _ in BUCKETS]
    for label, pattern in SQL_FRAMES.items():
        leaf = sum(n for frames, n in stacks if pattern.search(frames[-1]))
        rows.append((f"of all the above, leaf time in {label}", leaf))
    return total, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    server = subprocess.Popen(
        [sys.executable, str(BENCH), "--serve", "router"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    port = server.stdout.readline().strip()
    raw = Path(tempfile.mkdtemp(prefix="relaydesk-profile-")) / "chat.raw"
    try:
        recorder = subprocess.Popen(
            [
                *(spy, "record", "-p", str(server.pid), "-r", "200", "--idle", "--nonblocking"),
                *("-f", "raw", "-o", str(raw), "-d", str(int(args.seconds) + 2)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # py-spy attaches; the load below is what it should see
        url = f"http://127.0.0.1:{port}/api/chat/ws"
        out = subprocess.run(
            [
                *(sys.executable, str(BENCH), "--closed", url),
                *("--visitors", "50", "--seconds", str(args.seconds)),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        recorder.wait(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
    total, rows = _breakdown(_main_thread_stacks(raw))
    lines = [
        "# Where a web-chat message's time goes",
        "",
        f"`bench/profile_chat.py --seconds {args.seconds}`: py-spy at 200 Hz on the server of "
        "`chat_bench.py --serve router` (SQLite), 50 visitors in a closed loop. "
        f"Load under sampling: {out.splitlines()[-1]}",
        "",
        f"Shares of the event-loop thread's {total} samples (each sample counted once, in the "
        "first bucket it falls in):",
        "",
        "| where | share |",
        "|---|---|",
        *(f"| {label} | {100 * n / max(total, 1):.1f}% |" for label, n in rows),
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile.md").write_text("\n".join(lines))
    print("\n".join(lines))
    storing = sum(n for label, n in rows[2:5])
    print(f"chat_storage_share_of_loop: {storing / max(total, 1):.3f}")


if __name__ == "__main__":
    main()
