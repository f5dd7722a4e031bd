"""Check a filtered audit export against a later full export:
``python -m registry.verify_filtered FILTERED FULL``.

A filtered export (one model, one actor, an action, a time range) leaves events out, so its own
file cannot show that none of ITS events was removed afterwards: ``verify_export`` checks each
event's hash and the links between neighbours, and a deleted event with the manifest's count
rewritten leaves a file that is consistent with itself. The portal records every export in the
chain before streaming it (``audit.exported``: its filters, the chain head, and how many events
it holds, first and last seq), and the manifest names that event (``recorded_as``). A full
export made later holds that record, where nobody can edit it without breaking the chain.

Checked, after both files pass ``verify_export``: (1) FULL is unfiltered (a seq range is
allowed) and reaches the record; (2) every event of FILTERED is in FULL with the same hash;
(3) every event of FILTERED matches the filters its manifest declares; (4) the record is an
``audit.exported`` event whose filters, chain head, count and first and last seq are those of
FILTERED. Together: FILTERED holds exactly the events the portal exported, none removed, none
swapped for another. Standard library only; copy it beside ``verify_export.py`` to run it
elsewhere (``python3 verify_filtered.py FILTERED FULL``). Exit codes as ``verify_export``.
"""

from __future__ import annotations

import datetime
import sys

try:
    from registry.verify_export import (
        EXIT_BROKEN,
        EXIT_OK,
        EXIT_UNREADABLE,
        EXIT_USAGE,
        _filters_text,
        _narrowing_filters,
        read_export,
        verify_file,
    )
except ImportError:  # run as a copied file, beside verify_export.py
    from verify_export import (  # type: ignore[no-redef]
        EXIT_BROKEN,
        EXIT_OK,
        EXIT_UNREADABLE,
        EXIT_USAGE,
        _filters_text,
        _narrowing_filters,
        read_export,
        verify_file,
    )

USAGE = "usage: python -m registry.verify_filtered FILTERED FULL  (FULL: an unfiltered export made later)"
RECORDED = ("count", "first_seq", "last_seq")


class Mismatch(Exception):
    """FILTERED is not what the chain recorded; the message says where."""


def _scan(path: str, *, keep, on_row=None) -> tuple[dict, dict, dict]:
    """Stream an export that ``verify_export`` passed: (seq -> hash of the seqs ``keep`` wants,
    seq -> payload of the seqs ``keep`` asks to hold, manifest); ``on_row`` sees every payload."""
    hashes, payloads = {}, {}
    with open(path, encoding="utf-8-sig", newline="") as stream:
        rows, holder = read_export(stream)
        for _, payload, hash_ in rows:
            seq = payload["seq"]
            wanted = keep(seq)
            if wanted:
                hashes[seq] = hash_
            if wanted == "payload":
                payloads[seq] = payload
            if on_row is not None:
                on_row(payload)
    return hashes, payloads, holder["manifest"]


def _time(value) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _matches(payload: dict, key: str, value) -> bool:
    """Whether an event matches one filter, as the portal's audit log filter applies it."""
    if key == "from_seq":
        return payload["seq"] >= int(value)
    if key == "to_seq":
        return payload["seq"] <= int(value)
    if key in ("since", "until"):
        at, bound = _time(payload["timestamp"]), _time(value)
        return at >= bound if key == "since" else at < bound
    text = str(value).strip()
    if key == "action":
        prefix = text.endswith((".", "*"))
        return payload["action"].startswith(text.rstrip("*")) if prefix else payload["action"] == text
    if key == "actor_ids":  # the account the actor filter named, by id (its events under any name)
        return payload["actor_id"] in value
    field = {"model": "model_name", "actor": "actor_name", "source": "source"}.get(key)
    if field is None:
        raise Mismatch(f"the manifest declares a filter this check does not know: {key}")
    return payload[field] == text


def _filter_check(filters: dict):
    """A row callback refusing the first event that does not match ``filters``. An actor given
    with its account's id (``actor_ids``) is checked by the id alone: the account's events keep
    the name they were written under, also after a rename."""
    if isinstance(filters.get("actor_ids"), list):
        filters = {key: value for key, value in filters.items() if key != "actor"}

    def check(payload: dict) -> None:
        for key, value in filters.items():
            if not _matches(payload, key, value):
                seq = payload["seq"]
                name = "actor" if key == "actor_ids" else key
                raise Mismatch(f"event seq {seq} does not match the declared filter {name}={value}: it was swapped in")

    return check


def _check_record(record: dict | None, manifest: dict, hashes: dict) -> None:
    where = f"the record of this export (audit event seq {manifest['recorded_as']})"
    if record is None or record["action"] != "audit.exported":
        raise Mismatch(f"{where} is not an audit.exported event in FULL")
    after = record.get("after") or {}
    if not all(key in after for key in RECORDED):
        raise Mismatch(f"{where} was written before exports recorded their count: completeness cannot be checked")
    found = {"count": len(hashes), "first_seq": min(hashes, default=None), "last_seq": max(hashes, default=None)}
    expected = {**found, "up_to_seq": manifest.get("head_seq"), "head_hash": manifest.get("head_hash")}
    expected["filters"] = manifest.get("filters") or {}
    for key, value in expected.items():
        if after.get(key) != value:
            raise Mismatch(
                f"{where} says {key} = {after.get(key)!r}, this export has {value!r}: "
                "events were removed or added, or the manifest was edited"
            )


def _check_against_full(filtered_path: str, full_path: str) -> tuple[dict, dict]:
    """(seq -> hash of FILTERED, its manifest) once FILTERED is shown to be what the chain recorded."""
    _, _, manifest = _scan(filtered_path, keep=lambda seq: False)
    recorded = manifest.get("recorded_as")
    if not isinstance(recorded, int) or isinstance(recorded, bool):
        raise Mismatch("this export names no record (recorded_as): it was made before exports were recorded")
    ours, _, _ = _scan(filtered_path, keep=lambda seq: True, on_row=_filter_check(_narrowing_filters(manifest)))
    full, record, full_manifest = _scan(full_path, keep=lambda seq: "payload" if seq == recorded else seq in ours)
    if _narrowing_filters(full_manifest):
        raise Mismatch(f"FULL is itself filtered ({_filters_text(_narrowing_filters(full_manifest))})")
    if recorded not in full:
        raise Mismatch(f"FULL does not hold audit event seq {recorded}, this export's record: export the chain again")
    for seq, hash_ in ours.items():
        if seq not in full:
            raise Mismatch(f"FULL does not hold event seq {seq} of this export")
        if full[seq] != hash_:
            raise Mismatch(f"event seq {seq} is not the chain's: its hash differs from FULL's")
    _check_record(record.get(recorded), manifest, ours)
    return ours, manifest


def verify_against(filtered_path: str, full_path: str) -> tuple[int, str]:
    """(exit code, one line) for FILTERED checked against FULL."""
    for label, path in (("FILTERED", filtered_path), ("FULL", full_path)):
        ok, message, summary = verify_file(path)
        if not ok:
            code = EXIT_UNREADABLE if summary.get("unreadable") else EXIT_BROKEN
            return code, f"{label} ({path}) does not verify: {message}"
    try:
        ours, manifest = _check_against_full(filtered_path, full_path)
    except Mismatch as exc:
        return EXIT_BROKEN, str(exc)
    filters = _filters_text(_narrowing_filters(manifest)) or "none"
    return EXIT_OK, (
        f"OK: the {len(ours)} event(s) of this export (filters: {filters}) are the chain's, match its "
        f"filters, and are all the events its record (audit event seq {manifest['recorded_as']}) counted"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE)
        return EXIT_OK
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return EXIT_USAGE
    try:
        code, message = verify_against(*args)
    except (OSError, UnicodeDecodeError) as exc:
        print(" ".join(f"UNREADABLE: {exc}".split()), file=sys.stderr)
        return EXIT_UNREADABLE
    print(message if code == EXIT_OK else f"FAILED: {message}", file=sys.stdout if code == EXIT_OK else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
