#!/usr/bin/env bash
# vinz logs: -f follows a running build through the scheduler's admin endpoint (scheduler and
# executor are separate processes over tcp loopback, the node is local), printing every line in
# order as it is written and exactly the stored log in the end; without -f it prints what is
# there; ids may be unique prefixes; unknown and malformed ids and a failed build give
# the documented exit codes. Prints the measured node-to-terminal latency (not asserted: see
# tests/bench/bench_logs.sh for the figure against its floor).
. "$(dirname "$0")/lib.sh"
vz_setup

make_repo "$T/repos/p.git"
port=$(free_port)
# 10 lines, 0.2 s apart, each carrying the time it was written; change 2 fails at the end
write_config "$T/vinz.yaml" "$port" \
	'for i in 1 2 3 4 5 6 7 8 9 10; do echo "tick $i $(date +%s%N)"; sleep 0.2; done' \
	'test "$VINZ_CHANGE" != 2'
start_scheduler
start_executor
wait_until 10 vz status --json || fail "scheduler did not come up"

# stamps each line with the time it reached us
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s%N)" "$l"; done; }

vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null
wait_until 20 build_started 1 || fail "build of change 1 did not start"
u1=$(builds_json 1 | jq -r '.[0].uuid')
set +e
"$VINZ" logs -f "${u1:0:8}" --config "$T/vinz.yaml" 2>"$T/follow.err" | tee "$T/follow.out" | stamp > "$T/stamped"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || fail "logs -f of a passing build should exit 0, got $rc: $(cat "$T/follow.err")"
grep -q "build $u1: SUCCESS" "$T/follow.err" || fail "logs -f should end naming the result: $(cat "$T/follow.err")"
seq_seen=$(grep -o 'tick [0-9]* ' "$T/follow.out" | awk '{print $2}' | tr '\n' ' ')
[ "$seq_seen" = "1 2 3 4 5 6 7 8 9 10 " ] || fail "lines missing or out of order: '$seq_seen'"
log_file=$(builds_json 1 | jq -r '.[0].log_url')
cmp -s "$T/follow.out" "$log_file" || fail "logs -f printed something other than the stored log"
ok "logs -f (by prefix) follows a running build in order and ends with exactly the stored log"

# latency: when the line reached us minus when the node wrote it (the `date` inside the job)
lat=$(awk '/ tick [0-9]+ [0-9]+$/ { n=$NF; print int(($1 - n) / 1000000) }' "$T/stamped" | sort -n)
echo "# node-to-terminal latency per line (ms): $(tr '\n' ' ' <<<"$lat")"
echo "# median $(sed -n "$(( ($(wc -l <<<"$lat") + 1) / 2 ))p" <<<"$lat") ms, max $(tail -n1 <<<"$lat") ms"

"$VINZ" logs "$u1" --config "$T/vinz.yaml" > "$T/plain.out" || fail "logs of a finished build should exit 0"
cmp -s "$T/plain.out" "$log_file" || fail "logs without -f should print the whole stored log"
ok "logs without -f prints a finished build's whole log"

vz enqueue --pipeline check --project p --ref refs/changes/2 --id 2 >/dev/null
wait_until 20 build_started 2 || fail "build of change 2 did not start"
u2=$(builds_json 2 | jq -r '.[0].uuid')
"$VINZ" logs "$u2" --config "$T/vinz.yaml" > "$T/partial.out" || fail "logs of a running build should exit 0"
set +e
"$VINZ" logs --follow "$u2" --config "$T/vinz.yaml" > "$T/follow2.out" 2>"$T/follow2.err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "logs -f of a failing build should exit 1, got $rc"
grep -q "build $u2: FAILURE" "$T/follow2.err" || fail "logs -f should name FAILURE: $(cat "$T/follow2.err")"
cmp -s "$T/follow2.out" "$(builds_json 2 | jq -r '.[0].log_url')" || fail "follow of a failing build: wrong log"
head -c "$(stat -c %s "$T/partial.out")" "$T/follow2.out" | cmp -s - "$T/partial.out" ||
	fail "what logs printed while the build ran is not a prefix of its final log"
ok "logs of a running build prints a prefix of its log; -f of a failing build exits 1"

set +e
"$VINZ" logs ffffffff --config "$T/vinz.yaml" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "no build with an id starting with 'ffffffff'" "$T/err" || fail "unknown id: rc $rc $(cat "$T/err")"
set +e
"$VINZ" logs 'x;DROP' --config "$T/vinz.yaml" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "is not a build id" "$T/err" || fail "malformed id: rc $rc $(cat "$T/err")"
set +e
"$VINZ" logs 2>/dev/null; rc=$?
set -e
[ "$rc" = 2 ] || fail "logs without a build id is a usage error, got $rc"
"$VINZ" logs --help | grep -q "usage: vinz logs" || fail "logs --help"
ok "unknown, malformed and missing ids give clear errors and the documented exit codes"
