#!/usr/bin/env bash
# vinz run, the local dry-run, on the local node: a sample repository with in-repo config and a
# config project holding the base job (pre-run and post-run playbooks) and a nodeset. Passing and
# failing jobs, a dependency chain run in order (and skipped after a failure), a files matcher
# skipping a job, uncommitted changes (index and work tree untouched), a required project from
# another directory, secrets, a broken config as file:line:col, exit codes, --list, -e, and the
# output: plain lines when piped, the live view under a real pseudo-terminal (script(1)).
# The remote node over a loopback sshd is test_run_ssh.c.
source "$(dirname "$0")/lib.sh"
vz_setup
command -v script >/dev/null || fail "script(1) is required (bsdutils; contrib/install-deps.sh)"
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@vinz.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@vinz.invalid
export GIT_CONFIG_NOSYSTEM=1 HOME=$T/home
mkdir -p "$HOME"

# --- the config project: pipelines, a nodeset, the base job
git init -q -b master "$T/config"
mkdir -p "$T/config/zuul.d" "$T/config/playbooks"
cat > "$T/config/zuul.d/main.yaml" <<'EOF'
- pipeline:
    name: check
    manager: independent
- pipeline:
    name: gate
    manager: dependent
- nodeset:
    name: one
    nodes:
      - name: n1
        label: any
- pipeline:
    name: post
    manager: independent
    post-review: true
- job:
    name: base
    parent: null
    pre-run: playbooks/pre.yaml
    post-run: playbooks/post.yaml
    nodeset: one
    timeout: 120
EOF
cat > "$T/config/playbooks/pre.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: base pre-run
      command: echo "marker-pre-run on {{ inventory_hostname }}"
EOF
cat > "$T/config/playbooks/post.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: base post-run
      command: echo "marker-post-run success={{ zuul_success }}"
EOF
git -C "$T/config" add -A && git -C "$T/config" commit -qm config

# --- a library project another job requires
git init -q -b master "$T/lib"
echo "lib-content-42" > "$T/lib/LIBFILE"
git -C "$T/lib" add -A && git -C "$T/lib" commit -qm lib

# --- the application: origin (bare) and a clone on a feature branch tracking origin/master
git init -q --bare -b master "$T/origin.git"
git clone -q "$T/origin.git" "$T/app" 2>/dev/null
A=$T/app
mkdir -p "$A/playbooks" "$A/docs"
cat > "$A/.zuul.yaml" <<'EOF'
- secret:
    name: site-token
    data:
      token: not-a-real-one
- job:
    name: pass
    run: playbooks/pass.yaml
- job:
    name: fail
    run: playbooks/fail.yaml
- job:
    name: step-a
    run: playbooks/step.yaml
- job:
    name: step-b
    run: playbooks/step.yaml
- job:
    name: step-c
    run: playbooks/step.yaml
- job:
    name: after-fail
    run: playbooks/step.yaml
- job:
    name: docs
    files: ['^docs/.*']
    run: playbooks/step.yaml
- job:
    name: needs-lib
    required-projects: [lib]
    run: playbooks/lib.yaml
- job:
    name: secretive
    secrets: [{name: tok, secret: site-token}]
    run: playbooks/secret.yaml
- job:
    name: slow
    run: playbooks/slow.yaml
- job:
    name: advisory
    voting: false
    run: playbooks/fail.yaml
- project:
    check:
      jobs:
        - step-c: {dependencies: [step-b]}
        - step-b: {dependencies: [step-a]}
        - step-a
        - pass
        - fail
        - after-fail: {dependencies: [fail]}
        - docs
        - needs-lib
        - advisory
        - slow
    gate:
      jobs: [pass, advisory]
    post:
      jobs: [secretive]
EOF
cat > "$A/playbooks/pass.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: read the workspace
      command: cat README
      args:
        chdir: "{{ zuul.project.src_dir }}"
    - name: show a variable
      command: echo "greeting={{ greeting | default('none') }}"
EOF
cat > "$A/playbooks/fail.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: this fails
      shell: printf 'about to fail\033[2J\n'; exit 3
EOF
cat > "$A/playbooks/step.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: a step
      command: echo "step {{ zuul.job }}"
EOF
cat > "$A/playbooks/slow.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: sleep long
      command: sleep {{ nap | default('60') }}
EOF
cat > "$A/playbooks/lib.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: read the required project
      command: cat "{{ zuul.projects['lib'].src_dir }}/LIBFILE"
EOF
cat > "$A/playbooks/secret.yaml" <<'EOF'
- hosts: all
  tasks:
    - name: use the secret
      command: echo "token-length={{ tok.token | length }}"
EOF
echo "committed-readme" > "$A/README"
echo "docs" > "$A/docs/index.md"
git -C "$A" add -A && git -C "$A" commit -qm init && git -C "$A" push -q origin master 2>/dev/null
git -C "$A" checkout -q -b feature
git -C "$A" branch -q --set-upstream-to=origin/master
echo "feature line" >> "$A/README"
git -C "$A" commit -qam "feature"
cd "$A"
CP=(--config-project "$T/config")

run() { # run EXPECTED_EXIT ARGS...: vinz run piped, output in $T/out, $T/err
	local want=$1; shift
	set +e
	"$VINZ" run "$@" > "$T/out" 2> "$T/err"
	local got=$?
	set -e
	[ "$got" = "$want" ] || { cat "$T/out" "$T/err"; fail "vinz run $* exited $got, expected $want"; }
}
lastlog() { readlink -f "$A/.vinz/runs/latest"; }

# --- usage
run 0 --help
grep -q "usage: vinz run" "$T/out" || fail "--help prints the usage"
grep -q "^exit: 0" "$T/out" || fail "--help documents the exit codes"
run 2 --bogus
run 2 --with-deps
run 2 -e novalue
run 2 --node not-a-node
(cd "$T" && run 2 "${CP[@]}") # not in a work tree
grep -q "not in a git work tree" "$T/err" || fail "outside a repository: $(cat "$T/err")"
ok "usage errors exit 2"

# --- no base: a branch without upstream and no origin/HEAD
git init -q -b master "$T/lonely" && echo x > "$T/lonely/f" && git -C "$T/lonely" add f && git -C "$T/lonely" commit -qm x
(cd "$T/lonely" && run 2 "${CP[@]}")
grep -q "has no upstream branch.*give --base REF" "$T/err" || fail "no base named: $(cat "$T/err")"
ok "no upstream and no default branch: told to give --base"

# --- --list: the frozen graph, nothing run
nruns() { { ls "$A/.vinz/runs" 2>/dev/null || true; } | wc -l; }
before=$(nruns)
run 0 "${CP[@]}" --list
grep -q "^  step-c" "$T/out" && grep -q "depends on: step-b" "$T/out" || fail "--list shows the graph: $(cat "$T/out")"
grep -q "pre-run *config:playbooks/pre.yaml" "$T/out" || fail "--list shows the base job's playbooks"
grep -q "docs skipped" "$T/out" || fail "--list shows the files matcher's skip: $(cat "$T/out")"
[ "$(nruns)" = "$before" ] || fail "--list left a run behind"
ok "--list prints the frozen graph"

# --- a passing job with the base job's pre-run and post-run, logs in .vinz/runs
run 0 "${CP[@]}" --job pass -e greeting=hello
L=$(lastlog)
[ -f "$L/pass/job-output.txt" ] && [ -f "$L/pass/job-output.json" ] || fail "logs under .vinz/runs/<id>/pass"
jq -e '[.[].playbook | split("/") | .[-1]] == ["pre.yaml", "pass.yaml", "post.yaml"]' "$L/pass/job-output.json" \
	>/dev/null || fail "job-output.json holds every playbook: $(jq -c '[.[].playbook]' "$L/pass/job-output.json")"
pre=$(grep -n "marker-pre-run on n1" "$L/pass/job-output.txt" | head -n1 | cut -d: -f1)
mid=$(grep -n "feature line" "$L/pass/job-output.txt" | head -n1 | cut -d: -f1)
post=$(grep -n "marker-post-run success=True" "$L/pass/job-output.txt" | head -n1 | cut -d: -f1)
[ -n "$pre" ] && [ -n "$mid" ] && [ -n "$post" ] && [ "$pre" -lt "$mid" ] && [ "$mid" -lt "$post" ] ||
	fail "pre-run, run (HEAD merged: the feature line), post-run in order: $(cat "$L/pass/job-output.txt")"
grep -q "greeting=hello" "$L/pass/job-output.txt" || fail "-e reaches the playbook"
grep -q "^pass  *SUCCESS" "$T/out" || fail "summary: $(cat "$T/out")"
grep -q "pass: TASK \[read the workspace\]" "$T/out" || fail "piped output names each task"
if grep -q $'\033' "$T/out"; then fail "piped output has escape sequences"; fi
[ ! -e "$L/work" ] || fail "the work dir is removed without --keep"
ok "passing job: pre-run, run, post-run in order; logs; plain piped output"

# --- a failing job (its output carries an escape sequence, shown defanged)
run 1 "${CP[@]}" --job fail
grep -q "^fail  *FAILURE" "$T/out" || fail "summary shows FAILURE: $(cat "$T/out")"
grep -qF "about to fail?[2J" "$T/out" || fail "the failing task's output is shown: $(cat "$T/out")"
if grep -q $'\033' "$T/out"; then fail "a job's escape sequence reached the output"; fi
grep -q "marker-post-run success=False" "$(lastlog)/fail/job-output.txt" || fail "post-run runs after a failure"
ok "failing job exits 1 and shows the failing task's output"

# --- a non-voting failure does not fail the run
run 0 "${CP[@]}" --pipeline gate
grep -q "^advisory  *FAILURE.*non-voting" "$T/out" || fail "non-voting failure shown: $(cat "$T/out")"
ok "non-voting failure: exit 0"

# --- a DAG in order; a job after a failed dependency is skipped
run 0 "${CP[@]}" --job step-c --with-deps
order=$(grep -o "^step-[abc]: started" "$T/out" | tr '\n' ' ')
[ "$order" = "step-a: started step-b: started step-c: started " ] || fail "dependency order: $order"
run 1 "${CP[@]}" --job after-fail --with-deps
grep -q "^after-fail  *SKIPPED" "$T/out" || fail "dependent of a failed job skipped: $(cat "$T/out")"
if grep -q "^after-fail: started" "$T/out"; then fail "after-fail ran"; fi
ok "job DAG in dependency order; failed dependency skips"

# --- a files matcher skips a job (the change touches README only), and runs it when docs change
run 0 "${CP[@]}" --job docs
grep -q "docs is skipped for this change" "$T/out" || fail "files matcher skip: $(cat "$T/out")"
ok "files matcher skips a job the change does not concern"

# --- uncommitted changes: tracked (staged and not), untracked; index and work tree untouched
echo "uncommitted line" >> README
echo "new doc" > docs/new.md
echo "staged" > staged.txt && git add staged.txt
st_before=$(git status --porcelain=v1 | md5sum); idx_before=$(md5sum < .git/index)
run 0 "${CP[@]}" --job pass
if grep -q "uncommitted line" "$(lastlog)/pass/job-output.txt"; then fail "without -u the work tree is not used"; fi
run 0 "${CP[@]}" --job pass --include-uncommitted
grep -q "uncommitted line" "$(lastlog)/pass/job-output.txt" || fail "-u includes the work tree"
grep -q "uncommitted changes: 3 paths" "$T/out" || fail "-u says what it took: $(cat "$T/out")"
run 0 "${CP[@]}" --job docs --include-uncommitted
grep -q "^docs  *SUCCESS" "$T/out" || fail "the untracked docs/new.md makes the files matcher run docs: $(cat "$T/out")"
[ "$(git status --porcelain=v1 | md5sum)" = "$st_before" ] || fail "git status changed"
[ "$(md5sum < .git/index)" = "$idx_before" ] || fail "the index was written"
git status --porcelain=v1 | grep -q "^?? .vinz" && fail ".vinz shows as untracked"
git reset -q --hard && rm -f docs/new.md
ok "uncommitted changes included as a commit; index and work tree untouched"

# --- a required project from another directory
run 1 "${CP[@]}" --job needs-lib
grep -q "requires project lib: give a local clone with --project-dir lib=DIR" "$T/out" ||
	fail "missing project named: $(cat "$T/out")"
run 0 "${CP[@]}" --job needs-lib --project-dir lib="$T/lib"
grep -q "lib-content-42" "$(lastlog)/needs-lib/job-output.txt" || fail "the lib workspace is there"
# the clone's checked-out commit is what the job gets, even on another branch (as a Depends-On)
git -C "$T/lib" checkout -q -b fix && echo "lib-fix-43" > "$T/lib/LIBFILE" && git -C "$T/lib" commit -qam fix
run 0 "${CP[@]}" --job needs-lib --project-dir lib="$T/lib"
grep -q "lib-fix-43" "$(lastlog)/needs-lib/job-output.txt" || fail "the lib clone's HEAD is used"
ok "required project from --project-dir"

# --- secrets refused unless given
run 2 "${CP[@]}" --pipeline post --job secretive
grep -q "job secretive uses secret tok.*--secrets FILE" "$T/err" || fail "secret refusal: $(cat "$T/err")"
printf 'tok:\n  token: abcdef\n' > "$T/secrets.yaml"
run 0 "${CP[@]}" --pipeline post --job secretive --secrets "$T/secrets.yaml"
grep -q "token-length=6" "$(lastlog)/secretive/job-output.txt" || fail "secret value reaches the playbook"
ok "secrets refused by name; --secrets gives them"

# --- .vinz.yaml names the config project
printf 'config-projects:\n  - dir: %s\n' "$T/config" > .vinz.yaml
run 0 --job pass
rm .vinz.yaml
ok ".vinz.yaml names the config projects"

# --- a broken config: file:line:col, exit 3, nothing run
cp .zuul.yaml "$T/zuul.good"
printf -- '- job:\n    name: broken\n    run: playbooks/step.yaml\n    nodeset: {nodes: 12}\n' >> .zuul.yaml
git commit -qam broken
run 3 "${CP[@]}" --job pass
grep -qE "^\.zuul\.yaml:[0-9]+:[0-9]+: " "$T/err" || fail "config error as file:line:col: $(cat "$T/err")"
git reset -q --hard HEAD~1
printf -- '- job: [\n' >> .zuul.yaml
run 3 "${CP[@]}" --job pass --include-uncommitted
grep -qE "^\.zuul\.yaml:[0-9]+:[0-9]+: " "$T/err" || fail "YAML error as file:line:col: $(cat "$T/err")"
cp "$T/zuul.good" .zuul.yaml
ok "broken config: file:line:col, exit 3"

# --- the terminal view under a real pseudo-terminal
script -qefc "$VINZ run --config-project $T/config --job pass" /dev/null > "$T/tty" 2>&1 || fail "tty run failed: $(cat "$T/tty")"
grep -q $'\r\033\[K' "$T/tty" || fail "live line redrawn in place"
grep -q $'\033\[32m' "$T/tty" || fail "colours on a terminal"
grep -qa "TASK \[read the workspace\]" "$T/tty" || fail "live line shows the task"
grep -qaE "pass +[0-9]+\.[0-9]s" "$T/tty" || fail "live line shows the elapsed time"
NO_COLOR=1 script -qefc "$VINZ run --config-project $T/config --job pass" /dev/null > "$T/tty2" 2>&1 || fail "NO_COLOR run failed"
if grep -q $'\033\[3[0-9]m' "$T/tty2"; then fail "NO_COLOR honoured"; fi
grep -q $'\r\033\[K' "$T/tty2" || fail "NO_COLOR keeps the live line"
ok "terminal view under script(1): live line, colours, NO_COLOR"

# --- --keep keeps the work dir
run 0 "${CP[@]}" --job pass --keep
[ -d "$(lastlog)/work/builds" ] && ls -d "$(lastlog)"/work/builds/*/src/app >/dev/null || fail "--keep keeps the workspace"
ok "--keep"

# --- Ctrl-C: the running job is canceled (its command killed), the run ends at once with exit 1
nap=60.$$$RANDOM # a command line no other process has
"$VINZ" run "${CP[@]}" --job slow -e nap=$nap > "$T/out" 2> "$T/err" &
pid=$!
VZ_PIDS+=("$pid")
wait_until 30 grep -q "TASK \\[sleep long\\]" "$T/out" || fail "the slow task did not start: $(cat "$T/out" "$T/err")"
start=$(date +%s)
kill -INT "$pid"
got=0
wait "$pid" || got=$?
[ "$got" = 1 ] || fail "interrupted run exited $got: $(cat "$T/out" "$T/err")"
[ $(( $(date +%s) - start )) -lt 20 ] || fail "the interrupt took too long"
grep -q "^slow  *ABORTED" "$T/out" || fail "ABORTED in the summary: $(cat "$T/out")"
no_sleep() { ! pgrep -f "^sleep $nap\$" >/dev/null; }
wait_until 5 no_sleep || fail "the job's command survived"
ok "Ctrl-C cancels the running job"

# --- a multi-node nodeset: both nodes (local here) are hosts of the playbook, in their groups
cat >> "$A/.zuul.yaml" <<'YAML'
- nodeset:
    name: pair
    nodes:
      - {name: web, label: any}
      - {name: db, label: any}
    groups:
      - {name: backend, nodes: [db]}
- job:
    name: multi
    nodeset: pair
    run: playbooks/multi.yaml
YAML
sed -i 's/^        - slow$/        - slow\n        - multi/' "$A/.zuul.yaml"
cat > "$A/playbooks/multi.yaml" <<'YAML'
- hosts: all
  tasks:
    - command: echo "multi-host {{ inventory_hostname }}"
- hosts: backend
  tasks:
    - command: echo "backend-only {{ inventory_hostname }}"
YAML
git -C "$A" add -A && git -C "$A" commit -qm multi
run 0 "${CP[@]}" --job multi
log=$(lastlog)/multi/job-output.txt
grep -q "| web | multi-host web" "$log" && grep -q "| db | multi-host db" "$log" || fail "both nodes should run the play: $(cat "$log")"
grep -q "backend-only db" "$log" || fail "the backend play should run on db"
! grep -q "backend-only web" "$log" || fail "the backend play must not run on web"
ok "a multi-node nodeset: every node a host, group plays on their group"

# --- a --project-dir project is in every job's workspace (it stands for a Depends-On), not only
# in the jobs that require it
cat > "$A/playbooks/pass.yaml" <<'YAML'
- hosts: all
  tasks:
    - name: read the workspace
      command: cat README
      args:
        chdir: "{{ zuul.project.src_dir }}"
    - name: the depended-on project
      command: cat "{{ zuul.projects['lib'].src_dir }}/LIBFILE"
      when: "'lib' in zuul.projects"
YAML
git -C "$A" add -A && git -C "$A" commit -qm "pass reads lib when given"
run 0 "${CP[@]}" --job pass --project-dir lib="$T/lib"
grep -q "lib-fix-43" "$(lastlog)/pass/job-output.txt" || fail "a --project-dir project should be in every job's workspace: $(cat "$(lastlog)/pass/job-output.txt")"
run 0 "${CP[@]}" --job pass
! grep -q "lib-fix-43" "$(lastlog)/pass/job-output.txt" || fail "without --project-dir lib is not there"
ok "--project-dir projects are in every job's workspace (Depends-On)"
