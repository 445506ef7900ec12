"""DSSE envelopes (v1) for in-toto statements: signed with an Ed25519 or ECDSA P-256 PEM key, or unsigned.

The signature is over the DSSE pre-authentication encoding, PAE = "DSSEv1" SP len(type) SP type SP len(body) SP
body (lengths in ASCII decimal), never over the JSON envelope; ECDSA signatures are DER (SHA-256), as sigstore and
in-toto write them. A key's id is the sha256 of its public key (DER SubjectPublicKeyInfo), in hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from harness.errors import IntegrityError, UsageError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PASSPHRASE_ENV = "HARNESS_SIGN_KEY_PASSWORD"  # noqa: S105 - the name of the variable holding it, never logged
_KEY_HINT = "give an Ed25519 or ECDSA P-256 private key in PEM, e.g. 'openssl genpkey -algorithm ed25519 -out key.pem'"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def key_id(public: PublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key and its id."""

    key: PrivateKey
    keyid: str
    algorithm: str  # ed25519 | ecdsa-p256-sha256

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def _check_kind(key: object, path: Path) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    kind = type(key).__name__.lstrip("_")
    curve = getattr(getattr(key, "curve", None), "name", "")
    raise UsageError(f"signing key {path} is a {kind}{' on ' + curve if curve else ''}, not Ed25519 or ECDSA P-256",
                     _KEY_HINT)


def load_signing_key(path: Path) -> SigningKey:
    """The PEM private key at path (encrypted ones take $HARNESS_SIGN_KEY_PASSWORD); UsageError otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read signing key {path}: {exc.strerror or exc}", _KEY_HINT) from exc
    secret = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, password=secret.encode() if secret else None)
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        raise UsageError(f"signing key {path}: {exc}", f"set {PASSPHRASE_ENV} for an encrypted key, "
                         "or unset it for a plain one") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"signing key {path} is not a PEM private key this harness can use", _KEY_HINT) from exc
    checked = _check_kind(key, path)
    algorithm = "ed25519" if isinstance(checked, ed25519.Ed25519PrivateKey) else "ecdsa-p256-sha256"
    return SigningKey(checked, key_id(checked.public_key()), algorithm)


def envelope(payload: bytes, key: SigningKey | None, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """The DSSE envelope of payload: one signature with the key, or none (an unsigned envelope)."""
    signatures = []
    if key is not None:
        signature = key.sign(pae(payload_type, payload))
        signatures.append({"keyid": key.keyid, "sig": base64.b64encode(signature).decode()})
    return {"payloadType": payload_type, "payload": base64.b64encode(payload).decode(), "signatures": signatures}


def load_public_key(path: Path) -> PublicKey:
    """A PEM public key (Ed25519 or ECDSA P-256)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{path} is not a readable PEM public key", "export it with "
                         "'openssl pkey -in key.pem -pubout -out key.pub'") from exc
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        return key
    raise UsageError(f"{path} is a {type(key).__name__.lstrip('_')}, not Ed25519 or ECDSA P-256", _KEY_HINT)


def _valid(public: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verify(document: Any, public: PublicKey) -> bytes:
    """The payload of a DSSE envelope once a signature by `public` verifies over its PAE; IntegrityError else."""
    try:
        payload = base64.b64decode(document["payload"], validate=True)
        payload_type = str(document["payloadType"])
        signatures = [base64.b64decode(s["sig"], validate=True) for s in document["signatures"]]
    except (KeyError, TypeError, binascii.Error) as exc:
        raise IntegrityError(f"not a DSSE envelope: {type(exc).__name__}: {exc}", "check the file") from exc
    if not any(_valid(public, signature, pae(payload_type, payload)) for signature in signatures):
        raise IntegrityError("no signature of the envelope verifies with the given public key",
                             "the file was changed, or it was signed with another key (or not at all)")
    return payload


def statement_of(text: bytes | str) -> Any:
    """The (unverified) statement inside an envelope file's text."""
    return json.loads(base64.b64decode(json.loads(text)["payload"]))
