#!/usr/bin/env bash
# `vinz executor --pause / --resume / --status` against a running executor process (scheduler and
# executor over tcp loopback): a paused executor takes no build, finishes the one it runs, and
# takes builds again once resumed; with no executor running the command says so (exit 4).
. "$(dirname "$0")/lib.sh"
vz_setup
make_repo "$T/repos/p.git"
port=$(free_port)
write_config "$T/vinz.yaml" "$port" "sleep 1.5" "echo build-finished"

# nobody to talk to
out=$("$VINZ" executor --config "$T/vinz.yaml" --status 2>&1) && rc=0 || rc=$?
[ "$rc" = 4 ] || fail "--status without an executor should exit 4, not $rc: $out"
grep -q "no executor answered" <<<"$out" || fail "--status without an executor: $out"
ok "--status with no executor running exits 4 and says so"

start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
start_executor
wait_until 10 "$VINZ" executor --config "$T/vinz.yaml" --status || fail "executor control socket did not come up"
out=$("$VINZ" executor --config "$T/vinz.yaml" --status)
grep -q "executor ex1: taking builds, 0 running, 2 free slots" <<<"$out" || fail "--status: $out"

# a running build is not disturbed by --pause; the next one waits
vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null
wait_until 20 build_started 1 || fail "build for change 1 did not start"
out=$("$VINZ" executor --config "$T/vinz.yaml" --pause)
grep -q "executor ex1: paused, 1 running, 0 free slots" <<<"$out" || fail "--pause: $out"
vz enqueue --pipeline check --project p --ref refs/changes/2 --id 2 >/dev/null
done1() { builds_json 1 | jq -e '.[0].result == "SUCCESS"'; }
wait_until 20 done1 || fail "the build running at --pause did not finish: $(builds_json 1)"
sleep 1.5
[ "$(builds_json 2 | jq -r '.[0].state')" = queued ] || fail "a paused executor took a build: $(builds_json 2)"
ok "--pause: the running build finishes, no new build is taken"

out=$("$VINZ" executor --config "$T/vinz.yaml" --resume)
grep -q "executor ex1: taking builds" <<<"$out" || fail "--resume: $out"
done2() { builds_json 2 | jq -e '.[0].result == "SUCCESS"'; }
wait_until 20 done2 || fail "the queued build did not run after --resume: $(builds_json 2)"
ok "--resume: the executor takes builds again"

out=$("$VINZ" executor --config "$T/vinz.yaml" --pause --resume 2>&1) && rc=0 || rc=$?
[ "$rc" = 2 ] || fail "two operations should be a usage error, not $rc: $out"
ok "one operation at a time"
