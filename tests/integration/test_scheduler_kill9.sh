#!/usr/bin/env bash
# kill -9 the scheduler mid-build and start it again: the queue item is still there, the executor
# (which kept running the build) reconnects and delivers the result, and the item completes with
# exactly one result.
. "$(dirname "$0")/lib.sh"
vz_setup
make_repo "$T/repos/p.git"
port=$(free_port)
write_config "$T/vinz.yaml" "$port" "sleep 3" "echo survived"
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
start_executor
vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null
wait_until 20 build_started 1 || fail "build did not start"
kill -9 "$SCHED_PID"
wait "$SCHED_PID" 2>/dev/null || true
sleep 0.5
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come back"
# right after the restart the item is still queued
vz status --json | jq -e '[.pipelines[].items[] | select(.change == "1")] | length == 1' >/dev/null \
	|| fail "the queue item was not restored"
wait_until 40 queue_empty || fail "the item did not complete after the scheduler restart"
j=$(builds_json 1)
[ "$(jq '[.[] | select(.final)] | length' <<<"$j")" = 1 ] || fail "want exactly one final result: $j"
[ "$(jq -r '[.[] | select(.final)][0].result' <<<"$j")" = SUCCESS ] || fail "result is not SUCCESS: $j"
grep -q survived "$(jq -r '[.[] | select(.final)][0].log_url' <<<"$j")" || fail "the log did not reach the restarted scheduler"
sqlite3 "$T/state/vinz.db" "PRAGMA integrity_check" | grep -qx ok || fail "database integrity"
ok "scheduler killed mid-build and restarted: item restored and completed with one result"

# and a restart while builds are only queued (no executor connected)
kill -9 "$EXEC_PID"; wait "$EXEC_PID" 2>/dev/null || true
vz enqueue --pipeline check --project p --ref refs/changes/2 --id 2 >/dev/null
kill -9 "$SCHED_PID"; wait "$SCHED_PID" 2>/dev/null || true
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come back"
start_executor
wait_until 40 queue_empty || fail "queued item did not complete after the restart"
[ "$(builds_json 2 | jq -r '[.[] | select(.final)][0].result')" = SUCCESS ] || fail "change 2 result"
ok "queued item survives a scheduler kill -9"
