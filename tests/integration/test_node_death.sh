#!/usr/bin/env bash
# A node's sshd killed mid-task (issue 6): two loopback sshd nodes with the job's label. The build
# starts on n1; n1 dies (its sshd and sessions SIGKILLed): the attempt ends RETRY and the next one
# runs on n2, not on the dead n1; n2 dies too: with no node left the last attempt fails as well
# and the build ends RETRY_LIMIT. Each failed attempt's message names its node.
. "$(dirname "$0")/lib.sh"
vz_setup
make_repo "$T/repos/p.git"
start_node n1
start_node n2
port=$(free_port)
write_config "$T/vinz.yaml" "$port" 'echo start-$VINZ_BUILD' 'sleep 30'
use_nodes "$T/vinz.yaml" farm n1:1 n2:1
start_scheduler
wait_until 10 vz status --json || fail "scheduler did not come up"
start_executor
vz enqueue --pipeline check --project p --ref refs/changes/1 --id 1 >/dev/null

# running_on N: the attempt N of change 1 runs on a node and its job has started there
running_on() {
	local u
	u=$(builds_json 1 | jq -r --argjson a "$1" '.[] | select(.attempt == $a and .state == "running") | .uuid')
	[ -n "$u" ] && grep -qs "start-$u" "$T/state/logs/$u/job-output.txt"
}
attempt_node() { builds_json 1 | jq -r --argjson a "$1" '.[] | select(.attempt == $a) | .node'; }

wait_until 60 running_on 1 || fail "attempt 1 did not start: $(builds_json 1)"
[ "$(attempt_node 1)" = n1 ] || fail "attempt 1 should run on n1 (first in the pool), ran on $(attempt_node 1)"
kill -USR1 "$NODE_PID_n1"
wait_until 60 running_on 2 || fail "attempt 2 did not start after n1 died: $(builds_json 1)"
[ "$(attempt_node 2)" = n2 ] || fail "attempt 2 should avoid the dead n1 and run on n2, ran on $(attempt_node 2)"
j=$(builds_json 1)
[ "$(jq -r '.[] | select(.attempt == 1) | .result' <<<"$j")" = RETRY ] || fail "attempt 1 should be RETRY: $j"
jq -e '.[] | select(.attempt == 1) | .message | test("n1")' <<<"$j" >/dev/null || fail "attempt 1's message should name n1: $j"
ok "n1 killed mid-task: the build is retried on n2"

kill -USR1 "$NODE_PID_n2"
wait_until 40 queue_empty || fail "the build did not end after both nodes died: $(builds_json 1)"
j=$(builds_json 1)
[ "$(jq length <<<"$j")" = 3 ] || fail "want 3 attempts: $j"
[ "$(jq -r '.[] | select(.attempt == 2) | .result' <<<"$j")" = RETRY ] || fail "attempt 2 should be RETRY: $j"
[ "$(jq -r '.[] | select(.attempt == 3) | .result' <<<"$j")" = RETRY_LIMIT ] || fail "attempt 3 should end RETRY_LIMIT: $j"
[ "$(jq '[.[] | select(.final)] | length' <<<"$j")" = 1 ] || fail "want one final result: $j"
grep -q "node n1 failed build" "$T/scheduler.log" || fail "the scheduler should log that it avoids n1"
ok "n2 killed too: no node left, the build ends RETRY_LIMIT after its 3 attempts"
