# Bash completion installed by `cmake --install` (issue 15 point 9, docs/cli.md "Shell
# completion"): share/bash-completion/completions/<cmd> for each of the five commands, generated
# from the command's option table, the same script `--completion bash` prints; sourced in bash it
# completes an option, an option's value and the alias spellings.
. "$FWREL_SRC/tests/lib.sh"
command -v cmake >/dev/null || { echo "FAIL: no cmake"; exit 1; }

expect_rc 0 "cmake --install" cmake --install "$FWREL_BIN" --prefix "$T/p"
C=$T/p/share/bash-completion/completions
for cmd in fwrel-keygen fwrel-sign fwrel-encrypt fwrel-bundle fwrel-verify; do
    if [ -f "$C/$cmd" ]; then ok; else fail "no installed completion for $cmd"; continue; fi
    "$FWREL_BIN/$cmd" --completion bash >"$T/$cmd.want"
    expect_same "$C/$cmd" "$T/$cmd.want" "$cmd: installed completion is --completion bash's"
    # Every option of the table (--list-options) is offered for "--".
    words=$(bash -c '. "$1"; fn=_${2//-/_}; COMP_WORDS=("$2" --); COMP_CWORD=1; $fn;
        printf "%s\n" "${COMPREPLY[@]}"' _ "$C/$cmd" "$cmd" | sort)
    want=$("$FWREL_BIN/$cmd" --list-options | awk '{print $1}' | sort)
    [ "$words" = "$want" ] && ok || fail "$cmd: '--' completes to '$words', not the table '$want'"
    # complete -p names the function for the command.
    run bash -c '. "$1"; complete -p "$2"' _ "$C/$cmd" "$cmd"
    expect_out "^complete -o filenames -F _${cmd//-/_} $cmd\$" "$cmd: complete -p"
done

# A prefix completes to the one option it starts.
run bash -c '. "$1"; COMP_WORDS=(fwrel-verify --rep); COMP_CWORD=1; _fwrel_verify;
    printf "%s\n" "${COMPREPLY[@]}"' _ "$C/fwrel-verify"
[ "$OUT" = "$(printf -- '--repo\n--report')" ] && ok || fail "--rep completes to '$OUT'"
# An option's value: a DIR completes directories only.
mkdir "$T/w" "$T/w/ksdir" && : >"$T/w/ksfile"
run bash -c 'cd "$2"; . "$1"; COMP_WORDS=(fwrel-keygen --keystore k); COMP_CWORD=2; _fwrel_keygen;
    printf "%s\n" "${COMPREPLY[@]}"' _ "$C/fwrel-keygen" "$T/w"
[ "$OUT" = ksdir ] && ok || fail "--keystore k completes to '$OUT', not the directory ksdir"
finish
