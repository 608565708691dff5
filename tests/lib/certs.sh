#!/bin/sh
# certs.sh DIR: generate test TLS material into DIR with openssl (EC P-256):
#   ca.pem/ca.key              test CA
#   server.pem/server.key      CA-signed, SAN localhost, 127.0.0.1, ::1
#   other.pem/other.key        CA-signed, SAN other.example only (wrong name)
#   expired.pem/expired.key    CA-signed for localhost, valid only in Jan 2020
#   untrusted.pem/untrusted.key  self-signed for localhost (not from the CA)
# Quiet on success; on failure shows openssl's output and exits non-zero.

set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/dcevents-certs.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM
cd "$W"
mkdir newcerts
: >index.txt
echo 1000 >serial

# A self-contained configuration, so the system openssl.cnf plays no part.
cat >openssl.cnf <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = dcevents test CA
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = testca
[ testca ]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = anyname
unique_subject = no
copy_extensions = none
email_in_dn = no
[ anyname ]
commonName = supplied
[ localhost ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[ other ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:other.example
EOF

# run CMD...: run quietly, keeping the output for a failure report.
run() {
	if ! "$@" >>out.log 2>&1; then
		cat out.log >&2
		echo "$0: failed: $*" >&2
		exit 1
	fi
}

# key NAME: a new P-256 private key in NAME.key.
key() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1.key"
}

# leaf NAME CN SECTION [openssl ca date options]: CA-signed NAME.pem.
leaf() {
	n=$1 cn=$2 sec=$3
	shift 3
	key "$n"
	run openssl req -new -config openssl.cnf -key "$n.key" -subj "/CN=$cn" \
	    -out "$n.csr"
	run openssl ca -batch -notext -config openssl.cnf -extensions "$sec" \
	    -in "$n.csr" -out "$n.pem" "$@"
}

key ca
run openssl req -x509 -new -config openssl.cnf -extensions v3_ca \
    -key ca.key -days 3650 -out ca.pem
leaf server localhost localhost -days 825
leaf other other.example other -days 825
leaf expired localhost localhost \
    -startdate 20200101000000Z -enddate 20200201000000Z
key untrusted
run openssl req -x509 -new -config openssl.cnf -extensions localhost \
    -key untrusted.key -subj /CN=localhost -days 825 -out untrusted.pem

for n in ca server other expired untrusted; do
	cp "$n.pem" "$n.key" "$DIR/"
done
