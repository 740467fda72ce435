# Sourced by the demo scripts: stop_children PID... sends SIGTERM to each (last started first), then
# gives each up to 10 s to exit before SIGKILL, and reaps it. Never fails.
stop_children() {
  local pids=("$@") pid i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
