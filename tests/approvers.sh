# tests/approvers.sh - the three OpenPGP approvers the example policies pin, made for real in a
# GnuPG home of the caller's (sourced by tests/lib.sh and by the benchmarks; defines functions
# only).

# make_approvers G [PASS3]: a new GnuPG home G that caches no passphrase, with three Ed25519
# signing keys "Approver N <aN@example.invalid>", the third under passphrase PASS3 when given
# (else none); sets A1, A2 and A3 to their fingerprints.
make_approvers() {
    local g=$1 pass3=${2:-} i pp
    mkdir -m 700 "$g"
    printf 'default-cache-ttl 0\nmax-cache-ttl 0\n' >"$g/gpg-agent.conf"
    for i in 1 2 3; do
        pp=''
        [ "$i" -eq 3 ] && pp=$pass3
        gpg --homedir "$g" --batch --pinentry-mode loopback --passphrase "$pp" \
            --quick-gen-key "Approver $i <a$i@example.invalid>" ed25519 sign never >/dev/null 2>&1
    done
    set -- $(gpg --homedir "$g" --batch --with-colons --list-secret-keys 2>/dev/null |
        awk -F: '/^fpr/{print $10}')
    A1=${1:-} A2=${2:-} A3=${3:-}
}

# pin_approvers POLICY: POLICY on standard output, the example approvers' fingerprints replaced by
# A1, A2 and A3.
pin_approvers() {
    sed -e "s/0123456789ABCDEF0123456789ABCDEF01234567/$A1/" \
        -e "s/89ABCDEF0123456789ABCDEF0123456789ABCDEF/$A2/" \
        -e "s/FEDCBA9876543210FEDCBA9876543210FEDCBA98/$A3/" "$1"
}
