#!/usr/bin/env bash
# test_slurm.sh HETBENCH SRCDIR [PYTHON] - the Slurm scripts on a REAL Slurm cluster started here:
# munged + slurmctld + two slurmd ("nodes" n0 and n1, both this machine) from a config
# generated under a temp dir, on loopback only (in a private network namespace when
# `unshare -n` is allowed). The daemons run as children of this script and are stopped by
# the PIDs in their pid files, also when the test fails (trap).
#
#  1. scripts/slurm/hetbench.sbatch, 4 tasks, CPU backend: job exit 0, one complete file with
#     mpi_size 4, 4 rows per case, and the Slurm fields of every rank in /devices;
#  2. SIGUSR1 to the job's step (what --signal=USR1@120 sends before the time limit): the
#     job exits non-zero, the file is `incomplete` and holds the cases finished before;
#     RESUME=1 with the same arguments completes it;
#  3. a hung rank (HETBENCH_FAULT kind=hang): `lost` after --case-timeout, the others' results
#     written, exit 1; an aborted rank (kind=abort): Slurm's mpi/pmix plugin kills the whole
#     step (whatever --kill-on-bad-exit says), the job fails and the file holds every case
#     completed before the abort;
#  4. scripts/slurm/hetjob.sbatch, 2 + 2 tasks on partitions "nvidia" (node n0) and "amd"
#     (node n1): one MPI_COMM_WORLD of 4 ranks, het group and partition recorded per rank;
#     on Slurm < 24.11, its watchdog for srun's het-step hang (an srun that never ends after
#     the step, SchedMD ticket 16817) with the exit code from the task reports, 1 and 0;
#  5. scripts/slurm/sweep-array.sbatch, --array=0-1: one file per index, each with its value.
# Skips (77) only when Slurm/munge are absent and cannot be installed (or not run as root).
set -uo pipefail
HB=$(realpath "$1")
SRC=$(realpath "$2")
PYARG=${3:-} # the python3 with h5py that CMake found (HB_H5PY_PYTHON), if any
LIMIT=270 # seconds any daemon may live (a bound even if this script is SIGKILLed)

# ---- a private network namespace: nothing outside this test can reach the daemons, and
# their ports cannot collide with another test's. Its only interface is lo; lo also gets a
# non-127 address because Slurm resolves its listening address with AI_ADDRCONFIG, which
# finds nothing when 127.0.0.1 is the only IPv4 address. Falls back to the host's namespace
# (daemons on free ports, clients on 127.0.0.1) only when asked for with HB_SLURM_NETNS=0;
# without a namespace the test skips.
NETNS_SETUP='ip link set lo up && ip addr add 10.254.254.1/32 dev lo'
if [[ -z ${HB_SLURM_NETNS:-} ]] && command -v unshare >/dev/null && command -v ip >/dev/null &&
    unshare -n sh -c "$NETNS_SETUP" 2>/dev/null; then
    # shellcheck disable=SC2016 # $0 and $@ belong to the inner bash
    HB_SLURM_NETNS=1 exec unshare -n bash -c "$NETNS_SETUP"' && exec bash "$0" "$@"' "$0" "$@"
fi
if [[ ${HB_SLURM_NETNS:-} != 1 && ${HB_SLURM_NETNS:-} != 0 ]]; then
    # the daemons would listen on the host's interfaces: only when asked for (HB_SLURM_NETNS=0)
    echo "SKIP: cannot make a private network namespace (unshare -n, ip from iproute2); set HB_SLURM_NETNS=0 to run the daemons in the host's namespace" >&2
    exit 77
fi

# ---- prerequisites
for v in $(compgen -e); do # a test started inside a Slurm job must not leak that job into ours
    case $v in SLURM_* | SBATCH_* | SRUN_* | SALLOC_* | HETBENCH_*) unset "$v" ;; esac
done
need=(munged slurmctld slurmd sbatch srun squeue scontrol sinfo scancel)
missing() { for c in "${need[@]}"; do command -v "$c" >/dev/null || return 0; done; return 1; }
if missing && [[ $(id -u) -eq 0 && -z ${HB_TEST_NO_INSTALL:-} ]] && command -v apt-get >/dev/null; then
    echo "test_slurm: installing slurm-wlm munge libpmix-dev" >&2
    inst=(timeout 600 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300
          install -y --no-install-recommends slurm-wlm munge libpmix-dev)
    "${inst[@]}" >/dev/null 2>&1 || { timeout 300 apt-get update >/dev/null 2>&1; "${inst[@]}" >/dev/null 2>&1; }
fi
if missing; then
    echo "SKIP: Slurm/munge not installed (need ${need[*]}; Debian: apt-get install slurm-wlm munge)" >&2
    exit 77
fi
[[ $(id -u) -eq 0 ]] || { echo "SKIP: the local Slurm cluster runs its daemons as root" >&2; exit 77; }
PY=""
for p in ${PYARG:+"$PYARG"} /usr/bin/python3 python3; do "$p" -c "import h5py" 2>/dev/null && { PY=$p; break; }; done
# scripts/setup.sh installs python3-h5py: its absence is a broken setup, not a skip
[[ -n $PY ]] || { echo "FAIL: no python3 with h5py (install python3-h5py)" >&2; exit 1; }

T=$(mktemp -d /tmp/hbslurm.XXXXXX) # short: unix socket paths live under it
W=$T/work
export SLURM_CONF=$T/slurm.conf
fails=0 checks=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
t0=$SECONDS

# ---- stop everything, by PID
stop_cluster() {
    local pids=() f p
    if [[ -f $T/slurm.conf ]]; then # end the jobs first so that their slurmstepd exit too
        timeout 5 scancel --quiet --full --signal=KILL -u root 2>/dev/null
        local end=$((SECONDS + 10))
        while ((SECONDS < end)) && [[ -n $(timeout 2 squeue -h -o %i 2>/dev/null) ]]; do sleep 0.2; done
    fi
    for f in slurmd-n0 slurmd-n1 slurmctld munged; do
        [[ -s $T/run/$f.pid ]] && p=$(<"$T/run/$f.pid") && kill -0 "$p" 2>/dev/null && kill -TERM "$p" && pids+=("$p")
    done
    for _ in $(seq 50); do
        local alive=0
        for p in ${pids[@]+"${pids[@]}"}; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive -eq 0 ]] && break
        sleep 0.1
    done
    for p in ${pids[@]+"${pids[@]}"}; do kill -0 "$p" 2>/dev/null && kill -KILL "$p"; done
    # slurmstepd and job processes of THIS cluster (they carry our SLURM_CONF); never by name
    for f in /proc/[0-9]*/environ; do
        p=${f#/proc/}; p=${p%/environ}
        [[ $p -ne $$ ]] && tr '\0' '\n' 2>/dev/null <"$f" | grep -qxF "SLURM_CONF=$T/slurm.conf" &&
            kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
}
cleanup() {
    local rc=$?
    stop_cluster
    if [[ $rc -ne 0 && $rc -ne 77 && -d $T/log ]]; then
        for f in "$T"/log/*; do [[ -s $f ]] && { echo "--- $(basename "$f") (tail)" >&2; tail -n 8 "$f" >&2; }; done
    fi
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- munge: our own key, socket, log, pid (the system's munged, if any, is not touched)
mkdir -p "$T"/{munge,state,log,run,spool/n0,spool/n1,tmp/n0,tmp/n1} "$W"
chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
timeout $LIMIT munged -F -f --socket="$T/munge/munge.sock" --key-file="$T/munge/munge.key" \
    --log-file="$T/log/munged.log" --pid-file="$T/run/munged.pid" --seed-file="$T/munge/seed" \
    --num-threads=2 >"$T/log/munged.console" 2>&1 &

# ---- slurm.conf: one controller, two nodes on this machine (n0, n1: CPUs=8 each, more than
# the machine has - config_overrides), partitions debug (default) and nvidia on n0, amd on n1
cat >"$SLURM_CONF" <<EOF
ClusterName=hbtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.sock
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/%n
TmpFS=$T/tmp/%n
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd-%n.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
MpiDefault=pmix
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=300
InactiveLimit=0
# het jobs are started by the backfill scheduler only: run it every second
SchedulerParameters=bf_interval=1,bf_hetjob_immediate
NodeName=n0 NodeHostname=n0 NodeAddr=127.0.0.1 Port=$(free_port) CPUs=8 State=UNKNOWN
NodeName=n1 NodeHostname=n1 NodeAddr=127.0.0.1 Port=$(free_port) CPUs=8 State=UNKNOWN
PartitionName=debug Nodes=n0 Default=YES MaxTime=INFINITE State=UP
PartitionName=nvidia Nodes=n0 MaxTime=INFINITE State=UP
PartitionName=amd Nodes=n1 MaxTime=INFINITE State=UP
EOF
end=$((SECONDS + 10))
until [[ -S $T/munge/munge.sock ]] || ((SECONDS >= end)); do sleep 0.1; done
[[ -S $T/munge/munge.sock ]] || { fail "munged did not start"; exit 1; }
timeout $LIMIT slurmctld -D -i >"$T/log/slurmctld.console" 2>&1 &
daemons=($!)
timeout $LIMIT slurmd -D -N n0 >"$T/log/slurmd-n0.console" 2>&1 &
daemons+=($!)
timeout $LIMIT slurmd -D -N n1 >"$T/log/slurmd-n1.console" 2>&1 &
daemons+=($!)
up=0 end=$((SECONDS + 30))
while ((SECONDS < end)); do
    [[ $(timeout 2 sinfo -h -N -o '%N %t' 2>/dev/null | sort -u | tr '\n' ' ') == "n0 idle n1 idle " ]] && { up=1; break; }
    for p in "${daemons[@]}"; do kill -0 "$p" 2>/dev/null || { fail "a Slurm daemon exited at start"; exit 1; }; done
    sleep 0.2
done
[[ $up -eq 1 ]] || { fail "nodes not idle after 30 s: $(timeout 5 sinfo -N 2>&1)"; exit 1; }
for f in munged slurmctld slurmd-n0 slurmd-n1; do [[ -s $T/run/$f.pid ]] || fail "no pid file $f.pid"; done
echo "test_slurm: cluster up in $((SECONDS - t0)) s ($([[ ${HB_SLURM_NETNS:-} == 1 ]] && echo "private network namespace" || echo "host network namespace, free ports"))" >&2

# ---- helpers
# wait_job ID SECONDS: until the job (every component / array task) has ended; sets STATE, EXIT
wait_job() {
    local id=$1 lim=$2 end=$((SECONDS + $2)) info
    while :; do
        info=$(timeout 5 scontrol -o show job "$id" 2>/dev/null)
        if [[ -n $info ]] && ! grep -qE 'JobState=(PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED|REQUEUED)' <<<"$info"; then
            STATE=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2 | sort -u | tr '\n' ' ')
            STATE=${STATE% }
            EXIT=$(head -1 <<<"$info" | grep -o ' ExitCode=[0-9:]*' | cut -d= -f2)
            echo "test_slurm: job $id ($JOBNAME) $STATE, exit $EXIT, $((SECONDS - JOBT0)) s after submission" >&2
            return 0
        fi
        if ((SECONDS >= end)); then
            fail "job $id did not end within $lim s: $(timeout 5 squeue -j "$id" 2>&1 | tail -n +2)"
            # what it was doing: its log and its processes' stacks, for the next reader of CI
            echo "test_slurm: job $id log:" >&2
            tail -n 20 "$W"/*"$id"*.out >&2 2>/dev/null
            for p in $(pgrep -f "hetbench run" 2>/dev/null); do
                echo "test_slurm: pid $p: $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | head -c 200)" >&2
                timeout 10 gdb -p "$p" -batch -ex "thread apply all bt 8" 2>/dev/null | grep -E '^#|^Thread' | head -40 >&2
            done
            timeout 5 scancel --full --signal=KILL "$id" 2>/dev/null
            STATE=TIMEOUT EXIT=-
            return 1
        fi
        sleep 0.2
    done
}
# submit NAME ENV... -- SBATCH-ARGS...: sbatch with the given environment; sets JOB
submit() {
    local name=$1; shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    checks=$((checks + 1))
    JOBNAME=$name JOBT0=$SECONDS
    JOB=$(cd "$W" && env ${envs[@]+"${envs[@]}"} timeout 20 sbatch --parsable --chdir="$W" "$@" 2>"$T/$name.sbatch.err")
    JOB=${JOB%%;*}
    [[ $JOB =~ ^[0-9]+$ ]] || { fail "$name: sbatch: $(cat "$T/$name.sbatch.err")"; JOB=""; return 1; }
}
expect_job() { # expect_job NAME STATE EXIT
    checks=$((checks + 1))
    [[ $STATE == "$2" && $EXIT == "$3" ]] ||
        fail "$1: job $JOB ended $STATE exit $EXIT, expected $2 exit $3; log: $(tail -n 8 "$W"/*"$JOB"*.out 2>/dev/null)"
}
# check FILE ASSERTIONS: python with f = h5py file, s = /summary, st = root status,
# status(case, rank), dev(column) = /devices column in rank order (strings decoded)
check() {
    checks=$((checks + 1))
    [[ -f $1 ]] || { fail "no file $1"; return; }
    "$PY" - "$1" "$2" <<'PY' || fail "h5 check on $(basename "$1") (see the assertion above)"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f["summary"][:]
dec = lambda x: x.decode() if isinstance(x, bytes) else x
st = dec(f.attrs["status"])
def status(case, rank):
    return [dec(r["status"]) for r in s if r["case_id"] == case and r["rank"] == rank]
d = f["devices"][:]
d = d[d["rank"].argsort()]
def dev(col):
    if col not in d.dtype.names:
        raise AssertionError("/devices has no column %r (columns: %s)" % (col, ", ".join(d.dtype.names)))
    return [dec(x) if isinstance(x, bytes) else int(x) for x in d[col]]
errs = []
def want(ok, what):  # a soft assertion: every failed one is reported
    if not ok:
        errs.append(what)
exec(sys.argv[2])
if errs:
    sys.exit("AssertionError:\n  " + "\n  ".join(errs))
PY
}
SLURM_COLS='
for c in ("slurm_job_id", "slurm_step_id", "slurm_nodelist", "slurm_partition", "slurm_het_group"):
    assert c in d.dtype.names, "per-rank Slurm field %s missing from /devices" % c
'
# want(dev(COLUMN) == [VALUES], ...) for each Slurm field: every mismatch is reported
slurm_want() { # slurm_want COLUMN PYTHON-LIST
    printf "want(dev('%s') == %s, 'slurm: %s is %%r, expected %%r' %% (dev('%s'), %s))\n" "$1" "$2" "$1" "$1" "$2"
}
FAST="--backend cpu --share-devices --min-iters 3 --warmup 0 --no-ceilings --no-progress --idle-seconds 0"
RUNENV=(OMP_NUM_THREADS=1 "HETBENCH=$HB")
CPUJOB=(--ntasks=4 --ntasks-per-node=4 --gpus-per-task=0) # the script's one-GPU-per-rank, on CPUs

# ---- 1. hetbench.sbatch, 4 ranks
submit plain "${RUNENV[@]}" "HETBENCH_ARGS=--workload gemm --m 64,32 --n 64 --k 64 $FAST --min-seconds 0" -- \
    "${CPUJOB[@]}" "$SRC/scripts/slurm/hetbench.sbatch" &&
    wait_job "$JOB" 60 && expect_job plain COMPLETED 0:0
grep -q "srun killed" "$W/hetbench-$JOB.out" 2>/dev/null &&
    echo "test_slurm: job $JOB: srun's het-step hang (ticket 16817) happened; the watchdog ended it" >&2
check "$W/hetbench-$JOB.h5" "
assert st == 'complete', st
assert f.attrs['mpi_size'] == 4, f.attrs['mpi_size']
assert dec(f.attrs['slurm_job_id']) == '$JOB', f.attrs['slurm_job_id']
assert len(s) == 8, len(s)
for c in range(2):
    assert sorted(r['rank'] for r in s if r['case_id'] == c) == [0, 1, 2, 3]
    assert all(status(c, r) == ['ok'] for r in range(4))
assert dev('rank') == [0, 1, 2, 3]
$SLURM_COLS
$(slurm_want slurm_job_id "['$JOB'] * 4")
$(slurm_want slurm_step_id "['0'] * 4")
$(slurm_want slurm_partition "['debug'] * 4")
$(slurm_want slurm_nodelist "['n0'] * 4")
$(slurm_want slurm_het_group "[-1] * 4")
"
[[ -f $W/hetbench-$JOB.out ]] || fail "plain: no job log hetbench-$JOB.out"

# ---- 2. SIGUSR1 (what --signal=USR1@120 sends before the time limit) stops the run after the
# current iteration: exit non-zero, file `incomplete` with the cases done; RESUME=1 finishes it
SIGARGS="HETBENCH_ARGS=--workload gemm --m 256,257,258,259,260,261 --n 256 --k 256 $FAST --min-seconds 0.5"
submit signal "${RUNENV[@]}" "$SIGARGS" -- "${CPUJOB[@]}" "$SRC/scripts/slurm/hetbench.sbatch"
if [[ -n $JOB ]]; then
    end=$((SECONDS + 30)) # rank 0 prints (and flushes) each case's rows once they are in the file
    until grep -qE '^ +0 +3 +gemm' "$W/hetbench-$JOB.out" 2>/dev/null || ((SECONDS >= end)); do sleep 0.1; done
    timeout 5 scancel --signal=USR1 "$JOB" || fail "scancel --signal=USR1 failed; log: $(tail -n 5 "$W/hetbench-$JOB.out")"
    wait_job "$JOB" 60
    checks=$((checks + 1))
    [[ $STATE == FAILED && $EXIT != 0:0 ]] || fail "signal: job ended $STATE exit $EXIT, expected FAILED non-zero"
    check "$W/hetbench-$JOB.h5" "
assert st == 'incomplete', st
done = sorted(set(int(r['case_id']) for r in s if dec(r['status']) == 'ok'))
assert 1 <= len(done) < 6, done
for c in done:
    assert all(status(c, r) == ['ok'] for r in range(4)), [status(c, r) for r in range(4)]
"
    SIGJOB=$JOB
    submit resume "${RUNENV[@]}" "$SIGARGS" RESUME=1 "OUT=hetbench-$SIGJOB.h5" -- \
        "${CPUJOB[@]}" "$SRC/scripts/slurm/hetbench.sbatch" &&
        wait_job "$JOB" 60 && expect_job resume COMPLETED 0:0
    check "$W/hetbench-$SIGJOB.h5" "
assert st == 'complete', st
assert len(s) == 24, len(s)
assert all(status(c, r) == ['ok'] for c in range(6) for r in range(4))
"
fi

# ---- 3a. a hung rank: lost after the deadline, every other result written, exit 1
submit hang "${RUNENV[@]}" "HETBENCH_FAULT=rank=1,case=0,kind=hang" \
    "HETBENCH_ARGS=--workload gemm --m 32,48 --n 32 --k 32 $FAST --case-timeout 4 --min-seconds 0" -- \
    "${CPUJOB[@]}" "$SRC/scripts/slurm/hetbench.sbatch" &&
    wait_job "$JOB" 60 && expect_job hang FAILED 1:0
check "$W/hetbench-$JOB.h5" "
assert st == 'complete', st
assert [status(c, 1) for c in range(2)] == [['lost']] * 2, [status(c, 1) for c in range(2)]
assert all(status(c, r) == ['ok'] for c in range(2) for r in (0, 2, 3))
"

# ---- 3b. an aborted rank: under srun --mpi=pmix the plugin kills the whole step (SIGKILL,
# exit 137) even with --kill-on-bad-exit=0; the cases completed before are in the file
submit abort "${RUNENV[@]}" "HETBENCH_FAULT=rank=3,case=1,kind=abort" \
    "HETBENCH_ARGS=--workload gemm --m 32,48,64 --n 32 --k 32 $FAST --case-timeout 10 --min-seconds 0" -- \
    "${CPUJOB[@]}" "$SRC/scripts/slurm/hetbench.sbatch" &&
    wait_job "$JOB" 60 && {
        checks=$((checks + 1)) # srun: 128 + the signal of the killed ranks (9), or of the aborted one (6)
        [[ $STATE == FAILED && ($EXIT == 137:0 || $EXIT == 134:0) ]] ||
            fail "abort: job $JOB ended $STATE exit $EXIT, expected FAILED 137 (or 134)"
    }
check "$W/hetbench-$JOB.h5" "
assert st == 'incomplete', st
assert all(status(0, r) == ['ok'] for r in range(4)), [status(0, r) for r in range(4)]
assert all(status(2, r) in ([], ['lost']) for r in range(4))
"

# ---- 4. hetjob.sbatch: 2 ranks on partition nvidia (n0) + 2 on amd (n1), one MPI_COMM_WORLD.
# n0 and n1 are the same machine: Open MPI's shared-memory transport would map the same
# segment names for "both nodes" and crash, so the ranks talk TCP over loopback here.
submit het "${RUNENV[@]}" OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo HETJOB_HANG_GRACE=5 \
    "HETBENCH_ARGS=--workload gemm --m 64 --n 64 --k 64 $FAST --min-seconds 0" -- \
    -p nvidia --ntasks=2 --ntasks-per-node=2 --gpus-per-task=0 : \
    -p amd --ntasks=2 --ntasks-per-node=2 --gpus-per-task=0 "$SRC/scripts/slurm/hetjob.sbatch" &&
    wait_job "$JOB" 60 && expect_job het COMPLETED 0:0
grep -q "srun killed" "$W/hetbench-$JOB.out" 2>/dev/null &&
    echo "test_slurm: job $JOB: srun's het-step hang (ticket 16817) happened; the watchdog ended it" >&2
check "$W/hetbench-$JOB.h5" "
assert st == 'complete', st
assert f.attrs['mpi_size'] == 4, f.attrs['mpi_size']
assert len(s) == 4 and all(status(0, r) == ['ok'] for r in range(4))
$SLURM_COLS
$(slurm_want slurm_het_group "[0, 0, 1, 1]")
$(slurm_want slurm_partition "['nvidia', 'nvidia', 'amd', 'amd']")
$(slurm_want slurm_job_id "['$JOB'] * 4")
$(slurm_want slurm_step_id "['0'] * 4")
nl = dev('slurm_nodelist')  # the component's nodes or the whole job's
want(nl[0] in ('n0', 'n[0-1]') and nl[2] in ('n1', 'n[0-1]'), 'slurm: slurm_nodelist is %r' % nl)
"

# ---- 4b. Slurm < 24.11 now and then never ends srun after a het step (SchedMD ticket 16817:
# two PMIx abort agents, one thread id): hetjob.sbatch's watchdog kills it once the step has
# left squeue, and takes the exit code from srun's task reports. The hang is made certain
# here by an srun that runs the real one and then sleeps; once with a failed case (rank 2
# exits 1: "task 2: Exited with exit code 1", exit 1), once without (exit 0).
if [[ $(srun --version 2>/dev/null) =~ slurm[^\ ]*\ (2[0-3]\.|24\.0) ]]; then
    mkdir -p "$T/hangbin"
    cat >"$T/hangbin/srun" <<EOS
#!/bin/bash
[[ \${1:-} == --version ]] && exec $(command -v srun) "\$@"
$(command -v srun) "\$@"
exec sleep 120
EOS
    chmod +x "$T/hangbin/srun"
    for fault in "rank=2,case=0,kind=error" ""; do
        submit hung-srun "${RUNENV[@]}" OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo \
            "PATH=$T/hangbin:$PATH" HETJOB_HANG_GRACE=3 ${fault:+"HETBENCH_FAULT=$fault"} \
            "HETBENCH_ARGS=--workload gemm --m 64 --n 64 --k 64 $FAST --min-seconds 0" -- \
            -p nvidia --ntasks=2 --ntasks-per-node=2 --gpus-per-task=0 : \
            -p amd --ntasks=2 --ntasks-per-node=2 --gpus-per-task=0 "$SRC/scripts/slurm/hetjob.sbatch" &&
            wait_job "$JOB" 60 && if [[ -n $fault ]]; then expect_job hung-srun FAILED 1:0; else expect_job hung-srun COMPLETED 0:0; fi
        checks=$((checks + 1))
        grep -q "srun killed" "$W/hetbench-$JOB.out" 2>/dev/null && grep -q "exit code $([[ -n $fault ]] && echo 1 || echo 0) from srun's task reports" "$W/hetbench-$JOB.out" ||
            fail "hung-srun: no watchdog lines in the job log: $(tail -n 6 "$W/hetbench-$JOB.out" 2>/dev/null)"
        check "$W/hetbench-$JOB.h5" "
assert st == 'complete', st
assert status(0, 2) == (['failed'] if '$fault' else ['ok']), status(0, 2)
assert all(status(0, r) == ['ok'] for r in (0, 1, 3))
"
    done
fi

# ---- 5. sweep-array.sbatch: one point per array index, one file each
submit array "${RUNENV[@]}" SWEEP_FLAG=--m "SWEEP=32 48" \
    "HETBENCH_ARGS=--workload gemm --n 32 --k 32 $FAST --min-seconds 0" -- \
    --array=0-1 --gpus-per-task=0 --cpus-per-task=1 "$SRC/scripts/slurm/sweep-array.sbatch" &&
    wait_job "$JOB" 60 && expect_job array COMPLETED 0:0
for i in 0 1; do
    check "$W/hetbench-${JOB}_$i.h5" "
assert st == 'complete', st
assert len(s) == 1 and status(0, 0) == ['ok']
assert 'm: $([[ $i == 0 ]] && echo 32 || echo 48),' in dec(f.attrs['plan']), dec(f.attrs['plan'])
"
done

echo "test_slurm.sh: $checks checks, $fails failed, $((SECONDS - t0)) s" >&2
[[ $fails -eq 0 ]]
