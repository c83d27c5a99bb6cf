"""`relaydesk kb ask / check / eval / tune`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bot import Bot, BotSettings
from bot.evaluation import evaluate, read_labelled, sample_warnings, tune
from knowledge import find_collisions
from router.config import Config, load_config
from router.front_line import build_bot, build_matcher, cache_dir


def _progress(done: int, total: int) -> None:
    """Indexing a large knowledge base: a progress line on the terminal."""
    if total < 5000 or not sys.stderr.isatty():
        return
    width = 30
    filled = width * done // total
    end = "\n" if done == total else ""
    print(
        f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end=end,
        file=sys.stderr,
        flush=True,
    )


# Raw scores at or above this: the questions are nearly the same text.


# Raw scores at or above this: the questions are nearly the same text.
INDISTINCT_RAW = 92.0


def kb_check(config: Config, path: Path) -> int:
    """Errors: entries the bot cannot tell apart (it would offer both instead of answering).
    Warnings: entries whose questions match each other above the answer threshold."""
    matcher = build_matcher(
        config.knowledge, path=path, progress=_progress, cache=cache_dir(config)
    )
    collisions = find_collisions(matcher, threshold=config.bot.answer_threshold)
    errors = [c for c in collisions if c.duplicate or c.raw >= INDISTINCT_RAW]
    print(f"{len(matcher)} entries in {path}")
    for c in collisions:
        if c.duplicate:
            label = "error: same question"
        elif c.raw >= INDISTINCT_RAW:
            label = f"error: {c.score:.0f} (raw {c.raw:.0f}), too close to tell apart"
        else:
            label = f"warning: {c.score:.0f}"
        print(f"  {label}: {c.entry} ↔ {c.other}: {c.question!r}")
    print(
        f"{len(errors)} error(s), {len(collisions) - len(errors)} warning(s) "
        f"(answer threshold {config.bot.answer_threshold:g})"
    )
    return 1 if errors else 0


def _bar(label: str) -> Callable[[int, int], None]:
    """A progress line on the terminal (nothing when stderr is not one)."""

    def show(done: int, total: int) -> None:
        if not sys.stderr.isatty() or total <= 0:
            return
        width = 30
        filled = width * done // total
        print(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="\n" if done >= total else "",
            file=sys.stderr,
            flush=True,
        )

    return show


def kb_evaluate(config: Config, args: argparse.Namespace) -> int:
    bot = build_bot(config, progress=_progress)
    queries = read_labelled(args.file)
    current = evaluate(bot, queries, progress=_bar("measuring"))
    settings, met = tune(
        bot,
        queries,
        max_wrong=args.max_wrong,
        min_oos_recall=args.min_oos_recall,
        progress=_bar("matching for tuning"),
    )
    tuned = evaluate(Bot(matcher=bot.matcher, settings=settings, texts=bot.texts), queries)
    warnings = sample_warnings(current)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.kb_command == "tune":
        _write_thresholds(args.config, settings)
        print(
            f"wrote answer_threshold {settings.answer_threshold:g}, clarify_threshold "
            f"{settings.clarify_threshold:g}, clarify_margin {settings.clarify_margin:g} "
            f"to {args.config}"
            + ("" if met else " (targets not met: these give the fewest wrong answers)")
            + (f"; chosen from only {current.queries} questions" if warnings else "")
        )
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    **current.as_dict(),
                    "tuned": {**tuned.as_dict(), "targets_met": met},
                    "targets": {"max_wrong": args.max_wrong, "min_oos_recall": args.min_oos_recall},
                    "warnings": warnings,
                },
                ensure_ascii=False,
            )
        )
        return 0
    for title, report in (("with the configured thresholds", current), ("tuned", tuned)):
        print(
            f"{title}: answer {report.thresholds['answer']:g}, "
            f"clarify {report.thresholds['clarify']:g}, margin {report.thresholds['margin']:g}"
        )
        print(f"  queries            {report.queries} ({report.answerable} answerable)")
        for label, key in (
            ("in-scope accuracy", "in_scope_accuracy"),
            ("wrong answers", "wrong_answer_rate"),
            ("clarified", "clarify_rate"),
            ("  right one offered", "clarify_hit_rate"),
            ("out-of-scope recall", "oos_recall"),
        ):
            print(f"  {label:<19}{getattr(report, key):7.1%}")
        for group, rates in [*report.groups.items(), *report.scripts.items()]:
            print(
                f"  [{group}] accuracy {rates['in_scope_accuracy']:.1%}, wrong "
                f"{rates['wrong_answer_rate']:.1%}, oos recall {rates['oos_recall']:.1%}"
            )
    if not met:
        print(
            f"no thresholds meet wrong <= {args.max_wrong:.1%} with oos recall >= "
            f"{args.min_oos_recall:.1%}; the tuned ones give the fewest wrong answers"
        )
    return 0


def _write_thresholds(path: Path, settings: BotSettings) -> None:
    """Replace the thresholds and margin in the bot section, keeping the file's comments."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    section = None
    wanted = {
        "answer_threshold": settings.answer_threshold,
        "clarify_threshold": settings.clarify_threshold,
        "clarify_margin": settings.clarify_margin,
    }
    for index, line in enumerate(lines):
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            section = line.strip().rstrip(":")
        key = line.strip().split(":", 1)[0]
        if section == "bot" and key in wanted and line.startswith("  "):
            lines[index] = f"  {key}: {wanted.pop(key):g}\n"
    if wanted:
        raise ValueError(f"{path}: no bot.{' / bot.'.join(wanted)} line to update")
    path.write_text("".join(lines), encoding="utf-8")
    load_config(path)  # still valid


def kb_ask(config: Config, question: str, *, as_json: bool) -> int:
    bot = build_bot(config)
    decision = bot.decide(question)
    reads = bot.matcher.reads_meaning
    k = config.knowledge
    missing = [
        script for script in (k.semantic_languages if k.semantic else ()) if not reads.get(script)
    ]
    if as_json:
        print(
            json.dumps(
                {
                    "decision": decision.kind.value,
                    "entry": decision.entry_id,
                    "reason": decision.reason,
                    "language": decision.language,
                    "reads_meaning": reads,
                    "candidates": [
                        {
                            "id": c.id,
                            "score": c.score,
                            "question": c.question,
                            "components": dict(c.components),
                        }
                        for c in decision.candidates
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(f"decision: {decision.kind.value} ({decision.reason})")
    if decision.entry_id:
        print(f"entry:    {decision.entry_id}")
    if decision.choices:
        print("choices:  " + " | ".join(c.label for c in decision.choices))
    if decision.text:
        print(f"reply:    {decision.text}")
    by_meaning = ", ".join(script for script, on in reads.items() if on) or "none"
    print(f"read by meaning: {by_meaning}")
    if missing:
        print(
            f"warning:  asked to read {', '.join(missing)} by meaning, but the model is not "
            "available on this machine: read by characters and words only"
        )
    print("candidates (score: calibrated chance in %; the raw branch score is listed last):")
    for c in decision.candidates:
        parts = " ".join(f"{name} {value:3.0f}" for name, value in c.components)
        print(f"  {c.score:5.1f}  {c.id:<22} [{parts}]  {c.question}")
    return 0
