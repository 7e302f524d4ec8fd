#!/usr/bin/env bash
# Builds SameDay's fuzz targets (Fuzz/Harnesses, libFuzzer + AddressSanitizer) and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]     default: 60 seconds each, every target
#
# Targets: time csv json event configuration mapping fieldtable dossier-record board forecast (docs/fuzzing.md). Everything is built under
# .build-fuzz/fuzz/ (ignored by git); the corpus a run grows is kept in .build-fuzz/fuzz/corpus/TARGET and reused by
# the next run, next to the seeds of Fuzz/corpus/TARGET. Exit status 1 on any crash, trap (a harness traps on a
# round-trip difference), hang (-timeout), leak (LeakSanitizer) or out-of-memory; the input that did it is left in
# .build-fuzz/fuzz/artifacts/. Reproduce with: .build-fuzz/fuzz/bin/TARGET ARTIFACT
#
# Environment: SWIFTC (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc), FUZZ_TIMEOUT (seconds one input
# may take, default 10; three times that for configuration), FUZZ_JOBS (targets run at the same time, default 1), FUZZ_ARGS (more libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
if [ $# -gt 0 ]; then shift; fi
ALL_TARGETS=(time csv json event configuration mapping fieldtable dossier-record board forecast)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
case "$SECONDS_EACH" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$SECONDS_EACH'" >&2; exit 2 ;; esac
for t in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) echo "fuzz.sh: unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2; exit 2 ;; esac
done

SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
[ -x "$SWIFTC" ] || { echo "fuzz.sh: no swiftc (set SWIFTC or put Swift 6.3 on PATH)" >&2; exit 2; }
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_JOBS=${FUZZ_JOBS:-1}
OUT=.build-fuzz/fuzz
LIB=$OUT/lib
BIN=$OUT/bin
mkdir -p "$LIB" "$BIN" "$OUT/artifacts" "$OUT/logs"

# Everything is compiled with coverage for libFuzzer and AddressSanitizer; optimised, with debug information.
COMMON=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 -I "$LIB")
# SameDay's own modules, as SwiftPM builds them (one package).
OWN=(-package-name samedayfuzz)

# stale OUTPUT INPUT…: whether the output is missing or older than an input (or this script).
stale() {
    local output=$1
    shift
    [ -e "$output" ] || return 0
    [ -n "$(find "$@" scripts/fuzz.sh -newer "$output" -print -quit 2>/dev/null)" ]
}

# build_library MODULE SOURCE_DIR [swiftc flags…]: a static library and its module, with internal access for
# @testable harnesses. Libraries are built in dependency order, and one is also rebuilt when a library built before
# it changed: a client compiled against a dependency's old layout links and then corrupts memory (a fuzz finding in
# swift_release, not a compile error).
BUILT_LIBRARIES=()
build_library() {
    local module=$1 dir=$2
    shift 2
    if stale "$LIB/lib$module.a" "$dir" "${BUILT_LIBRARIES[@]}"; then
        echo "fuzz.sh: building $module"
        local sources
        mapfile -t sources < <(find "$dir" -name '*.swift' | sort)
        "$SWIFTC" "${COMMON[@]}" -enable-testing -wmo -module-name "$module" -emit-module \
            -emit-module-path "$LIB/$module.swiftmodule" -emit-library -static -o "$LIB/lib$module.a" \
            "$@" "${sources[@]}"
    fi
    BUILT_LIBRARIES+=("$LIB/lib$module.a")
}

swift_log_sources() {
    local dir
    for dir in .build-fuzz/checkouts/swift-log .build/checkouts/swift-log; do
        [ -d "$dir/Sources/Logging" ] && { echo "$dir/Sources/Logging"; return; }
    done
    echo "fuzz.sh: fetching the package's dependencies (swift-log) into .build-fuzz" >&2
    "$(dirname "$SWIFTC")/swift" package resolve --scratch-path .build-fuzz >&2
    echo .build-fuzz/checkouts/swift-log/Sources/Logging
}

# swift-crypto (SameDayBroker's SHA-256), built by SwiftPM into .build-fuzz without instrumentation (libFuzzer needs
# coverage in SameDay's own code only) and archived as one static library with its BoringSSL.
CRYPTO_MODULES=.build-fuzz/release/Modules
build_crypto() {
    if [ ! -e "$LIB/libCrypto.a" ] || [ ! -e "$CRYPTO_MODULES/Crypto.swiftmodule" ]; then
        echo "fuzz.sh: building swift-crypto (once)"
        "$(dirname "$SWIFTC")/swift" build --scratch-path .build-fuzz --target Crypto -c release >&2
        local objects
        # Crypto and the C targets under it: BoringSSL, XKCP (SHA-3), their shims.
        mapfile -t objects < <(find .build-fuzz/release/Crypto.build .build-fuzz/release/CryptoBoringWrapper.build \
            .build-fuzz/release/CCryptoBoringSSL*.build .build-fuzz/release/CXKCP*.build -name '*.o' | sort)
        rm -f "$LIB/libCrypto.a"
        ar rcs "$LIB/libCrypto.a" "${objects[@]}"
    fi
}

needs_adapters=false
needs_rabbitmq=false
needs_board=false
for t in "${TARGETS[@]}"; do
    case $t in
        mapping) needs_adapters=true; needs_rabbitmq=true ;; fieldtable) needs_rabbitmq=true ;; board) needs_board=true ;;
    esac
done

build_library SameDayCore Sources/SameDayCore "${OWN[@]}"
if $needs_rabbitmq; then
    build_library Logging "$(swift_log_sources)" -package-name swift_log -enable-upcoming-feature ExistentialAny \
        -enable-upcoming-feature MemberImportVisibility -enable-upcoming-feature InternalImportsByDefault
    build_library SameDayFiles Sources/SameDayFiles "${OWN[@]}"
    build_library RabbitMQ Sources/RabbitMQ "${OWN[@]}" -I Sources/CRabbitMQ
fi
if $needs_adapters; then
    build_crypto
    build_library SameDayBroker Sources/SameDayBroker "${OWN[@]}" -I Sources/CRabbitMQ -I "$CRYPTO_MODULES"
    build_library SameDayAdapters Sources/SameDayAdapters "${OWN[@]}" -I Sources/CRabbitMQ -I "$CRYPTO_MODULES"
fi

# The board's readers: its pure files only (the view, the login's files and form, board.json), without the HTTP side.
if $needs_board; then
    board_sources=(Sources/SameDayBoard/BoardView.swift Sources/SameDayBoard/BoardAuth.swift
        Sources/SameDayBoard/BoardSettings.swift)
    if stale "$LIB/libSameDayBoard.a" "${board_sources[@]}"; then
        echo "fuzz.sh: building SameDayBoard (its pure files)"
        "$SWIFTC" "${COMMON[@]}" -enable-testing -wmo -module-name SameDayBoard -emit-module \
            -emit-module-path "$LIB/SameDayBoard.swiftmodule" -emit-library -static -o "$LIB/libSameDayBoard.a" \
            "${OWN[@]}" "${board_sources[@]}"
    fi
fi

# Per target: harness, libraries to link, longest input.
harness_of() {
    case $1 in
        time) echo Time ;; csv) echo CSV ;; json) echo JSON ;; event) echo Event ;;
        configuration) echo Configuration ;; mapping) echo Mapping ;; fieldtable) echo FieldTable ;;
        dossier-record) echo DossierRecord ;; board) echo Board ;; forecast) echo Forecast ;;
    esac
}
libraries_of() {
    case $1 in
        mapping) echo "SameDayAdapters SameDayBroker SameDayFiles RabbitMQ Logging SameDayCore Crypto" ;;
        fieldtable) echo "RabbitMQ SameDayFiles Logging" ;;
        board) echo "SameDayBoard SameDayCore" ;;
        *) echo SameDayCore ;;
    esac
}
# A configuration at the loader's bounds (1,000 calendars, each building a 45-year day cache) legitimately takes
# seconds under AddressSanitizer on a busy machine: that target gets three times the timeout.
timeout_of() {
    case $1 in configuration) echo $((FUZZ_TIMEOUT * 3)) ;; *) echo "$FUZZ_TIMEOUT" ;; esac
}
max_len_of() {
    case $1 in
        time) echo 64 ;; configuration) echo 32768 ;; mapping | json | board | forecast) echo 8192 ;; *) echo 4096 ;;
    esac
}

for t in "${TARGETS[@]}"; do
    harness=Fuzz/Harnesses/$(harness_of "$t").swift
    libs=()
    for l in $(libraries_of "$t"); do libs+=("$LIB/lib$l.a"); done
    # The shared fixture configuration, for the harnesses that use it (it needs SameDayCore linked in).
    shared=()
    if grep -q fixtureConfig "$harness"; then shared=(Fuzz/Harnesses/Shared/FixtureConfiguration.swift); fi
    if stale "$BIN/$t" "$harness" "${shared[@]}" "${libs[@]}"; then
        echo "fuzz.sh: building target $t"
        extra=()
        if [ "$t" = mapping ] || [ "$t" = fieldtable ]; then
            extra=(-I Sources/CRabbitMQ -I Fuzz/CAMQPFuzz -lrabbitmq)
            if [ "$t" = mapping ]; then extra+=(-I "$CRYPTO_MODULES" -lstdc++); fi
        fi
        "$SWIFTC" "${COMMON[@]}" -use-ld=lld "${extra[@]}" "$harness" "${shared[@]}" "${libs[@]}" -o "$BIN/$t"
    fi
done

# run TARGET: one bounded campaign; prints its summary line, returns non-zero on a finding.
run() {
    local t=$1
    local work=$OUT/corpus/$t log=$OUT/logs/$t.log
    mkdir -p "$work" "Fuzz/corpus/$t"
    local status=0
    # shellcheck disable=SC2086
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
        "$BIN/$t" -max_total_time="$SECONDS_EACH" -timeout="$(timeout_of "$t")" -rss_limit_mb=2048 \
        -max_len="$(max_len_of "$t")" -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" \
        ${FUZZ_ARGS:-} "$work" "Fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    local executions seconds corpus verdict=""
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    corpus=$(find "$work" -type f | wc -l)
    if [ $status -ne 0 ]; then
        if grep -q 'ERROR: libFuzzer: timeout' "$log"; then verdict="FAILED: hang"
        elif grep -q 'ERROR: LeakSanitizer' "$log"; then verdict="FAILED: leak"
        elif grep -q 'out-of-memory' "$log"; then verdict="FAILED: out of memory"
        elif grep -q 'ERROR: AddressSanitizer' "$log"; then verdict="FAILED: memory error"
        elif grep -q 'Fatal error\|deadly signal' "$log"; then verdict="FAILED: crash or round-trip difference"
        else verdict="FAILED: exit status $status"; fi
        local artifact
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        verdict=" — $verdict (input: ${artifact:-none}; log: $log)"
        grep -m1 -E 'Fatal error|ERROR: ' "$log" | sed 's/^/    /' >&2 || true
    fi
    printf 'fuzz %-14s %-8s executions %10s in %4s s, corpus %5s%s\n' "$t" \
        "$([ $status -eq 0 ] && echo ok || echo FAILED)" "${executions:-0}" "${seconds:-?}" "$corpus" \
        "$verdict"
    return $status
}

failed=0
if [ "$FUZZ_JOBS" -le 1 ]; then
    for t in "${TARGETS[@]}"; do run "$t" || failed=1; done
else
    pids=()
    for t in "${TARGETS[@]}"; do
        run "$t" &
        pids+=($!)
        if [ ${#pids[@]} -ge "$FUZZ_JOBS" ]; then
            for p in "${pids[@]}"; do wait "$p" || failed=1; done
            pids=()
        fi
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
fi
exit $failed
