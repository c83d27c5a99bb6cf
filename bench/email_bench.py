"""Email benchmark: our SMTP receiver (to committed message plus bot decision) against a
bare aiosmtpd server that only counts, in the same run.

    .venv/bin/python bench/email_bench.py [--clients 20] [--seconds 8]

Servers and clients run in separate processes on this machine. Each client is one
aiosmtplib connection sending mail after mail (as a forwarding MTA does); a mail
counts once the server answered 250 to its DATA, which RelayDesk does only after
the ingest transaction (dedup, contact, conversation, message, bot decision, outbox
row) committed. RelayDesk's replies go to a separate counting relay process.

A peer in the same run: django-helpdesk (from PyPI, in a virtualenv the benchmark
makes under bench/.peers/) takes the same kind of mail from a local directory into
its own SQLite (bench/peers/django_helpdesk.py). ``--no-peer`` skips it.

Details go to bench/results/email.json and email.md; the last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PEERS = ROOT / "bench" / ".peers"
DJANGO_HELPDESK = "django-helpdesk==2.6.1"
SUPPORT = "support@shop.example"
QUESTIONS = [
    "How long does a refund take?",
    "退款多久到账？",
    "How do I return an item?",
    "我想退货怎么办",
    "My parcel arrived damaged and the box was wet, what should I do?",
    "請問保固多久？",
]


# -- servers (run in their own process) ---------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 OK"


async def _bare() -> None:
    from aiosmtpd.smtp import SMTP

    counter = _Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(counter, decode_data=False), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


async def _router(relay_port: int, url: str) -> None:
    sys.path.insert(0, str(ROOT))
    import yaml
    from aiohttp import web

    from router.app import create_app
    from router.config import load_config
    from router.keys import SMTP_RECEIVER

    workdir = Path(tempfile.mkdtemp(prefix="relaydesk-email-bench-"))
    raw = {
        "server": {"data_dir": str(workdir), "secret_key": "bench-secret-key-0123456789"},
        "storage": {
            "url": url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
            "auto_upgrade": True,
        },
        "knowledge": {"path": str(ROOT / "knowledge" / "demo")},
        "channels": {
            "email": {
                "enabled": True,
                "addresses": [SUPPORT],
                "relay": {"host": "127.0.0.1", "port": relay_port, "security": "none"},
                "smtp": {"enabled": True, "port": 0},
            }
        },
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(raw))
    app = create_app(load_config(workdir / "config.yaml"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    print(app[SMTP_RECEIVER].port, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# -- clients (run in their own process) ---------------------------------------------


def _mail(n: int, client: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"customer-{client}-{n}@example.net"
    mail["To"] = SUPPORT
    mail["Subject"] = f"Order {client}-{n}"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    mail.set_content(QUESTIONS[(n + client) % len(QUESTIONS)] + "\n\nThanks,\nA customer\n")
    return mail


async def closed_loop(port: int, clients: int, seconds: float) -> dict[str, Any]:
    import aiosmtplib

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def run(client: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        n = 0
        while time.perf_counter() < deadline:
            mail = _mail(n, client)
            started = time.perf_counter()
            await smtp.send_message(mail)
            latencies.append(time.perf_counter() - started)
            n += 1
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "mails": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


# -- the orchestrator ---------------------------------------------------------------


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        raise RuntimeError(f"{args} did not start")
    return process, int(port)


def _client(port: int, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(
        [
            *(sys.executable, __file__, "--client", str(port)),
            *("--clients", str(args.clients), "--seconds", str(args.seconds)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def django_helpdesk(count: int) -> dict[str, Any]:
    """django-helpdesk's intake of ``count`` mails (the benchmark's own) from a local
    directory, in a virtualenv of its own (made once, kept under bench/.peers/)."""
    venv = PEERS / "django-helpdesk"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.read_text() != DJANGO_HELPDESK:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", DJANGO_HELPDESK], check=True
        )
        stamp.write_text(DJANGO_HELPDESK)
    maildir = Path(tempfile.mkdtemp(prefix="django-helpdesk-mail-"))
    for n in range(count):
        (maildir / f"{n:06d}.eml").write_bytes(_mail(n, 1 + n % 20).as_bytes())
    out = subprocess.run(
        [str(python), str(ROOT / "bench" / "peers" / "django_helpdesk.py"), str(maildir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = dict(json.loads(out.strip().splitlines()[-1]))
    result["per_second"] = result["mails"] / result["seconds"]
    return result


def orchestrate(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {
        "clients": args.clients,
        "seconds": args.seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    processes: list[subprocess.Popen[str]] = []
    try:
        bare, bare_port = _spawn("--serve", "bare")
        processes.append(bare)
        results["bare"] = _client(bare_port, args)
        relay, relay_port = _spawn("--serve", "bare")
        processes.append(relay)
        router, router_port = _spawn("--serve", "router", "--relay-port", str(relay_port))
        processes.append(router)
        results["router"] = _client(router_port, args)
        router.terminate()
        router.wait(timeout=30)
        if args.pg:
            router, router_port = _spawn(
                "--serve", "router", "--relay-port", str(relay_port), "--db", args.pg
            )
            processes.append(router)
            results["router_postgresql"] = _client(router_port, args)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    if not args.no_peer:
        results["django_helpdesk"] = django_helpdesk(args.peer_mails)
    ratio = results["router"]["per_second"] / results["bare"]["per_second"]
    results["throughput_ratio"] = ratio
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "email.json").write_text(json.dumps(results, indent=2) + "\n")
    r, b = results["router"], results["bare"]
    lines = [
        "# Email benchmark",
        "",
        f"`bench/email_bench.py --clients {args.clients} --seconds {args.seconds}`, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite{' and PostgreSQL' if args.pg else ''}.",
        "",
        "| measure | RelayDesk SMTP receiver | bare aiosmtpd (counts only) | target |",
        "|---|---|---|---|",
        f"| mails/s accepted ({args.clients} connections, closed loop) "
        f"| {r['per_second']:.0f} | {b['per_second']:.0f} | ratio ≥ 0.5 |",
        f"| p50 / p99 per mail | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms "
        f"| {b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms | |",
        f"| throughput ratio | {ratio:.3f} | 1 | ≥ 0.5 |",
    ]
    if "django_helpdesk" in results:
        peer = results["django_helpdesk"]
        times = r["per_second"] / peer["per_second"]
        results["times_django_helpdesk"] = times
        lines.append(
            f"| django-helpdesk {DJANGO_HELPDESK.split('==')[1]} taking {peer['mails']} mails "
            f"from a local folder into SQLite ({peer['tickets']} tickets, acknowledgements "
            f"to an in-memory mail backend): mails/s | {peer['per_second']:.0f} "
            f"(RelayDesk {times:.1f}×) | | RelayDesk ≥ 3× |"
        )
        (RESULTS / "email.json").write_text(json.dumps(results, indent=2) + "\n")
    if "router_postgresql" in results:
        pg = results["router_postgresql"]
        lines.append(
            f"| on PostgreSQL: mails/s, p50 / p99, ratio | {pg['per_second']:.0f}, "
            f"{pg['p50_ms']:.1f} / {pg['p99_ms']:.1f} ms, "
            f"{pg['per_second'] / b['per_second']:.3f} | | |"
        )
        results["throughput_ratio_postgresql"] = pg["per_second"] / b["per_second"]
        (RESULTS / "email.json").write_text(json.dumps(results, indent=2) + "\n")
    lines.append("")
    (RESULTS / "email.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if "times_django_helpdesk" in results:
        print(f"email_times_django_helpdesk: {results['times_django_helpdesk']:.2f}")
    print(f"email_throughput_ratio: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    # Internal: the roles of the child processes.
    parser.add_argument("--serve", choices=["router", "bare"])
    parser.add_argument("--relay-port", type=int)
    parser.add_argument(
        "--pg", default="", help="also measure on this PostgreSQL database (its own: it fills)"
    )
    parser.add_argument("--db", default="")
    parser.add_argument("--no-peer", action="store_true", help="skip django-helpdesk")
    parser.add_argument("--peer-mails", type=int, default=1000)
    parser.add_argument("--client", type=int)
    args = parser.parse_args()
    if args.serve == "router":
        import logging

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(_router(args.relay_port, args.db))
    elif args.serve == "bare":
        asyncio.run(_bare())
    elif args.client:
        print(json.dumps(asyncio.run(closed_loop(args.client, args.clients, args.seconds))))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
