#!/bin/sh
# Fills corpus/<target>/ with seeds from the committed test vectors (see README.md).
# Run from fuzz/. Needs openssl and base64 for the generated OCSP request and MIME seeds.
set -eu
PKI=../crates/pki/tests/data
SMIME=../crates/smime/tests/data/cms-examples
for t in mime_parse cms_signed cms_enveloped pkcs12_read csr_parse ocsp_request ocsp_response certificate_path crl_check; do
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
echo "seeded: $(find corpus -type f | wc -l) files"
