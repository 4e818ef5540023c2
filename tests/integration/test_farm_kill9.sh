#!/usr/bin/env bash
# The farm fault test of issue 6: one scheduler, three executor processes, a static pool of three
# loopback sshd nodes, VZ_FARM_BUILDS (default 300) builds of a short job; every 1-2 s a random
# executor is killed with SIGKILL and started again, VZ_FARM_KILLS (default 30) times. Then:
# every item ended with exactly one final build result, none was reported twice, no build is
# left queued or running, and no node stays in use. The totals are printed.
. "$(dirname "$0")/lib.sh"
vz_setup
BUILDS=${VZ_FARM_BUILDS:-300}
KILLS=${VZ_FARM_KILLS:-30}

make_repo "$T/repos/p.git"
for n in n1 n2 n3; do start_node "$n"; done
port=$(free_port)
write_config "$T/vinz.yaml" "$port" "sleep \$(awk 'BEGIN { srand(); printf \"%.1f\", 0.5 + rand() * 2 }')" 'echo done-$VINZ_CHANGE'
use_nodes "$T/vinz.yaml" farm n1 n2 n3
# ten attempts: a build may be hit by several of the kills; a job timeout of a minute
sed -i -e 's/attempts: 3/attempts: 10/' -e 's/^executor:/executor:\n  capacity: 4/' -e '/^  capacity: 2$/d' "$T/vinz.yaml"
sed -i 's/^    run:/    timeout: 60\n    run:/' "$T/vinz.yaml"
for i in 1 2 3; do
	sed -e "s/name: ex1/name: ex$i/" -e "s/^executor:/executor:\n  work_dir: ex$i-work/" "$T/vinz.yaml" > "$T/ex$i.yaml"
done
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
declare -a EX
start_ex() { "$VINZ" executor --config "$T/ex$1.yaml" >>"$T/executor$1.log" 2>&1 & EX[$1]=$!; VZ_PIDS+=("${EX[$1]}"); }
for i in 1 2 3; do start_ex "$i"; done

t0=$(date +%s)
# enqueue while the executors are being killed
(
	for i in $(seq 1 "$BUILDS"); do
		vz enqueue --pipeline check --project p --ref "refs/changes/$(( (i - 1) % 3 + 1 ))" --id "$i" >/dev/null ||
			{ echo "enqueue $i failed" > "$T/enqueue.failed"; exit 1; }
	done
) & ENQ=$!
VZ_PIDS+=("$ENQ")
kills=0
while (( kills < KILLS )); do
	sleep "1.$(( RANDOM % 10 ))"
	i=$(( RANDOM % 3 + 1 ))
	kill -9 "${EX[$i]}" 2>/dev/null || true
	wait "${EX[$i]}" 2>/dev/null || true
	start_ex "$i"
	kills=$(( kills + 1 ))
done
wait "$ENQ" || fail "$(cat "$T/enqueue.failed" 2>/dev/null)"
wait_until 300 queue_empty || fail "the queue did not drain after $KILLS kills: $(vz status --json | jq -c '.data? // .' | head -c 2000)"
t1=$(date +%s)

db="$T/state/vinz.db"
q() { sqlite3 "$db" "$1"; }
items=$(q "SELECT COUNT(*) FROM queue_items")
done_items=$(q "SELECT COUNT(*) FROM queue_items WHERE state='done'")
[ "$items" = "$BUILDS" ] && [ "$done_items" = "$BUILDS" ] || fail "want $BUILDS items done, have $done_items of $items"
# exactly one final build per item: everything else is an attempt given up on (LOST) or handed back (RETRY)
bad=$(q "SELECT COUNT(*) FROM (SELECT q.id, COUNT(b.id) AS n FROM queue_items q LEFT JOIN builds b ON b.item_id=q.id
	AND b.result NOT IN ('LOST','RETRY') GROUP BY q.id HAVING n != 1)")
[ "$bad" = 0 ] || fail "$bad items do not have exactly one final result"
left=$(q "SELECT COUNT(*) FROM builds WHERE state != 'done'")
[ "$left" = 0 ] || fail "$left builds left queued or running"
finals=$(q "SELECT result || ':' || COUNT(*) FROM builds WHERE result NOT IN ('LOST','RETRY') GROUP BY result" | tr '\n' ' ')
wrong=$(q "SELECT COUNT(*) FROM builds WHERE result NOT IN ('LOST','RETRY','SUCCESS','RETRY_LIMIT')")
[ "$wrong" = 0 ] || fail "unexpected final results: $finals"
# each item reported once (the git reporter logs one line per report)
dup=$(grep -o 'pipeline check: p change [0-9]* ' "$T/scheduler.log" | sort | uniq -d | head -3)
[ -z "$dup" ] || fail "items reported twice: $dup"
reported=$(grep -c 'pipeline check: p change [0-9]* .* reported ' "$T/scheduler.log" || true)
[ "$reported" = "$BUILDS" ] || fail "want $BUILDS reports, have $reported"
inuse=$(vz status --json | jq '[.nodes[].in_use] | add')
[ "$inuse" = 0 ] || fail "nodes still in use: $(vz status --json | jq -c .nodes)"
# every success ran its job to the end on a node
okruns=$(q "SELECT log_path FROM builds WHERE result='SUCCESS' LIMIT 20")
for l in $okruns; do grep -q 'done-' "$l" || fail "log of a successful build lacks the job's output: $l"; done
attempts=$(q "SELECT COUNT(*) FROM builds")
lost=$(q "SELECT COUNT(*) FROM builds WHERE result='LOST'")
retry=$(q "SELECT COUNT(*) FROM builds WHERE result='RETRY'")
echo "# farm: $BUILDS builds, $KILLS executor kills, $(( t1 - t0 )) s; $attempts attempts ($lost LOST, $retry RETRY); final: $finals"
ok "farm of 3 executors with $KILLS kill -9s: every build ended once, reported once, no node left in use"
