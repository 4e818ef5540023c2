# vinz merge from the command line: output forms, exit codes 0/1/2, --json, determinism across
# two separate copies of a repository, and no ref or work tree touched.
. "$(dirname "$0")/lib.sh"
vz_setup
export HOME=$T GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@vinz.invalid GIT_COMMITTER_NAME=t \
	GIT_COMMITTER_EMAIL=t@vinz.invalid GIT_AUTHOR_DATE='1600000000 +0000' GIT_COMMITTER_DATE='1600000000 +0000'

R=$T/r
git init -q -b master "$R"
cd "$R"
seq 1 20 > f
git add f && git commit -qm base
for c in 1 2 3; do
	git checkout -q -b c$c master
	sed -i "$((c * 5))s/.*/change $c/" f
	git commit -qam "change $c"
done
git checkout -q -b bad master
sed -i "5s/.*/other/" f
git commit -qam bad
git checkout -q master
refs_before=$(git for-each-ref; git rev-parse HEAD; git status --porcelain)

out=$("$VINZ" merge --repo "$R/.git" master c1 c2 c3)
[ "$(echo "$out" | wc -l)" = 3 ] || fail "three lines expected: $out"
echo "$out" | grep -Eq '^merged [0-9a-f]{40} [0-9a-f]{40}$' || fail "bad line: $out"
ok "three changes merged"
tree=$(echo "$out" | tail -1 | cut -d' ' -f3)
[ "$(git cat-file -p "$tree:f" | sed -n '5p;10p;15p' | tr '\n' ,)" = "change 1,change 2,change 3," ] || fail "merged content"
ok "the last tree has all three changes"

out2=$("$VINZ" merge --repo "$R/.git" master c1 c2 c3)
[ "$out" = "$out2" ] || fail "not deterministic"
git clone -q --mirror "$R/.git" "$T/copy.git"
out3=$("$VINZ" merge --repo "$T/copy.git" master c1 c2 c3)
[ "$out" = "$out3" ] || fail "another copy gives other commits"
out4=$("$VINZ" merge --repo "$R/.git" --date 1700000000 master c1 c2 c3)
[ "$out" != "$out4" ] || fail "--date ignored"
ok "same input, same commits (two copies); --date changes them"

rc=0
out=$("$VINZ" merge --repo "$R/.git" master c1 bad c3) || rc=$?
[ $rc = 1 ] || fail "conflict must exit 1, got $rc"
[ "$(echo "$out" | sed -n 2p)" = "conflict bad" ] || fail "conflict line: $out"
[ "$(echo "$out" | wc -l)" = 2 ] || fail "must stop at the conflict: $out"
ok "conflict reported, exit 1, stops"

rc=0
json=$("$VINZ" merge --repo "$R/.git" --json master c1 bad) || rc=$?
[ $rc = 1 ] || fail "json conflict exit $rc"
[ "$(echo "$json" | jq -r '.results[1].result')" = conflict ] || fail "json result: $json"
[ "$(echo "$json" | jq -r '.results[1].conflicts[0]')" = f ] || fail "json conflicts: $json"
[ "$(echo "$json" | jq -r '.results[0].files[0]')" = f ] || fail "json files: $json"
[ "$(echo "$json" | jq -r '.merged')" = false ] || fail "json merged: $json"
ok "--json has conflicting paths and files"

for mode in merge merge-resolve cherry-pick squash-merge rebase; do
	"$VINZ" merge --repo "$R/.git" --mode $mode master c1 c2 c3 >/dev/null || fail "mode $mode"
done
ok "all five modes"

rc1=0 rc2=0 rc3=0 rc4=0
"$VINZ" merge --repo "$R/.git" master nosuchref >/dev/null 2>"$T/err" || rc1=$?
"$VINZ" merge --repo "$T/nothing" master c1 >/dev/null 2>&1 || rc2=$?
"$VINZ" merge --repo "$R/.git" --mode octopus master c1 >/dev/null 2>&1 || rc3=$?
"$VINZ" merge --repo "$R/.git" master >/dev/null 2>&1 || rc4=$?
[ "$rc1$rc2$rc3$rc4" = 2222 ] || fail "errors must exit 2: $rc1 $rc2 $rc3 $rc4"
grep -q nosuchref "$T/err" || fail "error names the commit: $(cat "$T/err")"
ok "errors exit 2"

[ "$refs_before" = "$(git for-each-ref; git rev-parse HEAD; git status --porcelain)" ] || fail "refs or work tree changed"
ok "no ref, HEAD or work tree touched"

# --queue: two items on master, one conflicting in between, plus --config
git checkout -q -b cfg master
printf -- '- job: {name: c1}\n' > zuul.yaml && git add zuul.yaml && git commit -qm "zuul config"
git checkout -q master
cat > "$T/q.json" <<JSON
{"items": [
  {"id": "1", "project": "p", "branch": "master", "repo": "$R/.git", "change": "c1", "date": 1700000000},
  {"id": "2", "project": "p", "branch": "master", "repo": "$R/.git", "change": "bad", "mode": "merge"},
  {"id": "3", "project": "p", "branch": "master", "repo": "$R/.git", "change": "cfg", "mode": "squash-merge"}
]}
JSON
rc=0
q=$("$VINZ" merge --queue "$T/q.json" --config 2>"$T/err") || rc=$?
[ $rc = 1 ] || fail "--queue with a conflict must exit 1, got $rc: $(cat "$T/err")"
[ "$(echo "$q" | jq -r '.items[1].merged')" = false ] || fail "item 2 must conflict: $q"
grep -q "item 2 (project p, branch master)" "$T/err" || fail "conflict names the item: $(cat "$T/err")"
[ "$(echo "$q" | jq -r '.items[2].base')" = "$(echo "$q" | jq -r '.items[0].commit')" ] || fail "item 3 must go onto item 1: $q"
[ "$(echo "$q" | jq -r '.items[2].config["zuul.yaml"]')" = "- job: {name: c1}" ] || fail "config of item 3: $q"
[ "$(echo "$q" | jq -r '.items[2].state.p.master')" = "$(echo "$q" | jq -r '.items[2].commit')" ] || fail "state: $q"
git -C "$R" cat-file -e master:zuul.yaml 2>/dev/null && fail "master must not have zuul.yaml"
ok "--queue: speculative state, conflict named and skipped, in-repo config"
echo '{"items": 3}' > "$T/bad.json"
rc=0; "$VINZ" merge --queue "$T/bad.json" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "a malformed queue file must exit 2, got $rc"
echo '{"items": [' > "$T/bad.json"
rc=0; "$VINZ" merge --queue "$T/bad.json" >/dev/null 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "bad.json:" "$T/err" || fail "invalid JSON: exit $rc, $(cat "$T/err")"
ok "--queue: malformed input exits 2 with the place"
