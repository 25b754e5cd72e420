#!/usr/bin/env python3
"""Rebuilds the seed corpus fuzz/corpus/webhook/ from the repository's examples.

Sources: events/*.json (Lambda events) and events/bodies/*.json (webhook bodies) when
present, and the documented payloads in devkit/src/fixtures.rs (webhooks and every media
metadata example). Each seed starts with the mode byte that fuzz_targets/webhook.rs reads
(`byte % 5` selects the entry point, `byte // 5` carries flags).

Run from anywhere: python3 fuzz/make-corpus.py
"""

import base64
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus" / "webhook"


def mode(m: int, flags: int = 0) -> bytes:
    return bytes([m + 5 * flags])


ENVELOPE = mode(0, 3)  # 256 KiB limit
SIGNED = mode(1, 2)  # the target signs the body itself
UNSIGNED = mode(1, 0)  # the header value is taken from the input
CLASSIFY = mode(2)
METADATA = mode(3, 1)  # videos archived
MIMETYPE = mode(4)


def fixtures() -> dict[str, str]:
    text = (ROOT / "devkit" / "src" / "fixtures.rs").read_text()
    return dict(re.findall(r'pub const (\w+): &str = r#"(.*?)"#;', text, re.S))


def envelope(body: bytes, b64: bool) -> bytes:
    return json.dumps(
        {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "headers": {"content-type": "application/json", "x-hmac-signature": "00" * 32},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": base64.b64encode(body).decode() if b64 else body.decode(),
            "isBase64Encoded": b64,
        }
    ).encode()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    seeds: dict[str, bytes] = {}
    consts = fixtures()

    bodies = {p.stem: p.read_bytes() for p in sorted((ROOT / "events" / "bodies").glob("*.json"))}
    for name in (
        "DECISION_WEBHOOK",
        "FULL_AUTO_WEBHOOK",
        "EVENT_WEBHOOK_STARTED",
        "EVENT_WEBHOOK_SUBMITTED",
    ):
        if name in consts:
            bodies[name.lower().replace("_", "-")] = consts[name].encode()
    # Full Auto shapes a hostile sender could try: a body claiming both kinds, ids missing
    # or escaping, a decision of the wrong type.
    if "FULL_AUTO_WEBHOOK" in consts:
        full_auto = json.loads(consts["FULL_AUTO_WEBHOOK"])
        variants = {
            "both-kinds": {**full_auto, "verification": {"id": "x", "status": "approved"}},
            "no-session": {k: v for k, v in full_auto.items() if k != "sessionId"},
            "escaping-session": {**full_auto, "sessionId": "../x"},
            "escaping-attempt": {**full_auto, "attemptId": "a/../b"},
            "decision-object": {
                **full_auto,
                "data": {"verification": {"decision": {"value": "approved"}}},
            },
            "no-data": {k: v for k, v in full_auto.items() if k != "data"},
        }
        for name, doc in variants.items():
            bodies[f"full-auto-{name}"] = json.dumps(doc).encode()
    for name, body in bodies.items():
        seeds[f"classify-{name}"] = CLASSIFY + body
        seeds[f"signed-{name}"] = SIGNED + b"\n" + body
        seeds[f"unsigned-{name}"] = UNSIGNED + b"0" * 64 + b"\n" + body
        seeds[f"envelope-{name}"] = ENVELOPE + envelope(body, False)
        seeds[f"envelope-b64-{name}"] = ENVELOPE + envelope(body, True)

    for path in sorted((ROOT / "events").glob("*.json")):
        seeds[f"event-{path.stem}"] = ENVELOPE + path.read_bytes()

    for name, text in consts.items():
        if "WEBHOOK" not in name and re.search(r'"status":\s*"success"', text):
            seeds[f"metadata-{name.lower().replace('_', '-')}"] = METADATA + text.encode()

    for m in ("image/jpeg", "image/jpg", "video/mp4", "application/octet-stream"):
        seeds[f"mimetype-{m.replace('/', '-')}"] = MIMETYPE + m.encode()

    written: set[bytes] = set()
    for name, data in sorted(seeds.items()):
        if data not in written:
            written.add(data)
            (OUT / name).write_bytes(data)
    print(f"wrote {len(written)} seeds to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
