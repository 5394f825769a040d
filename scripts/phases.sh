# scripts/phases.sh: a script's work as named, timed phases; the one place main.sh and
# test.sh learn how long each part took. Source it, don't run it:
#   source scripts/phases.sh
#   phase build [WHAT]   # ends the phase before (printing its time) and announces this one
#   phase_end [STATUS]   # ends the phase now, with its exit status (0 unless given)
#   phases_done STATUS   # ends the last phase and prints every phase's time and the total
# Call phases_done from an EXIT trap too: a run that fails still says where its time went,
# and which phase failed (its exit status is printed beside its time).
# shellcheck shell=bash

phase_names=()
phase_times=()
phase_statuses=()
phase_started=
phases_started=${EPOCHREALTIME//[!0-9]/}

# phase_duration MICROSECONDS: 0.4s, 12.3s, 4m05s.
phase_duration() {
  local tenths=$(($1 / 100000))
  if ((tenths < 600)); then
    printf '%d.%ds' $((tenths / 10)) $((tenths % 10))
  else
    printf '%dm%02ds' $((tenths / 600)) $((tenths / 10 % 60))
  fi
}

# phase_end [STATUS]
phase_end() {
  [[ -n $phase_started ]] || return 0
  phase_times+=("$((${EPOCHREALTIME//[!0-9]/} - phase_started))")
  phase_statuses+=("${1:-0}")
  phase_started=
  printf -- '-- %s: %s%s\n' "${phase_names[-1]}" "$(phase_duration "${phase_times[-1]}")" \
    "$( ((${1:-0} == 0)) || echo ", exit $1")"
}

# phase NAME [WHAT]: NAME in the times, WHAT only in the announcement.
phase() {
  phase_end
  phase_names+=("$1")
  phase_started=${EPOCHREALTIME//[!0-9]/}
  printf '\n== %s%s\n' "$1" "${2:+ ($2)}"
}

# phases_done STATUS: ends the last phase with STATUS (a failed run fails in its last phase).
phases_done() {
  local i summary=
  phase_end "${1:-0}"
  for i in "${!phase_names[@]}"; do
    summary+="${summary:+, }${phase_names[i]} $(phase_duration "${phase_times[i]}")"
    ((phase_statuses[i] == 0)) || summary+=" (exit ${phase_statuses[i]})"
  done
  printf '\ntimes: %s; total %s\n' "$summary" "$(phase_duration $((${EPOCHREALTIME//[!0-9]/} - phases_started)))"
  phase_names=()
  phase_times=()
  phase_statuses=()
}
