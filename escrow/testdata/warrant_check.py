#!/usr/bin/env python3
"""Check testdata/warrant_ok.txtar without Go: an independent reading of the
signed-note format and an independent Ed25519 (pyca/cryptography).

For every signature line "— NAME BASE64" in warrant.note it finds the
verifier key NAME+HASH+KEY in the judges file, checks that HASH is the first
4 bytes of SHA-256(NAME "\n" 0x01 PUBKEY), that the signature starts with
those 4 bytes, and that the remaining 64 bytes are an Ed25519 signature of
the note text (everything up to and including the line before the blank
line). It also checks the sha256: line against the note bytes.

Run: python3 escrow/testdata/warrant_check.py escrow/testdata/warrant_ok.txtar
"""

import base64
import hashlib
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def read_archive(path):
    """Split a txtar archive into its comment and {name: bytes}."""
    data = open(path, "rb").read()
    files, name, comment, chunk = {}, None, b"", []
    for line in data.splitlines(keepends=True):
        s = line.rstrip(b"\n")
        if s.startswith(b"-- ") and s.endswith(b" --") and len(s) > 6:
            if name is None:
                comment = b"".join(chunk)
            else:
                files[name] = b"".join(chunk)
            name, chunk = s[3:-3].decode(), []
        else:
            chunk.append(line)
    files[name] = b"".join(chunk)
    return comment, files


def main(path):
    comment, files = read_archive(path)
    head = dict(l.split(": ", 1) for l in comment.decode().splitlines() if ": " in l)
    signed = files["warrant.note"]
    assert hashlib.sha256(signed).hexdigest() == head["sha256"], "sha256 line does not match the note"

    keys = {}
    for vkey in files["judges"].decode().split():
        name, khash, key = vkey.split("+", 2)
        raw = base64.b64decode(key)
        assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 note key"
        want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        assert want.hex() == khash, "key hash mismatch for " + name
        keys[name] = (want, Ed25519PublicKey.from_public_bytes(raw[1:]))

    split = signed.rindex(b"\n\n")
    text, sigs = signed[: split + 1], signed[split + 2 :]
    verified = []
    for line in sigs.decode().splitlines():
        assert line.startswith("\u2014 "), "bad signature line"
        name, sig = line[2:].split(" ", 1)
        sig = base64.b64decode(sig)
        khash, pub = keys[name]
        assert sig[:4] == khash, "signature key hash mismatch for " + name
        pub.verify(sig[4:], text)  # raises InvalidSignature
        verified.append(name)
    assert " ".join(verified) == head["judges"], verified
    print("ok:", ", ".join(verified), "signatures verify; sha256", head["sha256"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "warrant_ok.txtar")
