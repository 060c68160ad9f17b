#!/usr/bin/env python3
"""An independent reading of the real CT entries for ct-core's analysis test.

Usage: analysis.py DATA_DIR   (the directory CT_REAL_DATA names)

Reads every get-entries/*.json and single/*.json answer in sorted order,
decodes each MerkleTreeLeaf itself and parses the certificate with Python's
`cryptography` (not x509-parser, which ct-core uses): for an x509_entry the
certificate in leaf_input, for a precert_entry the precertificate, the first
element of extra_data's PrecertChainEntry. Prints one JSON object per entry:
the analysis fields of ct-core's CertInfo, or `skip` with the reason when
`cryptography` cannot read the entry.

The leaf of a precert entry holds the TBSCertificate the log derived from the
precertificate (RFC 6962 section 3.2): when a Precertificate Signing
Certificate signed it, the issuer and the authority key identifier are those
of that signing certificate's issuer, so they are reported that way.

Exits 3 when `cryptography` is missing.
"""

import base64
import hashlib
import json
import os
import sys

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
except ImportError:
    print(
        "analysis.py: the Python package cryptography is missing: pip install cryptography",
        file=sys.stderr,
    )
    sys.exit(3)

PRECERT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")
CABF_LEVELS = [
    ("2.23.140.1.1", "ev"),
    ("2.23.140.1.2.2", "ov"),
    ("2.23.140.1.2.3", "iv"),
    ("2.23.140.1.2.1", "dv"),
]


def u(data, start, width):
    """A big-endian unsigned integer of `width` bytes at `start`."""
    if start + width > len(data):
        raise ValueError("truncated")
    return int.from_bytes(data[start : start + width], "big")


def opaque24(data, start):
    """An opaque<1..2^24-1> at `start`: (bytes, offset after it)."""
    n = u(data, start, 3)
    end = start + 3 + n
    if end > len(data):
        raise ValueError("truncated opaque")
    return data[start + 3 : end], end


def certificate_of(leaf, extra):
    """(entry type, DER to parse, DER of the first chain certificate or None)."""
    if leaf[0] != 0 or leaf[1] != 0:
        raise ValueError("not a v1 timestamped_entry leaf")
    entry_type = u(leaf, 10, 2)
    if entry_type == 0:
        cert, _ = opaque24(leaf, 12)
        return "x509", cert, None
    if entry_type == 1:
        pre, at = opaque24(extra, 0)
        chain, _ = opaque24(extra, at)
        first = opaque24(chain, 0)[0] if chain else None
        return "precert", pre, first
    raise ValueError(f"entry type {entry_type}")


def ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def first(name, oid):
    values = name.get_attributes_for_oid(oid)
    return values[0].value if values else None


def dn(name):
    return {
        "cn": first(name, NameOID.COMMON_NAME),
        "o": first(name, NameOID.ORGANIZATION_NAME),
        "c": first(name, NameOID.COUNTRY_NAME),
        "st": first(name, NameOID.STATE_OR_PROVINCE_NAME),
        "l": first(name, NameOID.LOCALITY_NAME),
        "ou": first(name, NameOID.ORGANIZATIONAL_UNIT_NAME),
    }


def aki_of(cert):
    aki = ext(cert, x509.AuthorityKeyIdentifier)
    if aki is None or aki.key_identifier is None:
        return None
    return aki.key_identifier.hex()


def normalize(name):
    name = name[:-1] if name.endswith(".") else name
    return name.lower()


def analyse(entry_type, der, first_chain):
    cert = x509.load_der_x509_certificate(der)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    dns, ips = set(), set()
    san = ext(cert, x509.SubjectAlternativeName)
    if san is not None:
        for value in san.get_values_for_type(x509.DNSName):
            dns.add(normalize(value))
        for value in san.get_values_for_type(x509.IPAddress):
            ips.add(value.packed)

    crl_urls = []
    points = ext(cert, x509.CRLDistributionPoints)
    for point in points or []:
        for gn in point.full_name or []:
            if isinstance(gn, x509.UniformResourceIdentifier):
                crl_urls.append(gn.value)

    ocsp_urls, ca_issuers_urls = [], []
    aia = ext(cert, x509.AuthorityInformationAccess)
    for desc in aia or []:
        if not isinstance(desc.access_location, x509.UniformResourceIdentifier):
            continue
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            ocsp_urls.append(desc.access_location.value)
        elif desc.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
            ca_issuers_urls.append(desc.access_location.value)

    ski = ext(cert, x509.SubjectKeyIdentifier)
    policies = [p.policy_identifier.dotted_string for p in ext(cert, x509.CertificatePolicies) or []]
    subject = dn(cert.subject)
    level = next((lvl for oid, lvl in CABF_LEVELS if oid in policies), None)
    inferred = level is None
    if inferred:
        level = "ov" if (subject["o"] or "").strip() else "dv"

    issuer, aki = dn(cert.issuer), aki_of(cert)
    rewritten = False
    if entry_type == "precert" and first_chain is not None:
        signer = x509.load_der_x509_certificate(first_chain)
        eku = ext(signer, x509.ExtendedKeyUsage)
        if eku is not None and PRECERT_SIGNING_EKU in eku:
            issuer, aki, rewritten = dn(signer.issuer), aki_of(signer), True

    return {
        "spki_sha256": hashlib.sha256(spki).hexdigest(),
        "authority_key_id": aki,
        "subject_key_id": ski.digest.hex() if ski is not None else None,
        "san_count": len(dns) + len(ips),
        "is_wildcard": any(n.startswith("*.") for n in dns),
        "crl_urls": crl_urls,
        "ocsp_urls": ocsp_urls,
        "ca_issuers_urls": ca_issuers_urls,
        "subject": subject,
        "issuer": issuer,
        "policies": policies,
        "validation": level,
        "validation_inferred": inferred,
        "issuer_rewritten": rewritten,
    }


def main():
    if len(sys.argv) != 2:
        print("usage: analysis.py DATA_DIR", file=sys.stderr)
        return 2
    root = sys.argv[1]
    for sub in ("get-entries", "single"):
        folder = os.path.join(root, sub)
        for fname in sorted(f for f in os.listdir(folder) if f.endswith(".json")):
            with open(os.path.join(folder, fname), encoding="utf-8") as f:
                entries = json.load(f)["entries"]
            for pos, e in enumerate(entries):
                out = {"file": fname, "pos": pos}
                try:
                    leaf = base64.b64decode(e["leaf_input"], validate=True)
                    extra = base64.b64decode(e["extra_data"], validate=True)
                    entry_type, der, first_chain = certificate_of(leaf, extra)
                    out["entry_type"] = entry_type
                    out.update(analyse(entry_type, der, first_chain))
                except Exception as exc:  # noqa: BLE001 - every failure is a counted skip
                    out["skip"] = f"{type(exc).__name__}: {exc}"
                print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
