# architecture.sh - the map stays true (docs/architecture.md §2, §3): every module of libfwrel/src
# has its line in §3 and its layer in the table of §2, and no module includes the header of a
# module in a higher layer. The checker first proves on a planted tree that it finds each fault.
. "$FWREL_SRC/tests/lib.sh"

# architecture_check ROOT: prints one line per fault under ROOT.
architecture_check() {
    (
        cd "$1" || exit 1
        doc=docs/architecture.md
        [ -f "$doc" ] || {
            echo "$doc is missing"
            exit 0
        }
        # "name layer" for each module in the table of section 2 (rows "| N name | `a`, `b` |").
        layers=$(awk -F'|' '/^## 2\./ { in2 = 1; next } /^## / { in2 = 0 }
            in2 && $2 ~ /^ [0-9]+ / {
                split($2, w, " "); n = w[1]
                s = $3
                while (match(s, /`[a-z0-9_]+`/)) {
                    print substr(s, RSTART + 1, RLENGTH - 2), n
                    s = substr(s, RSTART + RLENGTH)
                }
            }' "$doc")
        modules=$(awk '/^## 3\./ { in3 = 1; next } /^## / { in3 = 0 }
            in3 { s = $0; while (match(s, /`[a-z0-9_]+`/)) {
                print substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH) } }' "$doc")
        # Looked up in arrays, not by a process per lookup (a module's first row counts).
        declare -A layer_of listed
        while read -r name n; do
            [ -n "$name" ] && [ -z "${layer_of[$name]:-}" ] && layer_of[$name]=$n
        done <<<"$layers"
        while read -r name; do [ -n "$name" ] && listed[$name]=1; done <<<"$modules"
        for src in libfwrel/src/*.c; do
            m=${src##*/} m=${m%.c}
            [ -n "${listed[$m]:-}" ] || echo "$m: no line in $doc §3"
            lm=${layer_of[$m]:-}
            if [ -z "$lm" ]; then
                echo "$m: no layer in $doc §2"
                continue
            fi
            for h in $(grep -oE '^#include "(fwrel/)?[a-z0-9_]+\.h"' "$src" |
                sed -E 's/#include "(fwrel\/)?//; s/\.h"//' | sort -u); do
                [ "$h" = "$m" ] && continue
                lh=${layer_of[$h]:-}
                [ -z "$lh" ] && continue
                [ "$lh" -le "$lm" ] || echo "$m (layer $lm) includes $h.h (layer $lh)"
            done
        done
    )
}

# The checker finds each fault in a planted tree, and none in the repository.
mkdir -p "$T/tree/docs" "$T/tree/libfwrel/src"
cat >"$T/tree/docs/architecture.md" <<'EOF'
## 2. Layers

| layer | modules | depends on |
|---|---|---|
| 1 formats | `fmt`, `up` | 0 |
| 0 base | `base` | libc |

## 3. The modules

- `base`: the bottom.
- `fmt`: a format.
- `nolayer`: listed, without a layer.

## 4. Next
- `up`: listed outside section 3.
EOF
printf '#include "fwrel/base.h"\n#include "fwrel/fmt.h"\n' >"$T/tree/libfwrel/src/fmt.c"
printf '#include "fwrel/base.h"\n#include "util.h"\n' >"$T/tree/libfwrel/src/up.c"
printf '#include "fwrel/fmt.h"\n' >"$T/tree/libfwrel/src/base.c"
printf '\n' >"$T/tree/libfwrel/src/nolayer.c"
want='base (layer 0) includes fmt.h (layer 1)
nolayer: no layer in docs/architecture.md §2
up: no line in docs/architecture.md §3'
planted_check architecture_check "$want" "docs/architecture.md is not the map of the code"
finish
