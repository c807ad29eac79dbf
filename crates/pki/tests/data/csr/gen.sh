#!/bin/sh
# Regenerates the CSR fixtures with OpenSSL (keys are throw-away and not kept).
set -eu
cd "$(dirname "$0")"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/k" -subj "/CN=ignored" -out p256.csr.pem 2>/dev/null
openssl req -new -newkey rsa:1024 -nodes -keyout "$t/k" -subj "/CN=ignored" -out rsa1024.csr.pem 2>/dev/null
openssl req -new -newkey ed25519 -nodes -keyout "$t/k" -subj "/CN=ignored" -out ed25519.csr.pem 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$t/k" -subj "/CN=ignored" -out rsa2048.csr.pem 2>/dev/null
# With the human-readable dump before the PEM block (RFC 7468 section 2 explanatory text).
openssl req -new -text -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/k" -subj "/CN=ignored" -out p256-text.csr.pem 2>/dev/null
