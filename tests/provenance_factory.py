"""Files with a provenance to read, made by the tests: C2PA-signed photos and videos (signed
with a throw-away certificate authority the test creates; no network, no time-stamp server),
and videos re-encoded by another encoder (PyAV)."""

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AI_GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAMERA = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


@dataclass
class Identity:
    chain: bytes  # PEM: the signer's certificate, then the authority's
    key: bytes  # PEM: the signer's private key
    root: str  # PEM: the authority's certificate (a trust anchor)


def signing_identity(signer: str = "Test Newsroom Camera", organisation: str = "Test Newsroom") -> Identity:
    """A certificate authority and a signer it certifies, as C2PA requires (EC P-256, the
    signer's certificate for e-mail protection, not self-signed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            ]
        )

    def usage(sign_certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign_certs,
            crl_sign=sign_certs,
            encipher_only=False,
            decipher_only=False,
        )

    def builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        builder(name(f"{organisation} Root"), name(f"{organisation} Root"), root_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        builder(name(signer), root.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Identity(
        chain=leaf.public_bytes(pem) + root.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        root=root.public_bytes(pem).decode(),
    )


def manifest(title: str, fmt: str, source_type: str, agent: str) -> dict:
    return {
        "claim_generator_info": [{"name": "deepfake-forensics-tests", "version": "1.0"}],
        "title": title,
        "format": fmt,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [{"action": "c2pa.created", "softwareAgent": agent, "digitalSourceType": source_type}]
                },
            }
        ],
    }


def sign(source: Path, target: Path, fmt: str, identity: Identity, source_type: str = CAMERA, agent: str = "") -> Path:
    """`source` with a C2PA manifest signed by `identity`, written to `target`."""
    import c2pa

    info = c2pa.C2paSignerInfo(
        alg=c2pa.C2paSigningAlg.ES256, sign_cert=identity.chain, private_key=identity.key, ta_url=None
    )
    definition = manifest(target.name, fmt, source_type, agent or "Test Camera 1.0")
    settings = {"verify": {"remote_manifest_fetch": False, "verify_after_sign": False}}
    with (
        c2pa.Context.from_dict(settings) as context,
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(json.dumps(definition), context) as builder,
        source.open("rb") as src,
        target.open("w+b") as dst,
    ):
        builder.sign(signer, fmt, src, dst)
    return target


def tamper(path: Path) -> Path:
    """Change a byte of the picture data, near the end (past the manifest)."""
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def reencode(source: Path, target: Path, codec: str = "mpeg4", scale: float = 1.0, frames: int = 0) -> Path:
    """Decode a video and write it again with another encoder (PyAV), optionally resized."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        rate = stream_in.average_rate or 25
        out = dst.add_stream(codec, rate=rate)
        out.width = int(stream_in.codec_context.width * scale) // 2 * 2
        out.height = int(stream_in.codec_context.height * scale) // 2 * 2
        out.pix_fmt = "yuv420p"
        for count, frame in enumerate(src.decode(stream_in)):
            if frames and count >= frames:
                break
            picture = frame.to_ndarray(format="rgb24")
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            image = image.reformat(width=out.width, height=out.height)
            for packet in out.encode(image):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    return target
