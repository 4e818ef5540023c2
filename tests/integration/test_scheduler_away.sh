#!/usr/bin/env bash
# The scheduler unreachable for 30 s (issue 6): kill -9 it while three builds run on two executor
# processes; the builds go on, finish while it is away (their results wait on the executors), and
# when it starts again the executors deliver the results and whole logs: every item completes with
# one final result and no attempt is lost or re-run. VZ_AWAY_S changes the 30 s.
. "$(dirname "$0")/lib.sh"
vz_setup
AWAY=${VZ_AWAY_S:-30}
make_repo "$T/repos/p.git"
port=$(free_port)
write_config "$T/vinz.yaml" "$port" 'echo start-$VINZ_CHANGE' 'sleep 4' 'echo end-$VINZ_CHANGE'
sed -e "s/name: ex1/name: ex2/" -e "s/^executor:/executor:\n  work_dir: ex2-work/" "$T/vinz.yaml" > "$T/ex2.yaml"
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
start_executor
"$VINZ" executor --config "$T/ex2.yaml" >>"$T/executor2.log" 2>&1 & VZ_PIDS+=($!)
for i in 1 2 3; do vz enqueue --pipeline check --project p --ref refs/changes/$i --id $i >/dev/null; done
for i in 1 2 3; do wait_until 20 build_started $i || fail "build $i did not start"; done
kill -9 "$SCHED_PID"
wait "$SCHED_PID" 2>/dev/null || true
t0=$(date +%s)
# the builds finish while the scheduler is away: their end lines reach the executors' own logs
for i in 1 2 3; do
	wait_until 30 bash -c "grep -rqs end-$i '$T'/state/executor '$T'/ex2-work" || fail "build $i did not finish while the scheduler was away"
done
sleep $(( AWAY - ($(date +%s) - t0) > 0 ? AWAY - ($(date +%s) - t0) : 0 ))
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come back"
wait_until 40 queue_empty || fail "items did not complete after the scheduler came back"
for i in 1 2 3; do
	j=$(builds_json $i)
	[ "$(jq length <<<"$j")" = 1 ] || fail "change $i: want one attempt (nothing re-run), have: $j"
	[ "$(jq -r '.[0].result' <<<"$j")" = SUCCESS ] || fail "change $i: result: $j"
	grep -q "end-$i" "$(jq -r '.[0].log_url' <<<"$j")" || fail "change $i: the log did not reach the scheduler whole"
done
ok "scheduler away for ${AWAY} s: builds finished meanwhile, results and logs delivered on its return, nothing re-run"
