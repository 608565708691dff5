# On the collector, as root: a private CA (ca.pem, ca.key) and the
# collector's certificate (cert.pem, key.pem) for the name in Syslog=.
mkdir -p /etc/rsyslog && cd /etc/rsyslog && umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
    -days 3650 -subj "/CN=logs.example syslog CA" -keyout ca.key -out ca.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
    -days 825 -subj /CN=logs.example -addext subjectAltName=DNS:logs.example \
    -addext basicConstraints=critical,CA:false -CA ca.pem -CAkey ca.key \
    -keyout key.pem -out cert.pem
