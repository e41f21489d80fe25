#!/bin/bash
# bench/device-size.sh [--check] [OUTDIR] - the device core (libfwrel/device, without a crypto
# port) cross-compiled for the ESP32-C3's ISA (rv32imc, ilp32, -Os, freestanding) with Debian's
# gcc-riscv64-unknown-elf: prints the code size per object and in all, the stack frame of every
# function (-fstack-usage) and the worst call chain (-fcallgraph-info=su: the frames summed along
# the deepest path; indirect calls, i.e. the crypto port and the step callback, are not in it and
# come on top). --check (the ctest device/rv32imc) also fails when the code is 24 KiB or more,
# the worst chain 4 KiB or more, a frame is dynamic, or the objects need anything but the
# compiler's own helpers (mem*, libgcc's __*di3): no libc, no malloc, no stdio, no OS.
# Exit 77 (skipped) without the cross compiler.
set -euo pipefail
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here/libfwrel/device
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/fwrel-rv32.XXXXXX")}
cc=${RISCV_CC:-riscv64-unknown-elf-gcc}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "skipped: $cc not installed (apt-get install gcc-riscv64-unknown-elf; scripts/deps.sh)"
    exit 77
fi
prefix=${cc%gcc}
mkdir -p "$out"
flags=(-march=rv32imc -mabi=ilp32 -Os -ffreestanding -fstack-usage -fcallgraph-info=su
       -std=c99 -Wall -Wextra -Werror -Wvla -ffunction-sections)
objs=()
for f in dev_verify dev_bind dev_json dev_util; do
    (cd "$out" && "$cc" "${flags[@]}" -c "$src/$f.c" -o "$f.o")
    objs+=("$out/$f.o")
done
echo "rv32imc -Os, $("$cc" --version | head -1)"
"${prefix}size" -t "${objs[@]}" | sed "s#$out/##"
text=$("${prefix}size" -t "${objs[@]}" | awk '/TOTALS/ {print $1}')
data=$("${prefix}size" -t "${objs[@]}" | awk '/TOTALS/ {print $2 + $3}')
python3 - "$out" "$check" "$text" "$data" <<'PY'
import glob, os, re, sys
out, check, text, data = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
frames, kinds, edges = {}, {}, {}
for ci in glob.glob(os.path.join(out, "*.ci")):
    for line in open(ci):
        m = re.match(r'node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes \((\w+)\)"', line)
        if m:
            name = m.group(1).split(":")[-1]
            frames[name], kinds[name] = int(m.group(2)), m.group(3)
        m = re.match(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', line)
        if m:
            edges.setdefault(m.group(1).split(":")[-1], set()).add(m.group(2).split(":")[-1])
memo = {}
def worst(f, seen=()):
    if f in seen:
        raise SystemExit("recursion through %s: the stack is not bounded" % f)
    if f not in memo:
        best, path = 0, []
        for g in edges.get(f, ()):
            d, p = worst(g, seen + (f,))
            if d > best:
                best, path = d, p
        memo[f] = (frames.get(f, 0) + best, [f] + path)
    return memo[f]
print("\nstack per function (bytes; worst chain below it):")
rows = sorted(frames, key=lambda f: -worst(f)[0])
for f in rows:
    print("  %-28s frame %4d  chain %5d  %s" % (f, frames[f], worst(f)[0], kinds[f]))
entries = ["fwrel_dev_verify", "fwrel_dev_bind_start", "fwrel_dev_bind_update",
           "fwrel_dev_bind_finish", "fwrel_dev_ota_decision"]
top = max(entries, key=lambda f: worst(f)[0])
depth, path = worst(top)
print("\ncode %d bytes (%.1f KiB), data+bss %d; worst stack %d bytes: %s" %
      (text, text / 1024, data, depth, " > ".join(path)))
bad = []
if text >= 24 * 1024:
    bad.append("code %d bytes: the goal is under 24 KiB" % text)
if depth >= 4 * 1024:
    bad.append("worst stack %d bytes: the goal is under 4 KiB" % depth)
dyn = [f for f in kinds if kinds[f] != "static"]
if dyn:
    bad.append("frames not static: " + ", ".join(dyn))
if check and bad:
    raise SystemExit("FAIL: " + "; ".join(bad))
PY
# Only the compiler's helpers may be left undefined: no libc, no OS.
undef=$("${prefix}nm" -u "${objs[@]}" | awk 'NF == 2 {print $2}' | sort -u)
defined=$("${prefix}nm" --defined-only "${objs[@]}" | awk 'NF == 3 {print $3}' | sort -u)
foreign=$(comm -23 <(echo "$undef") <(echo "$defined") |
          grep -Ev '^(memcpy|memset|memmove|memcmp|__[a-z]+di3)$' || true)
echo "needs from outside: $(comm -23 <(echo "$undef") <(echo "$defined") | tr '\n' ' ')"
if [ "$check" = 1 ] && [ -n "$foreign" ]; then
    echo "FAIL: the core calls outside itself: $foreign"
    exit 1
fi
