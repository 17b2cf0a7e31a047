#!/usr/bin/env python3
"""Bitnami Sealed Secrets test vectors, made independently of gitops-seal.

Implements Sealed Secrets' per-value scheme (HybridEncrypt in their pkg/crypto/crypto.go) with
Python's `cryptography` package, from its description:

    base64( uint16_be(len(rsa_ct)) || rsa_ct || aes_gcm_ct_and_tag )
    rsa_ct = RSA-OAEP(SHA-256, MGF1-SHA-256, label)(session_key)     # 32 random bytes
    aes_gcm_ct_and_tag = AES-256-GCM(session_key, nonce=12 zero bytes, aad=none)(value)
    label = "namespace/name" (strict) | "namespace" (namespace-wide) | "" (cluster-wide)

Writes, beside this script: the controller's keys as users back them up (keys-backup.yaml, a
List of kubernetes.io/tls Secrets holding PKCS#1 PEM), one more key as PKCS#8 PEM
(key-pkcs8.pem), a key that opens nothing here (stranger.pem), SealedSecret manifests in every
scope and shape, and expected.json (every object's values, base64). TEST KEYS ONLY.

Run: python3 tests/vectors/bitnami/make.py   (needs `cryptography`)
"""

import base64
import json
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(b):
    return base64.b64encode(b).decode()


def seal(key, value, label):
    session = os.urandom(32)
    rsa_ct = key.public_key().encrypt(
        session,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()),
            algorithm=hashes.SHA256(),
            label=label.encode() or None,
        ),
    )
    aes = AESGCM(session).encrypt(b"\0" * 12, value, None)
    return b64(struct.pack(">H", len(rsa_ct)) + rsa_ct + aes)


def label(scope, ns, name):
    return {"strict": f"{ns}/{name}", "namespace-wide": ns, "cluster-wide": ""}[scope]


def pem_pkcs1(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def pem_pkcs8(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


BINARY = bytes([0, 1, 2, 0xFE, 0xFF, 0x80, 0x0A, 0x0D]) + bytes(range(256))
expected = {}


def sealed_secret(key, name, ns, scope, values, template=None, ns_in_manifest=True):
    """A SealedSecret as kubeseal writes it; records the values in `expected`."""
    meta = {"name": name}
    if ns_in_manifest:
        meta["namespace"] = ns
    if scope != "strict":
        meta["annotations"] = {f"sealedsecrets.bitnami.com/{scope}": "true"}
    tmpl = {"metadata": {"name": name, "namespace": ns}}
    if scope != "strict":
        tmpl["metadata"]["annotations"] = {f"sealedsecrets.bitnami.com/{scope}": "true"}
    for k, v in (template or {}).items():
        if k == "metadata":
            for mk, mv in v.items():
                tmpl["metadata"].setdefault(mk, {}).update(mv)
        else:
            tmpl[k] = v
    expected.setdefault(f"{ns}/{name}", {}).update({k: b64(v) for k, v in values.items()})
    return {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": meta,
        "spec": {
            "encryptedData": {
                k: seal(key, v, label(scope, ns, name)) for k, v in sorted(values.items())
            },
            "template": tmpl,
        },
    }


def yaml_doc(obj, indent=0):
    """Block YAML for these simple objects (strings double-quoted as JSON, which YAML reads)."""
    pad = " " * indent
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            if v:
                out.append(f"{pad}{k}:")
                out.append(yaml_doc(v, indent + 2))
            else:
                out.append(f"{pad}{k}: {{}}")
        elif isinstance(v, list):
            out.append(f"{pad}{k}:")
            for item in v:
                body = yaml_doc(item, indent + 2).splitlines()
                out.append(f"{pad}- {body[0].strip()}")
                out.extend(body[1:])
        elif isinstance(v, bool):
            out.append(f"{pad}{k}: {'true' if v else 'false'}")
        else:
            out.append(f"{pad}{k}: {json.dumps(v)}")
    return "\n".join(out)


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


def main():
    a = rsa.generate_private_key(public_exponent=65537, key_size=4096)  # a current controller key
    b = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # an older, rotated key
    c = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # given as PKCS#8 PEM
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    backup = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {
                    "name": f"sealed-secrets-key{n}",
                    "namespace": "kube-system",
                    "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
                },
                "data": {"tls.crt": b64(b"not needed"), "tls.key": b64(pem_pkcs1(k))},
            }
            for n, k in (("abcde", a), ("fghij", b))
        ],
    }
    write("keys-backup.yaml", "# TEST KEYS ONLY: made by make.py\n" + yaml_doc(backup) + "\n")
    write("key-pkcs8.pem", pem_pkcs8(c).decode())
    write("stranger.pem", pem_pkcs1(stranger).decode())

    # Multi-document YAML: a ConfigMap, a strict Secret with a template, a namespace-wide one
    # with a binary value, comments around them.
    db = sealed_secret(
        a,
        "db",
        "prod",
        "strict",
        {"password": b"hunter2", "config.ini": b"[db]\nuser = admin\n"},
        template={
            "type": "kubernetes.io/basic-auth",
            "immutable": True,
            "metadata": {
                "labels": {"app.kubernetes.io/name": "postgres"},
                "annotations": {
                    "team": "payments",
                    "sealedsecrets.bitnami.com/skip-set-owner-references": "true",
                    "sealedsecrets.bitnami.com/managed": "true",
                },
            },
        },
    )
    db["metadata"]["labels"] = {"app.kubernetes.io/part-of": "shop"}
    blob = sealed_secret(b, "blob", "prod", "namespace-wide", {"cert.der": BINARY})
    write(
        "app.yaml",
        "# the app's config\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n"
        '  mode: "0777"   # kept byte for byte\n---\n'
        + yaml_doc(db)
        + "\n\n# the binary one\n---\n"
        + yaml_doc(blob)
        + "\n",
    )

    # JSON, cluster-wide, sealed with the PKCS#8 key.
    shared = sealed_secret(c, "shared", "tools", "cluster-wide", {"token": b"s3cr3t-t0ken"})
    write("cluster.json", json.dumps(shared, indent=2) + "\n")

    # A List holding a ConfigMap and two SealedSecrets.
    lst = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}},
            sealed_secret(a, "one", "web", "strict", {"k": b"value-one"}),
            sealed_secret(b, "two", "web", "namespace-wide", {"k": b"value-two", "bin": BINARY[:17]}),
        ],
    }
    write("list.yaml", yaml_doc(lst) + "\n")

    # Failures. Sealed for a key nobody passes.
    write("wrong-key.yaml", yaml_doc(sealed_secret(stranger, "other", "prod", "strict", {"pw": b"nope-1"})) + "\n")
    # A flipped bit in the AES-GCM payload of a value.
    t = sealed_secret(a, "tampered", "prod", "strict", {"pw": b"nope-2"})
    raw = bytearray(base64.b64decode(t["spec"]["encryptedData"]["pw"]))
    raw[-1] ^= 0x01
    t["spec"]["encryptedData"]["pw"] = b64(bytes(raw))
    write("tampered.yaml", yaml_doc(t) + "\n")
    # A strict value moved to another name: its label no longer matches.
    m = sealed_secret(a, "orig", "prod", "strict", {"pw": b"nope-3"})
    m["metadata"]["name"] = "moved"
    write("moved.yaml", yaml_doc(m) + "\n")

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
