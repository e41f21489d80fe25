# espidf_component.sh - the ESP-IDF component and its example stay consistent (docs/device.md
# "The ESP-IDF component"): ESP-IDF is not installed here, so what can be checked without it is:
# the component compiles every source of the device core and the mbedTLS port, and only files
# that exist; every Kconfig option the component, the example or docs/device.md uses is defined,
# and every one defined is used and documented; the embedded files' symbols are the names
# CMakeLists.txt gives them; the NVS keys fit NVS (15 characters) and are documented; every core
# function called is declared in fwrel_dev.h; the manifests (idf_component.yml) parse, name
# esp_encrypted_img and point the example at the component. The checker first proves on a
# planted tree that it finds each fault.
. "$FWREL_SRC/tests/lib.sh"

COMP=libfwrel/device/esp-idf/fwrel_ota
EX=examples/esp-idf-ota

# espidf_check ROOT: prints one line per fault under ROOT.
espidf_check() {
    (
        cd "$1" || exit 1
        doc=docs/device.md
        for f in $COMP/CMakeLists.txt $COMP/Kconfig $COMP/idf_component.yml $COMP/fwrel_ota.c \
            $COMP/include/fwrel_ota.h $EX/CMakeLists.txt $EX/main/CMakeLists.txt $EX/main/main.c \
            $EX/main/idf_component.yml $EX/sdkconfig.defaults $EX/README.md $doc; do
            [ -f "$f" ] || echo "$f is missing"
        done

        # Sources: "${core}/X.c" is libfwrel/device/X.c; every core source and the port listed.
        srcs=$(sed -n '/^set(srcs/,/)/p' $COMP/CMakeLists.txt | grep -oE '"[^"]+\.c"' | tr -d '"')
        for s in $srcs; do
            case $s in
            '${core}/'*) p=libfwrel/device/${s#'${core}/'} ;;
            *) p=$COMP/$s ;;
            esac
            [ -f "$p" ] || echo "$COMP/CMakeLists.txt: $s: $p does not exist"
        done
        for c in $(sed -n 's/^add_library(fwrel_dev STATIC \(.*\))$/\1/p' libfwrel/device/CMakeLists.txt) \
            port_mbedtls.c; do
            printf '%s\n' "$srcs" | grep -qxF "\${core}/$c" ||
                echo "$COMP/CMakeLists.txt: libfwrel/device/$c is not compiled"
        done

        # Kconfig: used <=> defined, and documented.
        defined=$(sed -n 's/^ *config \(FWREL_OTA_[A-Z0-9_]*\) *$/\1/p' $COMP/Kconfig | sort -u)
        used=$(grep -ohE 'CONFIG_FWREL_OTA_[A-Z0-9_]+' $COMP/fwrel_ota.c $COMP/CMakeLists.txt |
            sed 's/^CONFIG_//' | sort -u)
        elsewhere=$(grep -oHE 'CONFIG_FWREL_OTA_[A-Z0-9_]+' $EX/sdkconfig.defaults $EX/main/main.c \
            $doc | sort -u)
        for o in $used; do
            printf '%s\n' "$defined" | grep -qx "$o" || echo "CONFIG_$o: used by the component, not in its Kconfig"
        done
        printf '%s\n' "$elsewhere" | while IFS=: read -r f o; do
            [ -n "$o" ] || continue
            printf '%s\n' "$defined" | grep -qx "${o#CONFIG_}" || echo "$f: $o is not in $COMP/Kconfig"
        done
        for o in $defined; do
            printf '%s\n' "$used" | grep -qx "$o" || echo "$COMP/Kconfig: $o is never used"
            grep -qE "(^|[^A-Z0-9_])(CONFIG_)?$o([^A-Z0-9_]|$)" $doc || echo "$doc: $o is not documented"
        done

        # Embedded files: asm("_binary_<name>_start") in the source, fwrel_ota_embed(... <name>)
        # in CMakeLists.txt (ESP-IDF names the symbols after the file, '.' made '_').
        embedded=$(sed -n 's/^ *fwrel_ota_embed("[^"]*" \([^ ]*\) .*/\1/p' $COMP/CMakeLists.txt |
            tr '.' '_' | sort -u)
        syms=$(grep -oE '"_binary_[a-z0-9_]+_(start|end)"' $COMP/fwrel_ota.c |
            sed -E 's/^"_binary_//; s/_(start|end)"$//' | sort -u)
        for s in $syms; do
            printf '%s\n' "$embedded" | grep -qx "$s" || echo "$COMP/fwrel_ota.c: _binary_${s}_start: no such embedded file"
        done
        for e in $embedded; do
            printf '%s\n' "$syms" | grep -qx "$e" || echo "$COMP/CMakeLists.txt: $e is embedded but never used"
        done

        # NVS keys: at most 15 characters, documented.
        sed -n 's/^#define KEY_[A-Z_]* *"\([^"]*\)".*/\1/p' $COMP/fwrel_ota.c | while read -r k; do
            [ ${#k} -le 15 ] || echo "$COMP/fwrel_ota.c: NVS key $k is longer than 15 characters"
            grep -q "\`$k\`" $doc || echo "$doc: NVS key $k is not documented"
        done

        # The core's API: every fwrel_dev_* function called is declared.
        for fn in $(grep -oE '\bfwrel_dev_[a-z_]+\(' $COMP/fwrel_ota.c | tr -d '(' | sort -u); do
            grep -qE "^[a-z].*\b$fn\(" libfwrel/device/fwrel_dev.h || echo "$COMP/fwrel_ota.c: $fn is not in fwrel_dev.h"
        done

        # Component manifests.
        python3 - "$COMP" "$EX" <<'EOF' 2>&1
import os, sys
comp, ex = sys.argv[1], sys.argv[2]
try:
    import yaml
except ImportError:
    sys.exit(0)
def load(p):
    try:
        with open(p) as f:
            return yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        print(f"{p}: does not parse: {str(e).splitlines()[0]}")
        return None
c = load(comp + "/idf_component.yml")
if c is not None:
    deps = c.get("dependencies") or {}
    if "espressif/esp_encrypted_img" not in deps:
        print(f"{comp}/idf_component.yml: no espressif/esp_encrypted_img dependency")
    if "idf" not in deps:
        print(f"{comp}/idf_component.yml: no idf version")
m = load(ex + "/main/idf_component.yml")
if m is not None:
    dep = (m.get("dependencies") or {}).get("fwrel_ota") or {}
    path = dep.get("path") if isinstance(dep, dict) else None
    if path is None or os.path.normpath(os.path.join(ex, "main", path)) != os.path.normpath(comp):
        print(f"{ex}/main/idf_component.yml: fwrel_ota does not point to {comp}")
EOF

        # The example calls the component's two entry points.
        for fn in fwrel_ota_update fwrel_ota_confirm; do
            grep -q "\b$fn(" $EX/main/main.c || echo "$EX/main/main.c: does not call $fn()"
        done
    )
}

# The checker finds each fault in a planted tree, and none in the repository.
mkdir -p "$T/tree"
(cd "$FWREL_SRC" && tar -cf - $COMP $EX docs/device.md libfwrel/device/CMakeLists.txt \
    libfwrel/device/*.c libfwrel/device/*.h) | (cd "$T/tree" && tar -xf -)
tc=$T/tree/$COMP
sed -i 's#"${core}/dev_json.c" ##; s#"fwrel_ota.c")#"fwrel_ota.c" "${core}/dev_gone.c")#' $tc/CMakeLists.txt
sed -i 's#fwrel_trusted_keys.pem embed_txt#fwrel_keys.pem embed_txt#' $tc/CMakeLists.txt
printf '    config FWREL_OTA_UNUSED\n        bool "x"\n' >>$tc/Kconfig
printf '#define KEY_LONG "a_very_long_nvs_key"\nint x = CONFIG_FWREL_OTA_BOGUS;\nvoid y(void) { fwrel_dev_gone(); }\n' >>$tc/fwrel_ota.c
printf 'CONFIG_FWREL_OTA_TYPO=y\n' >>"$T/tree/$EX/sdkconfig.defaults"
printf 'dependencies:\n  idf: ">=5.2"\n' >$tc/idf_component.yml
printf 'dependencies:\n  fwrel_ota:\n    path: ../../fwrel_ota\n' >"$T/tree/$EX/main/idf_component.yml"
want="$COMP/CMakeLists.txt: \${core}/dev_gone.c: libfwrel/device/dev_gone.c does not exist
$COMP/CMakeLists.txt: libfwrel/device/dev_json.c is not compiled
CONFIG_FWREL_OTA_BOGUS: used by the component, not in its Kconfig
$EX/sdkconfig.defaults: CONFIG_FWREL_OTA_TYPO is not in $COMP/Kconfig
$COMP/Kconfig: FWREL_OTA_UNUSED is never used
docs/device.md: FWREL_OTA_UNUSED is not documented
$COMP/fwrel_ota.c: _binary_fwrel_trusted_keys_pem_start: no such embedded file
$COMP/CMakeLists.txt: fwrel_keys_pem is embedded but never used
$COMP/fwrel_ota.c: NVS key a_very_long_nvs_key is longer than 15 characters
docs/device.md: NVS key a_very_long_nvs_key is not documented
$COMP/fwrel_ota.c: fwrel_dev_gone is not in fwrel_dev.h
$COMP/idf_component.yml: no espressif/esp_encrypted_img dependency
$EX/main/idf_component.yml: fwrel_ota does not point to $COMP"
if ! python3 -c 'import yaml' 2>/dev/null; then
    want=$(printf '%s\n' "$want" | grep -v 'idf_component.yml')
    skip "python3-yaml absent: the idf_component.yml files are not parsed"
fi
planted_check espidf_check "$want" "the ESP-IDF component is not consistent"
finish
