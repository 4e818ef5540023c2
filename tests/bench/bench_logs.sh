#!/usr/bin/env bash
# Live-log latency: a job on a local node writes N lines (default 100) 30 ms apart, each carrying
# the time it was written; `vinz logs -f` (scheduler and executor as separate processes over tcp
# loopback, the CLI on the admin endpoint) prints them, and each line is stamped when it reaches
# the terminal. The peer, measured in the same run, is the floor: the same loop piped straight
# into the same stamper. Prints median / p95 / max for both. Never fails on timing.
# Run: cd build && VINZ=$PWD/vinz bash ../tests/bench/bench_logs.sh   (VZ_BENCH_LINES=N)
. "$(dirname "$0")/../integration/lib.sh"
vz_setup
N=${VZ_BENCH_LINES:-100}
loop="for i in \$(seq 1 $N); do echo \"tick \$i \$(date +%s%N)\"; sleep 0.03; done"
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s%N)" "$l"; done; }
stats() { # file -> "median p95 max" in ms
	awk '/ tick [0-9]+ [0-9]+$/ { print ($1 - $NF) / 1e6 }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { if (!NR) { print "- - -"; exit }
			printf "%.1f %.1f %.1f\n", v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.5) < 1 ? 1 : int(NR * 0.95 + 0.5)], v[NR] }'
}

bash -c "$loop" | stamp > "$T/pipe.stamped"
read -r pm pp px < <(stats "$T/pipe.stamped")

make_repo "$T/repos/p.git"
port=$(free_port)
write_config "$T/vinz.yaml" "$port" "$loop"
start_scheduler
start_executor
wait_until 10 vz status --json || fail "scheduler did not come up"
vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null
wait_until 20 build_started 1 || fail "build did not start"
u=$(builds_json 1 | jq -r '.[0].uuid')
"$VINZ" logs -f "$u" --config "$T/vinz.yaml" 2>"$T/logs.err" | stamp > "$T/vinz.stamped" || true
read -r vm vp vx < <(stats "$T/vinz.stamped")
got=$(grep -c ' tick ' "$T/vinz.stamped" || true)

printf '%-44s %8s %8s %8s\n' "node write -> terminal, $N lines" "median" "p95" "max"
printf '%-44s %6s ms %6s ms %6s ms\n' "pipe into the stamper (floor)" "$pm" "$pp" "$px"
printf '%-44s %6s ms %6s ms %6s ms\n' "vinz logs -f (executor -> scheduler -> CLI)" "$vm" "$vp" "$vx"
printf 'lines seen by vinz logs -f: %s of %s; goal: every line within 100 ms\n' "$got" "$N"
[ "$got" = "$N" ] || { echo "vinz logs -f said:"; cat "$T/logs.err"; }
