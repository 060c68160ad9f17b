#!/usr/bin/env python3
"""Independent check of a running ctlog-sim (or any CT log in a v3 log list).

Reads a log list (ctlog-sim --log-list-out), and for each log fetches the
signed head (RFC 6962 get-sth, or the static-ct-api checkpoint), verifies its
ECDSA signature with the listed key, fetches every entry (get-entries, or data
tiles), recomputes the Merkle root and compares it with the signed one. Uses
only the Python standard library and the `cryptography` package, none of
ctjp's code.

    pip install cryptography
    python3 scripts/verify-sim.py /tmp/loglist.json
"""
import argparse
import base64
import http.client
import hashlib
import json
import struct
import sys
import time
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key


def fetch(url, tries=20):
    """GET with retries on 429/5xx and cut connections."""
    delay = 0.05
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if e.code not in (429, 500, 502, 503, 504) or attempt == tries - 1:
                raise
            retry = e.headers.get("Retry-After")
            time.sleep(float(retry) if retry else delay)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError):
            if attempt == tries - 1:
                raise
            time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise RuntimeError("unreachable")


def leaf_hash(leaf_input):
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves):
    """RFC 6962 MTH, bottom-up (an odd last node is carried up unchanged)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def tree_head_bytes(timestamp, size, root):
    return struct.pack(">BBQQ", 0, 1, timestamp, size) + root


def verify_digitally_signed(key, ds, message):
    hash_alg, sig_alg, length = ds[0], ds[1], struct.unpack(">H", ds[2:4])[0]
    if hash_alg != 4 or sig_alg != 3 or len(ds) != 4 + length:
        raise ValueError(f"unexpected DigitallySigned header {ds[:4].hex()}")
    key.verify(ds[4:], message, ec.ECDSA(hashes.SHA256()))


def read_uint(buf, pos, n):
    return int.from_bytes(buf[pos:pos + n], "big"), pos + n


def read_timestamped_entry(buf, pos):
    """Returns the end of the TimestampedEntry starting at pos."""
    pos += 8  # timestamp
    entry_type, pos = read_uint(buf, pos, 2)
    if entry_type == 1:
        pos += 32  # issuer_key_hash
    elif entry_type != 0:
        raise ValueError(f"entry_type {entry_type}")
    n, pos = read_uint(buf, pos, 3)
    pos += n
    n, pos = read_uint(buf, pos, 2)  # extensions
    return pos + n, entry_type


def check_rfc6962(log, key):
    url = log["url"]
    sth = json.loads(fetch(url + "ct/v1/get-sth"))
    size, ts = sth["tree_size"], sth["timestamp"]
    root = base64.b64decode(sth["sha256_root_hash"])
    verify_digitally_signed(key, base64.b64decode(sth["tree_head_signature"]),
                            tree_head_bytes(ts, size, root))
    leaves = []
    bad = 0
    while len(leaves) < size:
        start = len(leaves)
        body = json.loads(fetch(f"{url}ct/v1/get-entries?start={start}&end={size - 1}"))
        if not body["entries"]:
            raise ValueError(f"empty get-entries answer at {start}")
        for e in body["entries"]:
            try:
                leaf = base64.b64decode(e["leaf_input"], validate=True)
            except Exception:
                bad += 1
                leaf = b""
            leaves.append(leaf_hash(leaf))
    return size, root, merkle_root(leaves), bad


def check_static(log, key):
    url = log["monitoring_url"]
    text = fetch(url + "checkpoint").decode()
    body, sigs = text.split("\n\n", 1)
    origin, size_line, root_b64 = body.split("\n")[:3]
    size, root = int(size_line), base64.b64decode(root_b64)
    log_id = hashlib.sha256(key_der(log)).digest()
    key_id = hashlib.sha256(origin.encode() + b"\n\x05" + log_id).digest()[:4]
    for line in sigs.rstrip("\n").split("\n"):
        name, sig_b64 = line[len("\u2014 "):].split(" ", 1)
        sig = base64.b64decode(sig_b64)
        if name != origin or sig[:4] != key_id:
            continue
        ts = struct.unpack(">Q", sig[4:12])[0]
        verify_digitally_signed(key, sig[12:], tree_head_bytes(ts, size, root))
        break
    else:
        raise ValueError("no checkpoint signature by the log's key")
    leaves = []
    n = 0
    while n * 256 < size:
        width = min(256, size - n * 256)
        digits = f"{n:d}"
        digits = "0" * (-len(digits) % 3) + digits
        groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
        path = "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])
        tile = fetch(f"{url}tile/data/{path}" + (f".p/{width}" if width < 256 else ""))
        pos = 0
        while pos < len(tile):
            end, entry_type = read_timestamped_entry(tile, pos)
            leaves.append(leaf_hash(b"\x00\x00" + tile[pos:end]))
            pos = end
            if entry_type == 1:
                m, pos = read_uint(tile, pos, 3)
                pos += m
            m, pos = read_uint(tile, pos, 2)
            pos += m
        n += 1
    if len(leaves) != size:
        raise ValueError(f"tiles hold {len(leaves)} entries, checkpoint says {size}")
    return size, root, merkle_root(leaves), 0


def key_der(log):
    return base64.b64decode(log["key"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log_list", help="log list JSON (ctlog-sim --log-list-out)")
    args = ap.parse_args()
    with open(args.log_list) as f:
        lst = json.load(f)
    failures = 0
    for op in lst["operators"]:
        for kind, logs in (("rfc6962", op.get("logs", [])), ("static", op.get("tiled_logs", []))):
            for log in logs:
                key = load_der_public_key(key_der(log))
                if base64.b64decode(log["log_id"]) != hashlib.sha256(key_der(log)).digest():
                    print(f"FAIL {log['description']}: log_id is not SHA-256 of the key")
                    failures += 1
                    continue
                started = time.time()
                try:
                    check = check_rfc6962 if kind == "rfc6962" else check_static
                    size, signed, computed, bad = check(log, key)
                except (InvalidSignature, ValueError, urllib.error.URLError) as e:
                    print(f"FAIL {log['description']} ({kind}): {e!r}")
                    failures += 1
                    continue
                ok = signed == computed
                failures += 0 if ok else 1
                note = f", {bad} entries not base64" if bad else ""
                print(f"{'OK  ' if ok else 'FAIL'} {log['description']} ({kind}): "
                      f"{size} entries, signature valid, root {'matches' if ok else 'DIFFERS'}"
                      f"{note} ({time.time() - started:.1f}s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
