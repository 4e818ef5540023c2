#!/usr/bin/env bash
# Scheduler and executor as two processes over tcp loopback. kill -9 the executor mid-build and
# start it again: the build is re-run (a new attempt) and exactly one result is recorded. Then
# kill -9 it for good while a second executor runs: after the lease the build moves there.
. "$(dirname "$0")/lib.sh"
vz_setup
make_repo "$T/repos/p.git"
port=$(free_port)
write_config "$T/vinz.yaml" "$port" "sleep 2" "echo build-finished"
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
start_executor

vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null
wait_until 20 build_started 1 || fail "build for change 1 did not start"
kill -9 "$EXEC_PID"
start_executor
wait_until 40 queue_empty || fail "change 1 did not complete after the executor restart"
j=$(builds_json 1)
[ "$(jq '[.[] | select(.final)] | length' <<<"$j")" = 1 ] || fail "want exactly one final result: $j"
[ "$(jq -r '[.[] | select(.final)][0].result' <<<"$j")" = SUCCESS ] || fail "final result is not SUCCESS: $j"
[ "$(jq -r '[.[] | select(.attempt == 1)][0].result' <<<"$j")" = LOST ] || fail "attempt 1 should be LOST: $j"
[ "$(jq -r '[.[] | select(.final)][0].attempt' <<<"$j")" = 2 ] || fail "the re-run should be attempt 2: $j"
grep -q build-finished "$(jq -r '[.[] | select(.final)][0].log_url' <<<"$j")" || fail "log of the re-run is incomplete"
# the database agrees: one row with a final result for this change's job
n=$(sqlite3 "$T/state/vinz.db" "SELECT COUNT(*) FROM builds b JOIN queue_items q ON q.id=b.item_id WHERE q.change_id='1' AND b.result NOT IN ('LOST','RETRY')")
[ "$n" = 1 ] || fail "database holds $n final results"
ok "executor killed mid-build and restarted: build re-run as attempt 2, one result recorded"

# second executor under another name; the first dies for good mid-build
sed 's/name: ex1/name: ex2/' "$T/vinz.yaml" > "$T/vinz2.yaml"
vz enqueue --pipeline check --project p --ref refs/changes/2 --id 2 >/dev/null
wait_until 20 build_started 2 || fail "build for change 2 did not start"
first=$(builds_json 2 | jq -r '.[0].executor')
"$VINZ" executor --config "$T/vinz2.yaml" >>"$T/executor2.log" 2>&1 & EX2_PID=$!; VZ_PIDS+=("$EX2_PID")
if [[ "$first" == ex1/* ]]; then kill -9 "$EXEC_PID"; else kill -9 "$EX2_PID"; fi
wait_until 40 queue_empty || fail "change 2 did not complete after its executor died"
j=$(builds_json 2)
[ "$(jq '[.[] | select(.final)] | length' <<<"$j")" = 1 ] || fail "want exactly one final result: $j"
[ "$(jq -r '[.[] | select(.final)][0].result' <<<"$j")" = SUCCESS ] || fail "final result is not SUCCESS: $j"
jq -e '[.[] | select(.result == "LOST")][0].message | test("lease expired")' <<<"$j" >/dev/null || fail "lost attempt should say the lease expired: $j"
ok "executor killed for good: after its lease the build re-ran on the other executor"

# a graceful stop (one SIGTERM): the running build finishes here, then the executor exits
kill -9 "$EXEC_PID" "$EX2_PID" 2>/dev/null || true
wait "$EXEC_PID" "$EX2_PID" 2>/dev/null || true
start_executor
vz enqueue --pipeline check --project p --ref refs/changes/3 --id 3 >/dev/null
wait_until 30 build_started 3 || fail "build for change 3 did not start"
kill -TERM "$EXEC_PID"
wait_until 20 bash -c "! kill -0 $EXEC_PID" || fail "executor did not stop after its build on SIGTERM"
j=$(builds_json 3)
# (an attempt may first have gone to the executor killed above and been LOST: not this one's)
[ "$(jq '[.[] | select(.final)] | length' <<<"$j")" = 1 ] || fail "want exactly one final result: $j"
[ "$(jq -r '[.[] | select(.final)][0].result' <<<"$j")" = SUCCESS ] || fail "the drained build should end SUCCESS: $j"
[ "$(jq '[.[] | select(.result == "RETRY" or .result == "REQUEUE")] | length' <<<"$j")" = 0 ] \
	|| fail "a drained build is not handed back: $j"
ok "one SIGTERM: the executor finishes its running build, delivers it and exits"

# a second SIGTERM hands the running build back: the same attempt runs again elsewhere, uncounted
start_executor
vz enqueue --pipeline check --project p --ref refs/changes/1 --id 4 >/dev/null
wait_until 30 build_started 4 || fail "build for change 4 did not start"
running=$(builds_json 4 | jq -r '.[0].uuid')
kill -TERM "$EXEC_PID"
sleep 0.3
kill -TERM "$EXEC_PID"
wait_until 10 bash -c "! kill -0 $EXEC_PID" || fail "executor did not stop on the second SIGTERM"
handed_back() { builds_json 4 | jq -e --arg u "$running" '.[] | select(.uuid == $u) | .state == "queued"'; }
wait_until 10 handed_back || fail "the stopped executor did not hand the build back: $(builds_json 4)"
start_executor
wait_until 40 queue_empty || fail "change 4 did not complete after the hand-back"
j=$(builds_json 4)
[ "$(jq '[.[] | select(.final)] | length' <<<"$j")" = 1 ] || fail "want exactly one final result: $j"
[ "$(jq -r '[.[] | select(.final)][0].uuid' <<<"$j")" = "$running" ] || fail "the same build should have run again: $j"
[ "$(jq -r --arg u "$running" '.[] | select(.uuid == $u) | .attempt' <<<"$j")" = 1 ] || fail "the attempt should not be counted: $j"
[ "$(jq -r '[.[] | select(.final)][0].result' <<<"$j")" = SUCCESS ] || fail "final result is not SUCCESS: $j"
grep -q build-finished "$(jq -r '[.[] | select(.final)][0].log_url' <<<"$j")" || fail "log of the re-run is incomplete"
[ "$(grep -c "vinz: build $running" "$(jq -r '[.[] | select(.final)][0].log_url' <<<"$j")")" = 1 ] \
	|| fail "the cut first run is still in the log"
ok "second SIGTERM hands the running build back (REQUEUE, same attempt) and it completes on the next executor"
