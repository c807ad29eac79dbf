#!/bin/sh
# Fills corpus/<target>/ with seeds from the committed test vectors (see README.md).
# Run from fuzz/. Needs openssl and base64 for the generated OCSP request and MIME seeds.
set -eu
PKI=../crates/pki/tests/data
SMIME=../crates/smime/tests/data/cms-examples
for t in mime_parse cms_signed cms_enveloped pkcs12_read csr_parse ocsp_request ocsp_response certificate_path crl_check \
    ldap_request; do
    mkdir -p "corpus/$t"
done
# Inputs that once crashed a target (fuzz/regressions/<target>/), run again every time.
for d in regressions/*/; do
    t=$(basename "$d")
    mkdir -p "corpus/$t"
    cp "$d"* "corpus/$t/"
done
cp "$SMIME"/signed*.p7m corpus/cms_signed/
cp "$SMIME"/encrypted*.p7m "$SMIME"/authEnveloped*.p7m corpus/cms_enveloped/
cp "$PKI"/pkcs12-clients/*.p12 "$PKI"/pkcs12-clients/*.pfx corpus/pkcs12_read/
cp "$PKI"/csr/*.pem corpus/csr_parse/
for f in "$PKI"/csr/*.pem; do
    openssl req -in "$f" -outform DER -out "corpus/csr_parse/$(basename "$f" .pem).der"
done
cp "$PKI"/third-party/pkits/certs/*.crt corpus/certificate_path/
cp "$PKI"/third-party/pkits/crls/*.crl corpus/crl_check/

# OCSP: a request for PKITS 4.1.1's leaf, with and without nonce, and error responses.
certs="$PKI/third-party/pkits/certs"
openssl ocsp -issuer "$certs/GoodCACert.crt" -cert "$certs/ValidCertificatePathTest1EE.crt" \
    -reqout corpus/ocsp_request/sha1-nonce.der >/dev/null
openssl ocsp -sha256 -no_nonce -issuer "$certs/GoodCACert.crt" -cert "$certs/ValidCertificatePathTest1EE.crt" \
    -reqout corpus/ocsp_request/sha256.der >/dev/null
for code in 1 2 3 5 6; do
    printf "\060\003\012\001\00$code" > "corpus/ocsp_response/error-$code.der"
done

# MIME: an opaque and a multipart/signed message around the cms-examples objects.
{
    printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n'
    printf 'Content-Transfer-Encoding: base64\r\n\r\n'
    base64 -w 76 "$SMIME/signedByAliceRSA.p7m" | sed 's/$/\r/'
} > corpus/mime_parse/opaque.eml
{
    printf 'MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol="application/pkcs7-signature"; '
    printf 'micalg=sha-512; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n'
    printf 'This is some sample content.\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\n'
    printf 'Content-Transfer-Encoding: base64\r\n\r\n'
    base64 -w 76 "$SMIME/signedByCarlosDetached.p7m" | sed 's/$/\r/'
    printf '\r\n--b1--\r\n'
} > corpus/mime_parse/signed.eml
# LDAP: what mail clients send (a state byte first: see fuzz_targets/ldap_request.rs).
python3 - <<'PY'
def tlv(tag, body):
    n = len(body)
    head = bytes([n]) if n < 128 else (bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 255]))
    return bytes([tag]) + head + body
def s(text): return tlv(0x04, text.encode())
def msg(op, controls=b""): return tlv(0x30, tlv(0x02, b"\x01") + op + controls)
def search(base, filt, attrs=(), scope=2, size=0):
    body = s(base) + tlv(0x0a, bytes([scope])) + tlv(0x0a, b"\x00") + tlv(0x02, bytes([size])) + tlv(0x02, b"\x00")
    body += tlv(0x01, b"\x00") + filt + tlv(0x30, b"".join(s(a) for a in attrs))
    return tlv(0x63, body)
def eq(a, v): return tlv(0xa3, s(a) + s(v))
def sub(a, initial): return tlv(0xa4, s(a) + tlv(0x30, tlv(0x80, initial.encode())))
def present(a): return tlv(0x87, a.encode())
BASE = "ou=people,dc=example,dc=org"
paged = tlv(0xa0, tlv(0x30, s("1.2.840.113556.1.4.319") + tlv(0x04, tlv(0x30, tlv(0x02, b"\x02") + s("")))))
seeds = {
    "root-dse": msg(search("", present("objectClass"), ["namingContexts", "supportedControl"], scope=0)),
    "thunderbird-cert": msg(search(BASE, eq("mail", "jane.doe@example.org"), ["userCertificate;binary"])),
    "autocomplete": msg(search(BASE, tlv(0xa1, sub("cn", "muster") + sub("mail", "muster") + sub("sn", "muster")), ["cn", "mail"])),
    "outlook": msg(search(BASE, tlv(0xa1, eq("mail", "max.mustermann@example.org") + eq("proxyAddresses", "smtp:max.mustermann@example.org")))),
    "not-given": msg(search(BASE, tlv(0xa0, eq("objectClass", "inetOrgPerson") + tlv(0xa2, present("givenName"))))),
    "paged": msg(search(BASE, present("mail"), ["mail"]), paged),
    "bind": msg(tlv(0x60, tlv(0x02, b"\x03") + s("cn=addressbook,dc=example,dc=org") + tlv(0x80, b"secret"))),
    "whoami": msg(tlv(0x77, tlv(0x80, b"1.3.6.1.4.1.4203.1.11.3"))),
    "starttls": msg(tlv(0x77, tlv(0x80, b"1.3.6.1.4.1.1466.20037"))),
    "delete": msg(tlv(0x4a, ("mail=jane.doe@example.org," + BASE).encode())),
}
for name, data in seeds.items():
    for state in (0, 5):
        with open(f"corpus/ldap_request/{name}-{state}", "wb") as f:
            f.write(bytes([state]) + data)
PY
echo "seeded: $(find corpus -type f | wc -l) files"
