# Sourced by the CLI tests that stop a training run part-way: they watch its train log and find its processes.

# log_lines FILE: how many lines FILE holds (0 while it does not exist yet).
log_lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

# wait_for_log_lines FILE N: waits until FILE holds N lines (a run has logged N steps), for 30 s at
# most; returns 1 if it never does.
wait_for_log_lines() {
  local file=$1 want=$2 _
  for _ in $(seq 1 3000); do
    [ "$(log_lines "$file")" -ge "$want" ] && return 0
    sleep 0.01
  done
  return 1
}

# rank_pid LAUNCHER RANK: the pid of the worker with that RANK under an `m3vit train --nproc` launcher
# (empty when there is none).
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -x "RANK=$2" >/dev/null; then echo "$p"; fi
  done
}
