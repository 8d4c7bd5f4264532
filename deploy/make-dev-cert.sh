#!/usr/bin/env bash
# A self-signed certificate for the example compose deployment (deploy/certs/tls.{crt,key}).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mkdir -p certs
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout certs/tls.key -out certs/tls.crt
