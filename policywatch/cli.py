"""The ``policywatch`` command line. Each subcommand builds what it needs from the settings."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from models.db import Database
from models.db.learned import newer_than_active
from models.errors import ConfigError
from models.timeutil import utcnow
from policywatch.app import build_services
from policywatch.logs import configure_logging
from policywatch.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


async def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from policywatch.service import run_service

    await _prepare(settings)
    async with build_services(settings) as services:
        await run_service(services)
    return EXIT_OK


async def _prepare(settings: Settings) -> None:
    """Bring the database to the newest schema and load the config files (idempotent; workers
    starting together take turns), so ``policywatch run`` alone gives a working service."""
    from policywatch.logs import get_logger
    from policywatch.seeding import seed

    db = Database.connect(settings.database_url, null_pool=True)
    try:
        before, after = await db.migrate()
        report = await seed(
            db, settings.sources_file, settings.themes_file, utcnow(), console=settings.console_demo
        )
    finally:
        await db.dispose()
    migrated = {"migrated_from": before or "empty"} if before != after else {}
    get_logger(__name__).info(
        "database ready",
        schema=after,
        **migrated,
        sources=report.sources.summary(),
        themes=report.themes.summary(),
    )


async def _check_schema(db: Database) -> None:
    current, head = await db.revision()
    if current != head:
        raise ConfigError(
            [
                f"the database is at revision {current or 'none'}, not {head}: "
                "run `policywatch migrate`"
            ],
            origin="database",
        )


async def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    db = Database.connect(settings.database_url, null_pool=True)
    try:
        before, after = await db.migrate()
        head = (await db.revision())[1]
    finally:
        await db.dispose()
    if before == after:
        print(f"database already at {after} (head {head}): nothing to do")
    else:
        print(f"database upgraded from {before or 'empty'} to {after}")
    return EXIT_OK


async def _cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from policywatch.seeding import seed

    db = Database.connect(settings.database_url, null_pool=True)
    try:
        await _check_schema(db)
        report = await seed(
            db, settings.sources_file, settings.themes_file, utcnow(), console=settings.console_demo
        )
    finally:
        await db.dispose()
    print(f"sources ({settings.sources_file}): {report.sources.summary()}")
    print(f"themes ({settings.themes_file}): {report.themes.summary()}")
    return EXIT_OK


async def _cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ingest import failed_count

    async with build_services(settings) as services:
        await _check_schema(services.db)
        summaries = await services.poll(due_only=not args.once)
    for summary in sorted(summaries, key=lambda s: s.name):
        print(summary.line())
    failed = failed_count(summaries)
    new = sum(s.new for s in summaries)
    print(f"{len(summaries)} sources polled, {failed} failed, {new} new items")
    return EXIT_FAILURE if failed else EXIT_OK


async def _cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    from policywatch.parse_command import run_parse

    return run_parse(
        path=args.file,
        kind=args.kind,
        url=args.url,
        timezone=args.timezone,
        selectors=args.selectors,
        out=sys.stdout,
        err=sys.stderr,
    )


async def _cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    from policywatch.service import Tick, run_service

    async with build_services(settings) as services:
        await _check_schema(services.db)
        notifier = services.notifier
        if args.once:
            report = await notifier.run_once()
            print(f"sent {report.messages_sent} messages ({report.delivered} deliveries)")
            return EXIT_OK
        await run_service(services, ticks=[Tick("outbox", settings.outbox_tick, notifier.tick)])
    return EXIT_OK


async def _cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from pathlib import Path

    from models.learned import ModelSet, classify_with_model
    from models.matching import compile_themes
    from pipeline.encoder import encode_items_async, load_encoder
    from policywatch.config_files import load_theme_specs

    themes_file = Path(args.themes) if args.themes else settings.themes_file
    specs = load_theme_specs(themes_file)
    enabled = {s.slug for s in specs if s.enabled}
    matcher = compile_themes({s.slug: s.rules for s in specs if s.enabled})
    chosen, indexes = ([], {}) if args.no_model else _model_file(args.models, enabled)
    models = ModelSet(chosen)
    encoder = load_encoder(settings.encoder, settings.encoder_threads) if models else None
    parsed = [(number, *_classify_input(line)) for number, line in await _input_lines(args.file)]
    texts = [(title, summary) for _, title, summary, error in parsed if error is None]
    encoded = await encode_items_async(encoder, models.encoders, texts)
    if any(encoded):
        from pipeline.neighbours import vote_with

        encoded = await asyncio.to_thread(vote_with, models, indexes, encoded)
    vectors = iter(encoded)
    failures = 0
    for number, title, summary, error in parsed:
        if error is not None:
            failures += 1
            print(f"policywatch classify: line {number}: {error}", file=sys.stderr)
            print(json.dumps({"error": f"line {number}: {error}"}, ensure_ascii=False))
            continue
        found = classify_with_model(matcher, models, title, summary, next(vectors))
        print(
            json.dumps(
                {
                    "themes": [m.slug for m in found],
                    "layers": {m.slug: m.layer for m in found},
                    "matches": [m.to_json() for m in found],
                },
                ensure_ascii=False,
            )
        )
    return EXIT_FAILURE if failures else EXIT_OK


async def _input_lines(path: str | None) -> list[tuple[int, str]]:
    """The non-blank lines of a JSON Lines file (standard input without one), numbered."""
    from pathlib import Path

    try:
        if path:
            raw = await asyncio.to_thread(Path(path).read_bytes)
        else:
            raw = await asyncio.to_thread(sys.stdin.buffer.read)
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return [(number, line) for number, line in enumerate(lines, 1) if line.strip()]


async def _cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    """Group JSON Lines items (oldest first) into events, as the service does; one JSON object
    per input line, in order: ``event`` (numbered from 1), ``reason`` and ``score``."""
    import json

    from models.events import EventItem, group, item_from_json

    parsed: list[tuple[int, EventItem | str]] = []
    for number, line in await _input_lines(args.file):
        try:
            parsed.append((number, item_from_json(json.loads(line))))
        except ValueError as exc:
            parsed.append((number, str(exc)))
    decisions = iter(group([item for _, item in parsed if isinstance(item, EventItem)]))
    failures = 0
    for number, item in parsed:
        if isinstance(item, str):
            failures += 1
            print(f"policywatch events: line {number}: {item}", file=sys.stderr)
            print(json.dumps({"error": f"line {number}: {item}"}, ensure_ascii=False))
            continue
        event, decision = next(decisions)
        score = None if decision.score == float("inf") else round(decision.score, 3)
        record = {"id": item.id, "event": event, "reason": decision.reason, "score": score}
        print(json.dumps(record, ensure_ascii=False))
    return EXIT_FAILURE if failures else EXIT_OK


def _model_file(path: str | None, slugs: set[str]) -> tuple[list[Any], dict[str, bytes]]:
    """The learned models for ``classify`` (a model file, else the shipped defaults; only
    those of the themes being classified) and the neighbour indexes the file holds."""
    import json
    from pathlib import Path

    from models.learned import ModelFormatError
    from pipeline.learning import indexes_from_json, models_from_json, shipped_model_text

    try:
        text = shipped_model_text() if path is None else Path(path).read_text(encoding="utf-8")
        raw = json.loads(text)
        models, indexes = models_from_json(raw), indexes_from_json(raw)
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    except (ValueError, ModelFormatError) as exc:
        raise ConfigError([f"{path or 'the shipped models'}: not a model file: {exc}"]) from None
    return [m for m in models if m.slug in slugs], indexes


async def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    if args.export:
        return await _export_models(args, settings)
    from pipeline.encoder import load_cross_fit, load_encoder
    from pipeline.training import retrain

    db = Database.connect(settings.database_url, null_pool=True)
    try:
        await _check_schema(db)
        report = await retrain(
            db,
            utcnow(),
            min_votes=settings.feedback_min_votes,
            force=True,
            admin_ids=settings.admin_ids,
            encoder=load_encoder(settings.encoder, settings.encoder_threads),
            cross_fit=load_cross_fit(settings.encoder, settings.encoder_threads),
        )
    finally:
        await db.dispose()
    for line in report.lines():
        print(line)
    return EXIT_OK


async def _export_models(args: argparse.Namespace, settings: Settings) -> int:
    """Train on the shipped data alone and write a model file (how the default is built)."""
    import json
    from pathlib import Path

    from models.matching import compile_themes
    from pipeline.encoder import load_cross_fit, load_encoder
    from pipeline.learning import (
        models_to_json,
        shipped_training,
        shipped_validation,
        train_models,
        trained_indexes,
    )
    from policywatch.config_files import load_theme_specs

    themes_file = Path(args.themes) if args.themes else settings.themes_file
    specs = [s for s in load_theme_specs(themes_file) if s.enabled]
    matcher = compile_themes({s.slug: s.rules for s in specs})
    trained = await asyncio.to_thread(
        train_models,
        [s.slug for s in specs],
        shipped_training(),
        shipped_validation(),
        rules=lambda title, summary: {m.slug for m in matcher.classify(title, summary)},
        encoder=load_encoder(settings.encoder, settings.encoder_threads),
        cross_fit=load_cross_fit(settings.encoder, settings.encoder_threads),
    )
    doc = models_to_json((t.model for t in trained), trained_indexes(trained))
    doc["metrics"] = {t.model.slug: dict(t.metrics) for t in trained}
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    try:
        await asyncio.to_thread(Path(args.export).write_text, text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot write {args.export}: {exc.strerror or exc}"]) from None
    for t in trained:
        c = t.metrics.get("combined", t.metrics["model"])
        print(
            f"{t.model.slug}: threshold {t.metrics.get('threshold', t.model.threshold)}, "
            f"validation rules OR model P {c['precision']:.3f} R {c['recall']:.3f}"
        )
    print(f"wrote {len(trained)} models to {args.export}")
    return EXIT_OK


async def _cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    db = Database.connect(settings.database_url, null_pool=True)
    try:
        await _check_schema(db)
        if args.action == "list":
            async with db.reading() as uow:
                versions = await uow.learned.versions(args.theme)
                switches = await uow.learned.model_switches()
            newer = newer_than_active(versions)
            for v in versions:
                c = v.metrics.get("combined", v.metrics.get("model", {}))
                scores = (
                    f" validation P {c.get('precision', 0):.3f} R {c.get('recall', 0):.3f}"
                    if c
                    else ""
                )
                state = "" if switches.get(v.slug, True) else " (model off for this theme)"
                mark = " ACTIVE" if v.active else ""
                if (v.slug, v.version) in newer:
                    mark = " newer, not in use (rollback --to uses it)"
                print(
                    f"{v.slug} v{v.version} {v.origin} {v.created_at:%Y-%m-%d %H:%M}"
                    f"{scores}{mark}{state}"
                )
            if not versions:
                print("no models stored")
            return EXIT_OK
        if not args.theme:
            raise ConfigError(["name the theme to roll back"], origin="arguments")
        async with db.transaction() as uow:
            theme = await uow.themes.get(args.theme)
            if theme is None:
                raise ConfigError([f"no theme {args.theme!r}"], origin="arguments")
            version = await uow.learned.rollback(theme.id, args.to)
            if version is not None:
                await uow.audit.record(
                    now=utcnow(),
                    action="model.rollback",
                    entity_type="theme_model",
                    entity_key=theme.slug,
                    after={"version": version},
                )
    finally:
        await db.dispose()
    if version is None:
        print(f"{args.theme}: no such version to go back to", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{args.theme}: version {version} is active")
    return EXIT_OK


def _classify_input(line: str) -> tuple[str, str, str | None]:
    """(title, summary, None) from one JSON Lines record, or ("", "", the problem)."""
    import json

    try:
        record = json.loads(line)
    except ValueError as exc:
        return "", "", f"not JSON: {exc}"
    if not isinstance(record, dict):
        return "", "", "not a JSON object"
    title, summary = record.get("title") or "", record.get("summary") or ""
    if not isinstance(title, str) or not isinstance(summary, str):
        return "", "", "title and summary must be strings"
    if not title and not summary:
        return "", "", "no title or summary"
    return title, summary, None


async def _cmd_reclassify(args: argparse.Namespace, settings: Settings) -> int:
    from models.timeutil import parse_duration

    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        raise ConfigError([f"--since: {exc}"], origin="arguments") from None
    async with build_services(settings) as services:
        await _check_schema(services.db)
        now = services.clock()
        async with services.db.transaction() as uow:
            report = await services.classifier.reclassify(uow, now - window, now)
        for slug, rule, error in services.classifier.skipped_rules:
            print(
                f"skipped a rule of {slug} that does not parse: {rule!r}: {error}", file=sys.stderr
            )
    print(f"reclassified {report.summary()}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policywatch",
        description="Track US export controls and China's AI policy; alert through Telegram.",
        epilog="Settings come from environment variables (and .env); see README.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", help="migrate, seed and run the service (scheduler, notifier and bot)"
    )
    run.set_defaults(handler=_cmd_run)

    migrate = sub.add_parser("migrate", help="upgrade the database to the newest schema")
    migrate.set_defaults(handler=_cmd_migrate)

    seed = sub.add_parser("seed", help="load the sources and themes files into the database")
    seed.set_defaults(handler=_cmd_seed)

    notify = sub.add_parser("notify", help="run only the notifier: send what the outbox holds")
    notify.add_argument("--once", action="store_true", help="send what is due now, then exit")
    notify.set_defaults(handler=_cmd_notify)

    poll = sub.add_parser("poll", help="poll sources now and store what is new")
    poll.add_argument(
        "--once", action="store_true", help="poll every enabled source once, then exit"
    )
    poll.set_defaults(handler=_cmd_poll)

    classify = sub.add_parser("classify", help="classify JSON Lines items against the themes")
    classify.add_argument("file", nargs="?", help="JSON Lines input (default: standard input)")
    classify.add_argument("--themes", help="a themes file (default: POLICYWATCH_THEMES_FILE)")
    classify.add_argument(
        "--models", help="a model file (default: the shipped models; see train --export)"
    )
    classify.add_argument("--no-model", action="store_true", help="the watchlist rules alone")
    classify.set_defaults(handler=_cmd_classify)

    events = sub.add_parser(
        "events", help="group JSON Lines items (oldest first) into events; print each assignment"
    )
    events.add_argument("file", nargs="?", help="JSON Lines input (default: standard input)")
    events.set_defaults(handler=_cmd_events)

    train = sub.add_parser(
        "train", help="train the learned models (shipped labelled data + feedback) and store them"
    )
    train.add_argument(
        "--export", metavar="FILE", help="train on the shipped data alone and write a model file"
    )
    train.add_argument("--themes", help="with --export: a themes file for the rules")
    train.set_defaults(handler=_cmd_train)

    model = sub.add_parser("model", help="list the learned models' versions or roll one back")
    model.add_argument("action", choices=["list", "rollback"])
    model.add_argument("theme", nargs="?", help="the theme (required for rollback)")
    model.add_argument(
        "--to", type=int, help="rollback: this version, older or newer (default: the previous)"
    )
    model.set_defaults(handler=_cmd_model)

    reclassify = sub.add_parser(
        "reclassify", help="re-run the current watchlists over recent items and store the matches"
    )
    reclassify.add_argument(
        "--since", default="7d", help="how far back, by publication time (default: 7d)"
    )
    reclassify.set_defaults(handler=_cmd_reclassify)

    parse = sub.add_parser("parse", help="parse a saved response and print its items as JSON Lines")
    parse.add_argument("file", help="the saved response body")
    parse.add_argument("--kind", required=True, help="the source kind to parse it as")
    parse.add_argument("--url", help="the URL it was fetched from (for relative links)")
    parse.add_argument("--timezone", help="the zone of dates that carry none (e.g. Asia/Shanghai)")
    parse.add_argument("--selectors", help="CSS selectors for html_list, as JSON")
    parse.set_defaults(handler=_cmd_parse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"policywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, json=settings.log_json)
    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except ConfigError as exc:
        print(f"policywatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``policywatch parse … | head``): stop quietly. Point stdout at
        # /dev/null so the interpreter's final flush does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
