"""Command line for CI pipelines: ``python -m mlops_portal_client …``.

Exit codes a CI job can rely on:
    0  done (promotion applied or approved, registration stored, health ok)
    2  promotion still pending (or health warning)
    3  promotion rejected or cancelled (or health critical)
    4  bad input (a file missing or unreadable, invalid JSON) or the portal refused the
       request (4xx: bad input, permission, conflict)
    5  the portal could not be reached or failed (connection error, 5xx)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .client import PortalClient, PortalError

EXIT_OK, EXIT_PENDING, EXIT_REJECTED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 2, 3, 4, 5
PROMOTION_EXIT = {
    "applied": EXIT_OK,
    "approved": EXIT_OK,
    "pending": EXIT_PENDING,
    "rejected": EXIT_REJECTED,
    "cancelled": EXIT_REJECTED,
}
# no_data is nothing to judge yet (no window computed): a CI gate waits, as for a pending promotion
HEALTH_EXIT = {"ok": EXIT_OK, "no_data": EXIT_PENDING, "warning": EXIT_PENDING, "critical": EXIT_REJECTED}


def _read_rows(path: str) -> list[dict]:
    """JSON array or JSON Lines (.jsonl) file, or '-' for JSON on stdin."""
    if path == "-":
        return json.load(sys.stdin)
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def _is_csv(path: str) -> bool:
    """A CSV file is sent as text/csv as it is: the portal reads its flat feature columns and
    labels with the model's schema (JSON records would carry them as unknown fields and strings)."""
    return path.lower().endswith(".csv")


def _print(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_portal_client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="portal base URL (default $MLOPS_PORTAL_URL or http://127.0.0.1:8000)")
    parser.add_argument("--token", help="API token (default $MLOPS_PORTAL_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("register", help="register a version (and the model if it is new)")
    p.add_argument("model")
    p.add_argument("--team", help="team slug, needed when the model is new")
    p.add_argument("--risk-tier", choices=["low", "medium", "high"])
    p.add_argument("--commit", dest="source_commit", default="")
    p.add_argument("--run-id", dest="training_run_id", default="")
    p.add_argument("--data-ref", dest="training_data_ref", default="")
    p.add_argument("--data-hash", dest="training_data_hash", default="")
    p.add_argument("--artifact", dest="artifact_uri", default="")
    p.add_argument("--task-type", choices=["binary", "multiclass", "regression"])
    p.add_argument("--metrics", help="JSON object of offline metrics, or @file.json")
    p.add_argument("--schema", help="JSON feature schema list, or @file.json")
    p.add_argument("--classes", help="the class labels, comma-separated (e.g. stayed,churned)")
    p.add_argument("--positive-class", help="binary: the class the score is the probability of")

    p = sub.add_parser("promote", help="request a promotion; with --wait, wait for the decision")
    p.add_argument("model")
    p.add_argument("version", type=int)
    p.add_argument("--to", default="production", choices=["staging", "production", "archived"])
    p.add_argument("--reason", required=True)
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--poll", type=float, default=5)

    p = sub.add_parser("status", help="show a promotion request; exit code by its status")
    p.add_argument("promotion_id", type=int)

    p = sub.add_parser("predictions", help="send predictions from a JSON/JSONL or CSV file (CSV: flat feature columns)")
    p.add_argument("model")
    p.add_argument("version", type=int)
    p.add_argument("file")
    p.add_argument("--batch-size", type=int, default=5000)

    p = sub.add_parser("labels", help="send ground-truth labels from a JSON/JSONL or CSV file")
    p.add_argument("model")
    p.add_argument("file")
    p.add_argument("--batch-size", type=int, default=5000)

    p = sub.add_parser("health", help="show a model's health; exit 0 ok, 2 warning or no data yet, 3 critical")
    p.add_argument("model")

    p = sub.add_parser("rollback", help="roll production back to the previous production version")
    p.add_argument("model")
    p.add_argument("--reason", required=True)
    return parser


def _json_arg(value: str | None):
    if not value:
        return None
    if value.startswith("@"):
        value = Path(value[1:]).read_text(encoding="utf-8")
    return json.loads(value)


def _version_fields(args: argparse.Namespace) -> dict:
    """The fields of ``register`` that were given, as the API names them."""
    fields = {
        k: getattr(args, k)
        for k in ("source_commit", "training_run_id", "training_data_ref", "training_data_hash", "artifact_uri")
        if getattr(args, k)
    }
    if args.task_type:
        fields["task_type"] = args.task_type
    if args.metrics:
        fields["metrics"] = _json_arg(args.metrics)
    if args.schema:
        fields["feature_schema"] = _json_arg(args.schema)
    if args.classes:
        fields["classes"] = [c.strip() for c in args.classes.split(",")]
    if args.positive_class:
        fields["positive_class"] = args.positive_class
    return fields


def run(args: argparse.Namespace, client: PortalClient) -> int:
    if args.command == "register":
        model_fields = {k: v for k, v in {"team": args.team, "risk_tier": args.risk_tier}.items() if v}
        client.ensure_model(args.model, **model_fields)
        _print(client.register_version(args.model, **_version_fields(args)))
        return EXIT_OK
    if args.command == "promote":
        promotion = client.request_promotion(args.model, args.version, to=args.to, reason=args.reason)
        if args.wait:
            promotion = client.wait_for_promotion(promotion.id, timeout=args.timeout, poll=args.poll)
        _print(promotion.raw)
        return PROMOTION_EXIT.get(promotion.status, EXIT_REFUSED)
    if args.command == "status":
        promotion = client.get_promotion(args.promotion_id)
        _print(promotion.raw)
        return PROMOTION_EXIT.get(promotion.status, EXIT_REFUSED)
    if args.command == "predictions":
        if _is_csv(args.file):
            data = Path(args.file).read_bytes()
            sent = client.log_predictions_csv(args.model, args.version, data, batch_size=args.batch_size)
        else:
            sent = client.log_predictions(args.model, args.version, _read_rows(args.file), batch_size=args.batch_size)
        _print({"sent": sent})
        return EXIT_OK
    if args.command == "labels":
        if _is_csv(args.file):
            sent = client.log_labels_csv(args.model, Path(args.file).read_bytes(), batch_size=args.batch_size)
        else:
            sent = client.log_labels(args.model, _read_rows(args.file), batch_size=args.batch_size)
        _print({"sent": sent})
        return EXIT_OK
    if args.command == "health":
        health = client.health(args.model)
        _print(health.raw)
        return HEALTH_EXIT.get(health.status, EXIT_OK)
    if args.command == "rollback":
        _print(client.rollback(args.model, reason=args.reason))
        return EXIT_OK
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        client = PortalClient(args.url, args.token)
        return run(args, client)
    except (ValueError, OSError) as exc:  # bad input: unreadable file, invalid JSON, infinity, no token
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except PortalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.details:
            print(json.dumps(exc.details, indent=2), file=sys.stderr)
        return EXIT_UNREACHABLE if exc.status is None or exc.status >= 500 else EXIT_REFUSED
