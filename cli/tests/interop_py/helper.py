#!/usr/bin/env python3
"""Interop helper for the `interop_kubesealpy` integration test.

It opens SealedSecrets with kubesealpy (https://pypi.org/project/kubesealpy/,
v1.0.1, MIT), an implementation written independently of ours, so that the test
proves our `kubeseal` output is readable by someone else's code.

Subcommands:

  genkey OUTDIR
      Write OUTDIR/key.pem (RSA-2048, PKCS#1 "RSA PRIVATE KEY") and
      OUTDIR/cert.pem (self-signed X.509 with an empty subject and issuer,
      like the one the upstream controller makes; valid from now-1 day to
      now+1 year).

  unseal KEY.pem SEALED_FILE
      Read SealedSecret(s) from SEALED_FILE: JSON (one or several concatenated
      objects) or YAML (one or several `---`-separated documents); a `v1 List`
      is flattened. Every spec.encryptedData value is opened with kubesealpy's
      Unsealer, using the object's own metadata.namespace / metadata.name and
      the scope given by its own metadata.annotations. Prints one JSON object:
          {"<namespace>/<name>": {"<key>": "<base64 of plaintext>", ...}, ...}
      Exits non-zero with a message on stderr if anything fails to open.
"""

from __future__ import annotations

import base64
import datetime
import json
import sys
from pathlib import Path

ANN_CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
ANN_NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"


def die(msg: str, code: int = 1) -> "NoReturn":  # noqa: F821
    print(f"helper.py: {msg}", file=sys.stderr)
    sys.exit(code)


# --------------------------------------------------------------------- genkey


def genkey(outdir: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    empty = x509.Name([])
    cert = (
        x509.CertificateBuilder()
        .subject_name(empty)
        .issuer_name(empty)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )

    (out / "key.pem").write_bytes(
        key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1
            encryption_algorithm=serialization.NoEncryption(),
        )
    )
    (out / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# --------------------------------------------------------------------- unseal


def load_documents(text: str) -> list:
    """Parse a JSON stream (concatenated objects) or a multi-document YAML."""
    stripped = text.lstrip()
    docs: list = []
    if stripped.startswith("{") or stripped.startswith("["):
        decoder = json.JSONDecoder()
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                die(f"invalid JSON: {e}")
            docs.append(obj)
    else:
        import yaml

        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            die(f"invalid YAML: {e}")

    # Flatten JSON arrays and `kind: List` wrappers.
    flat: list = []
    for d in docs:
        if isinstance(d, list):
            flat.extend(d)
        elif isinstance(d, dict) and d.get("kind") == "List" and "items" in d:
            flat.extend(d.get("items") or [])
        else:
            flat.append(d)
    return flat


def scope_of(annotations):
    from kubesealpy import SealingScope

    annotations = annotations or {}
    if annotations.get(ANN_CLUSTER_WIDE) == "true":
        return SealingScope.CLUSTER_WIDE
    if annotations.get(ANN_NAMESPACE_WIDE) == "true":
        return SealingScope.NAMESPACE_WIDE
    return SealingScope.STRICT


def unseal(key_path: str, sealed_path: str) -> None:
    from kubesealpy import KubesealPyError, Unsealer

    try:
        unsealer = Unsealer.from_private_key_file(key_path)
    except KubesealPyError as e:
        die(f"cannot load private key {key_path}: {e}")

    try:
        text = Path(sealed_path).read_text(encoding="utf-8")
    except OSError as e:
        die(f"cannot read {sealed_path}: {e}")

    docs = load_documents(text)
    if not docs:
        die(f"no documents in {sealed_path}")

    result: dict[str, dict[str, str]] = {}
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            die(f"document {i} is not an object")
        if doc.get("kind") != "SealedSecret":
            die(f"document {i} is kind {doc.get('kind')!r}, not SealedSecret")
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        namespace = meta.get("namespace")
        scope = scope_of(meta.get("annotations"))
        enc = (doc.get("spec") or {}).get("encryptedData")
        if not isinstance(enc, dict) or not enc:
            die(f"document {i} ({namespace}/{name}) has no spec.encryptedData")

        opened: dict[str, str] = {}
        for key, value in enc.items():
            if not isinstance(value, str):
                die(f"{namespace}/{name}: encryptedData[{key!r}] is not a string")
            try:
                ciphertext = base64.b64decode(value, validate=True)
            except ValueError as e:
                die(f"{namespace}/{name}: encryptedData[{key!r}] is not base64: {e}")
            try:
                plain = unsealer.unseal_value(
                    ciphertext, namespace=namespace, name=name, scope=scope
                )
            except (KubesealPyError, ValueError) as e:
                die(
                    f"{namespace}/{name}: cannot open encryptedData[{key!r}] "
                    f"with scope {scope.value}: {e}"
                )
            opened[key] = base64.b64encode(plain).decode("ascii")

        ident = f"{namespace or ''}/{name or ''}"
        if ident in result:
            die(f"duplicate SealedSecret {ident}")
        result[ident] = opened

    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "genkey":
        genkey(argv[1])
    elif len(argv) == 3 and argv[0] == "unseal":
        unseal(argv[1], argv[2])
    else:
        die("usage: helper.py genkey OUTDIR | helper.py unseal KEY.pem SEALED_FILE", 2)


if __name__ == "__main__":
    main(sys.argv[1:])
