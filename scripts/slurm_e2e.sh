#!/usr/bin/env bash
# End-to-end test of sharding on a real Slurm: a private single-node controller and daemon on this
# machine (munge key, config, state and logs in a temporary folder, ports 16817/16818), the sweep
# submitted as a job array by the launcher `sweep slurm` prints, merged, and compared byte for byte
# with a single-process run; then one array task cancelled mid-way, the merge reporting it (exit 3),
# only that index resubmitted, and the tables compared again. Stops the daemons it started, by pid.
#
# Usage: bash scripts/slurm_e2e.sh SWEEP_BINARY   (as root; installs slurm-wlm and munge if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
sweep="$(realpath "$1")"
config="$PWD/configs/quick.toml"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "installing slurm-wlm and munge"
  (apt-get install -y -qq slurm-wlm munge || (apt-get update -qq && apt-get install -y -qq slurm-wlm munge)) >/dev/null
fi
if pgrep -x slurmctld >/dev/null; then
  echo "a slurmctld is running already on this machine: refusing to start another" >&2
  exit 1
fi

s="$(mktemp -d /tmp/sweep-slurm.XXXXXX)"
chmod 755 "$s"
stop() {
  for pid in "$s/slurmd.pid" "$s/slurmctld.pid" "$s/munge/munged.pid"; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$s"
}
trap stop EXIT

# munge, with its own key and socket.
mkdir -p "$s/munge"
dd if=/dev/urandom bs=1 count=1024 of="$s/munge/munge.key" status=none
chown -R munge:munge "$s/munge"
chmod 711 "$s/munge"
chmod 400 "$s/munge/munge.key"
runuser -u munge -- munged --key-file="$s/munge/munge.key" --socket="$s/munge/munge.socket" \
  --pid-file="$s/munge/munged.pid" --log-file="$s/munge/munged.log" --seed-file="$s/munge/munged.seed"

host="$(hostname -s)"
memory=$(( $(free -m | awk '/^Mem:/ {print $2}') - 512 ))
mkdir -p "$s/state" "$s/spool"
cat > "$s/slurm.conf" <<EOF
ClusterName=sweeptest
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$s/munge/munge.socket
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
SlurmctldPidFile=$s/slurmctld.pid
SlurmdPidFile=$s/slurmd.pid
SlurmctldLogFile=$s/slurmctld.log
SlurmdLogFile=$s/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$s/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %t | grep -q idle || { echo "the Slurm node did not come up" >&2; cat "$s"/*.log >&2; exit 1; }

# Waits until no job of this test is queued or running.
wait_jobs() {
  for _ in $(seq 300); do
    [ -z "$(squeue -h 2>/dev/null)" ] && return 0
    sleep 1
  done
  echo "jobs did not finish" >&2
  squeue >&2
  exit 1
}
same_tables() {
  for t in runs epochs summary reference; do
    cmp "$1/$t.parquet" "$2/$t.parquet" || { echo "$t.parquet differs between $1 and $2" >&2; exit 1; }
  done
}

"$sweep" run "$config" --set train.epochs=3 --out "$s/single" --quiet

echo "== a job array of 3 shards, then the merge"
"$sweep" slurm "$config" --array 3 --set train.epochs=3 --out "$s/array" > "$s/submit.sh"
bash "$s/submit.sh"
wait_jobs
same_tables "$s/single" "$s/array"
echo "array of 3: tables identical to the single-process run"

echo "== one task cancelled mid-way, reported by the merge, resubmitted"
# A slow run (a test hook that only waits) so that the cancel lands while task 1 runs.
export SWEEP_TEST_RUN_DELAY_MS=1500
"$sweep" slurm "$config" --array 3 --set train.epochs=3 --out "$s/cancel" > "$s/submit-cancel.sh"
submitted="$(bash "$s/submit-cancel.sh")"
array_job="$(echo "$submitted" | awk '{print $4}')"
for _ in $(seq 120); do
  squeue -h -j "${array_job}_1" -o %T 2>/dev/null | grep -q RUNNING && break
  sleep 0.5
done
sleep 2
scancel "${array_job}_1"
wait_jobs
if "$sweep" merge "$s/cancel" 2> "$s/merge.err"; then
  echo "the merge succeeded although task 1 was cancelled" >&2
  exit 1
else
  code=$?
fi
[ "$code" -eq 3 ] || { echo "merge exit code $code, expected 3" >&2; cat "$s/merge.err" >&2; exit 1; }
grep -q -- "--array=1 " "$s/merge.err" || { echo "the merge did not name array index 1:" >&2; cat "$s/merge.err" >&2; exit 1; }
[ ! -f "$s/cancel/runs.parquet" ] || { echo "tables written with runs missing" >&2; exit 1; }
unset SWEEP_TEST_RUN_DELAY_MS
ARRAY=1 bash "$s/submit-cancel.sh"
wait_jobs
same_tables "$s/single" "$s/cancel"
echo "cancelled task resubmitted alone: tables identical to the single-process run"
echo "slurm e2e: ok"
