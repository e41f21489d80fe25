# Source rules that tools can check (HACKING.md "Conventions"): no unbounded string or number
# parsing functions in the library and commands; the library never prints.
. "$FWREL_SRC/tests/lib.sh"
cd "$FWREL_SRC"
banned='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atoll|sscanf|gets)[[:space:]]*\('
hits=$(grep -nE "$banned" libfwrel/src/*.c libfwrel/src/*.h cmd/*.c cmd/*.h 2>/dev/null || true)
if [ -n "$hits" ]; then fail "banned functions: $hits"; else ok; fi
prints=$(grep -nE '\b(printf|fprintf|puts|fputs|perror|ERR_print_errors_fp)[[:space:]]*\(' \
    libfwrel/src/*.c 2>/dev/null || true)
if [ -n "$prints" ]; then fail "the library prints: $prints"; else ok; fi
# Every public function declared in a header carries a doc comment right above it.
for h in libfwrel/include/fwrel/*.h; do
    undoc=$(awk '
        /^\/\*\*|^ \*\/|\*\/$/ { last_comment = NR }
        /^[a-z].*[^a-z_]fwrel_[a-z0-9_]+\(/ && !/^typedef/ && !/^static/ {
            if (NR - last_comment > 1) print FILENAME ":" NR ": " $0
        }' "$h")
    if [ -n "$undoc" ]; then fail "undocumented public functions: $undoc"; else ok; fi
done
finish
