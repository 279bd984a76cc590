# Sourced by the backend start/stop scripts: logging with elapsed time, PID helpers.
# shellcheck shell=bash
T0=${T0:-$(date +%s.%N)}
log() { printf "[%s %5.1fs] %s\n" "${LOG_NAME:-backends}" "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print a-b}')" "$*"; }
die() { echo "[${LOG_NAME:-backends}] ERROR: $1" >&2; exit "${2:-1}"; }
# alive PIDFILE: the PID recorded there is running
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# start_bg PIDFILE LOGFILE CMD...: run CMD in the background and record its PID
start_bg() { local pidf=$1 logf=$2; shift 2; "$@" >>"$logf" 2>&1 & echo $! >"$pidf"; }
# stop_pidfiles FILE...: TERM the recorded PIDs, wait up to 3 s, then KILL; remove the files.
stop_pidfiles() {
  local pids=() f p i left
  for f in "$@"; do
    [ -s "$f" ] || continue
    p=$(cat "$f"); kill -0 "$p" 2>/dev/null && { kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; pids+=("$p"); }
  done
  for i in $(seq 1 30); do
    left=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
    [ $left = 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  rm -f "$@"
}
# wait_http URL TRIES: poll until URL answers 2xx (0.1 s apart)
wait_http() { local i; for i in $(seq 1 "$2"); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
