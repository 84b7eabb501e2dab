#!/usr/bin/env bash
# Test-only certificates for `migrate --tls`, made at test time (nothing secret is
# committed). Each directory is laid out like QEMU's tls-creds-x509 dir:
#   make_tls_certs.sh OUT [EXTRA_SAN...]      e.g. IP:192.0.2.2 DNS:hostb
#   OUT/good        CA "mdevmig test CA"; listener certificate for localhost, 127.0.0.1,
#                   ::1 and the EXTRA_SANs; source certificate
#   OUT/other-ca    the same names, issued by a different CA
#   OUT/expired     the good CA; listener and source certificates that expired yesterday
#   OUT/wrong-name  the good CA; a listener certificate for elsewhere.example only
#   OUT/rogue-client  trusts the good CA, but its source certificate is other-ca's
set -euo pipefail
out=${1:?usage: make_tls_certs.sh OUT [EXTRA_SAN...]}
shift
extra=""
for s in "$@"; do extra+=",$s"; done
mkdir -p "$out"
cd "$out"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # DIR CN
  mkdir -p "$1"
  key "$1/ca-key.pem"
  openssl req -x509 -new -key "$1/ca-key.pem" -out "$1/ca-cert.pem" -days 30 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
# DIR ROLE(server|client) CN SAN DAYS CA_DIR
leaf() {
  local dir=$1 role=$2 cn=$3 san=$4 days=$5 cadir=$6 usage
  [ "$role" = server ] && usage=serverAuth || usage=clientAuth
  key "$dir/$role-key.pem"
  openssl req -new -key "$dir/$role-key.pem" -subj "/CN=$cn" -out "$dir/$role.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' \
    "$san" "$usage" > "$dir/$role.ext"
  local validity=(-days "$days")
  # An expired certificate: OpenSSL 3.4 and later refuse a negative -days and take the
  # dates instead (-not_before/-not_after); 3.0 (bookworm) has only -days.
  if [ "$days" -lt 0 ] && openssl x509 -help 2>&1 | grep -q -- -not_after; then
    validity=(-not_before "$(date -u -d "$((1 - days)) days ago" +%Y%m%d%H%M%SZ)"
              -not_after "$(date -u -d "$((-days)) days ago" +%Y%m%d%H%M%SZ)")
  fi
  openssl x509 -req -in "$dir/$role.csr" -CA "$cadir/ca-cert.pem" -CAkey "$cadir/ca-key.pem" \
    -CAcreateserial "${validity[@]}" -extfile "$dir/$role.ext" -out "$dir/$role-cert.pem" 2>/dev/null
  rm -f "$dir/$role.csr" "$dir/$role.ext"
}
server_san="DNS:localhost,IP:127.0.0.1,IP:::1$extra"
client_san="DNS:mdevmig-source"

ca good "mdevmig test CA"
leaf good server mdevmig-destination "$server_san" 30 good
leaf good client mdevmig-source "$client_san" 30 good

ca other-ca "another test CA"
leaf other-ca server mdevmig-destination "$server_san" 30 other-ca
leaf other-ca client mdevmig-source "$client_san" 30 other-ca

mkdir -p expired wrong-name
for d in expired wrong-name; do cp good/ca-cert.pem "$d/"; done
leaf expired server mdevmig-destination "$server_san" -1 good
leaf expired client mdevmig-source "$client_san" -1 good
leaf wrong-name server elsewhere "DNS:elsewhere.example" 30 good
cp good/client-cert.pem good/client-key.pem wrong-name/
mkdir -p rogue-client
cp good/ca-cert.pem other-ca/client-cert.pem other-ca/client-key.pem rogue-client/
# The CAs' keys are not part of any credentials directory.
for d in good other-ca; do mv "$d/ca-key.pem" "$d.ca-key.pem"; done
rm -f ./*/*.srl
