# Compatibility mode agrees with espsecure: every verify-signature check recorded in
# vectors.tsv is replayed with fwrel-verify --sbv2/--sbv1 --key, same key, same file,
# and must give the oracle's verdict (valid = exit 0, invalid = exit 1).
. "$FWREL_SRC/tests/lib.sh"
need_vectors
cd "$FWREL_VECTORS"
checked=0
while IFS=$'\t' read -r id kind file check verdict rc command message; do
    case "$command" in
        *verify-signature*|*verify_signature*) ;;
        *) continue ;;
    esac
    version= key= skip= data=
    set -- $command
    shift 2
    while [ $# -gt 0 ]; do
        case "$1" in
            --version) version=$2; shift 2 ;;
            --keyfile|-k) key=$2; shift 2 ;;
            --skip-padding) skip=--skip-padding; shift ;;
            *) data=$1; shift ;;
        esac
    done
    if [ ! -f "$data" ] || [ ! -f "$key" ]; then
        skip "$id: $data or $key not in this vector set"
        continue
    fi
    run fwrel-verify --sbv"$version" $skip --key "$key" "$data"
    case "$verdict/$RC" in
        valid/0|invalid/1) ok; checked=$((checked + 1)) ;;
        *) fail "$id ($check): oracle says $verdict, fwrel-verify exit $RC: $ERR" ;;
    esac
    if [ "$RC" -eq 1 ] && [ "$(printf '%s\n' "$ERR" | grep -c .)" -ne 1 ]; then
        fail "$id: a rejection must print exactly one stderr line: $ERR"
    fi
done < vectors.tsv
echo "$checked oracle verdicts reproduced"
[ "$checked" -ge 50 ] || fail "only $checked verify-signature checks found in vectors.tsv"
finish
