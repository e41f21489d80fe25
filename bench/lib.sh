# bench/lib.sh - timing helpers shared by the benchmarks (sourced; needs $RUNS and $W).

# median_ms CMD...: median wall time in milliseconds over $RUNS runs.
median_ms() {
    local t=()
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s%N)
        "$@" >/dev/null 2>&1
        e=$(date +%s%N)
        t+=($(((e - s) / 1000)))
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p" | awk '{printf "%.2f", $1/1000}'
}

# time_us CMD...: wall time of one run in microseconds.
time_us() {
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s%N)
    echo $(((e - s) / 1000))
}

# median_of US...: the median of microsecond times, in milliseconds.
median_of() {
    printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p" | awk '{printf "%.2f", $1/1000}'
}

# peak_kb CMD...: peak resident set size in KiB of one run (GNU time).
peak_kb() {
    /usr/bin/time -f %M -o "$W/rss" "$@" >/dev/null 2>&1
    cat "$W/rss"
}

# ratio A B: A/B as "1.23x".
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'
}
