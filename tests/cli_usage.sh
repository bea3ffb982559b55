#!/bin/bash
# cli_usage: --help, unknown options, missing options and bad values of
# `mnnh init|info|predict` give the documented exit codes and name the option.
# usage: cli_usage.sh PATH/TO/mnnh
set -u
MNNH=${1:?usage: cli_usage.sh PATH/TO/mnnh}
fails=0
work=$(mktemp -d /tmp/mnnh_cli_usage.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect CODE PATTERN ARGS...: exit code CODE and PATTERN in stdout+stderr
expect() {
    local code=$1 pat=$2; shift 2
    local out rc
    out=$("$MNNH" "$@" 2>&1); rc=$?
    [ "$rc" -eq "$code" ] || fail "mnnh $*: exit $rc, expected $code; output: $out"
    grep -qF -- "$pat" <<<"$out" || fail "mnnh $*: output lacks '$pat': $out"
}

for cmd in init info predict; do
    expect 0 "usage: mnnh $cmd" $cmd --help
    expect 2 "unknown option '--no-such-option'" $cmd --no-such-option
done
expect 0 "--variant cnn|lc" init --help
expect 0 "--backend" predict --help

expect 2 "missing required option --out" init --dim 1 --L 4 --m 4 --r 4 --K 2
expect 2 "missing required option --dim" init --L 4 --m 4 --r 4 --K 2 --out x.h5
expect 2 "missing required option --model" predict --input a.h5 --out b.h5
expect 2 "missing required option --input" predict --model a.h5 --out b.h5
expect 2 "missing argument FILE" info
expect 2 "unexpected argument 'b.h5'" info a.h5 b.h5
expect 2 "bad value 'four' for --L" init --dim 1 --L four --m 4 --r 4 --K 2 --out x.h5
expect 2 "option '--out' needs a value" init --dim 1 --L 4 --m 4 --r 4 --K 2 --out
expect 2 "unknown variant 'dense'" init --dim 1 --L 4 --m 4 --r 4 --K 2 --variant dense --out x.h5
expect 2 "L=1" init --dim 1 --L 1 --m 4 --r 4 --K 2 --out x.h5
expect 2 "dim=3" init --dim 3 --L 4 --m 4 --r 4 --K 2 --out x.h5
expect 2 "--batch 0" predict --model a.h5 --input b.h5 --out c.h5 --batch 0
expect 2 "unknown command 'frobnicate'" frobnicate
[ -e x.h5 ] && fail "a refused init left x.h5 behind"

[ "$fails" -eq 0 ] && echo "cli_usage: all checks passed"
exit $((fails > 0))
