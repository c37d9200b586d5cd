"""Just enough OpenPGP (RFC 4880) to read who made a signature packet and when.

Used to match ``gpg-sign --delete KEYID`` and duplicate signers without any keyring, and to
describe a signature gpgv could not check. Input is untrusted: every length is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from pyostree.errors import SignError

__all__ = ["SignaturePacket", "parse_signatures", "PUBKEY_ALGO_NAMES"]

#: gpgme_pubkey_algo_name() for the algorithm ids of RFC 4880 / RFC 6637 / RFC 9580.
PUBKEY_ALGO_NAMES = {1: "RSA", 2: "RSA-E", 3: "RSA-S", 16: "ELG-E", 17: "DSA", 18: "ECDH",
                     19: "ECDSA", 20: "ELG", 22: "EdDSA"}
_SIGNATURE_TAG = 2


@dataclass(frozen=True)
class SignaturePacket:
    version: int
    sig_type: int
    pubkey_algo: int
    hash_algo: int
    created: int
    expires: int            # seconds after ``created``; 0: never
    issuer_key_id: str      # 16 upper-case hex digits, "" if the packet names none
    issuer_fingerprint: str  # upper-case hex, "" if absent

    @property
    def pubkey_algo_name(self) -> str:
        return PUBKEY_ALGO_NAMES.get(self.pubkey_algo, "Unknown")

    def issued_by(self, fingerprints: Tuple[str, ...]) -> bool:
        """Whether one of FINGERPRINTS (a key and its subkeys, or key ids of 8+ hex digits)
        made this signature."""
        for fpr in fingerprints:
            fpr = fpr.upper()
            if len(fpr) < 8:
                continue
            for issuer in (self.issuer_fingerprint, self.issuer_key_id):
                if issuer and (issuer.endswith(fpr) or fpr.endswith(issuer)):
                    return True
        return False


def _packets(data: bytes) -> List[Tuple[int, bytes]]:
    out: List[Tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        head = data[pos]
        if not head & 0x80:
            raise SignError("GPG: signature data is not an OpenPGP packet")
        if head & 0x40:
            tag = head & 0x3F
            if pos + 1 >= len(data):
                raise SignError("GPG: truncated OpenPGP packet")
            length, start = _new_length(data, pos + 1, 223, "OpenPGP packet")
        else:
            tag = (head >> 2) & 0x0F
            size = {0: 1, 1: 2, 2: 4}.get(head & 3)
            if size is None:
                raise SignError("GPG: indeterminate-length OpenPGP packets are not signatures")
            if pos + 1 + size > len(data):
                raise SignError("GPG: truncated OpenPGP packet")
            length, start = int.from_bytes(data[pos + 1:pos + 1 + size], "big"), pos + 1 + size
        if start + length > len(data):
            raise SignError("GPG: truncated OpenPGP packet")
        out.append((tag, data[start:start + length]))
        pos = start + length
    return out


def _new_length(data: bytes, pos: int, two_octet_last: int, what: str) -> Tuple[int, int]:
    """The one-, two- or five-octet length at POS (RFC 4880 4.2.2, 5.2.3.1): the length and
    where the body starts. A packet header keeps 224-254 for partial lengths, which no
    signature uses; a subpacket's two-octet lengths run up to 254."""
    first = data[pos]
    if first < 192:
        return first, pos + 1
    if first <= two_octet_last:
        if pos + 1 >= len(data):
            raise SignError(f"GPG: truncated {what}")
        return ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
    if first == 255:
        if pos + 5 > len(data):
            raise SignError(f"GPG: truncated {what}")
        return int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
    raise SignError("GPG: partial-length OpenPGP packets are not signatures")


def _subpackets(area: bytes, fields: dict) -> None:  # type: ignore[type-arg]
    pos = 0
    while pos < len(area):
        length, pos = _new_length(area, pos, 254, "signature subpacket")
        if length == 0 or pos + length > len(area):
            raise SignError("GPG: truncated signature subpacket")
        kind, body = area[pos] & 0x7F, area[pos + 1:pos + length]
        pos += length
        if kind == 2 and len(body) == 4:
            fields["created"] = int.from_bytes(body, "big")
        elif kind == 3 and len(body) == 4:
            fields["expires"] = int.from_bytes(body, "big")
        elif kind == 16 and len(body) == 8:
            fields["key_id"] = body.hex().upper()
        elif kind == 33 and len(body) in (21, 33):
            fields["fingerprint"] = body[1:].hex().upper()


def _parse_signature(body: bytes) -> SignaturePacket:
    if not body:
        raise SignError("GPG: empty signature packet")
    version = body[0]
    fields: dict = {}  # type: ignore[type-arg]
    if version == 3:
        if len(body) < 19 or body[1] != 5:
            raise SignError("GPG: malformed v3 signature packet")
        sig_type, created = body[2], int.from_bytes(body[3:7], "big")
        key_id, pubkey_algo, hash_algo = body[7:15].hex().upper(), body[15], body[16]
        return SignaturePacket(3, sig_type, pubkey_algo, hash_algo, created, 0, key_id, "")
    if version not in (4, 5):
        raise SignError(f"GPG: unsupported signature packet version {version}")
    size = 2 if version == 4 else 4
    pos = 4
    if len(body) < pos + size:
        raise SignError("GPG: truncated signature packet")
    hashed_len = int.from_bytes(body[pos:pos + size], "big")
    hashed = body[pos + size:pos + size + hashed_len]
    pos += size + hashed_len
    if len(hashed) != hashed_len or len(body) < pos + size:
        raise SignError("GPG: truncated signature packet")
    unhashed_len = int.from_bytes(body[pos:pos + size], "big")
    unhashed = body[pos + size:pos + size + unhashed_len]
    if len(unhashed) != unhashed_len:
        raise SignError("GPG: truncated signature packet")
    _subpackets(unhashed, fields)
    _subpackets(hashed, fields)  # hashed values win over unhashed ones
    key_id = fields.get("key_id", "")
    fingerprint = fields.get("fingerprint", "")
    if not key_id and fingerprint:
        key_id = fingerprint[-16:] if version == 4 else fingerprint[:16]
    return SignaturePacket(version, body[1], body[2], body[3], fields.get("created", 0),
                           fields.get("expires", 0), key_id, fingerprint)


def parse_signatures(data: bytes) -> List[SignaturePacket]:
    """The signature packets of a detached signature; anything else in it is an error."""
    packets = _packets(bytes(data))
    if not packets:
        raise SignError("GPG: empty signature")
    out = []
    for tag, body in packets:
        if tag != _SIGNATURE_TAG:
            raise SignError(f"GPG: OpenPGP packet of type {tag} where a signature was expected")
        out.append(_parse_signature(body))
    return out
