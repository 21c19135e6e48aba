#!/usr/bin/env bash
# test_power_cli.sh HETBENCH FAKE_POWERCAP FAKE_NVML FAKE_RSMI PYTHON - `hetbench power`:
# --help and usage errors (exit 2, one line); a node with no meter (exit 1, a reason per
# source); then every fake at once - two NVIDIA GPUs (NVML), one AMD GPU (ROCm SMI), RAPL
# package + DRAM of two sockets (a live fake powercap tree) - whose JSON must list each meter
# with the scripted power (GPUs within 1%: the fakes compute exact values; RAPL within 5%: a
# file rewritten every 5 ms by a process of its own, its sampled integral within 15%) and the
# same figures from the counter and the integral.
set -u
HB=$1 FPC=$2 NVML=$3 RSMI=$4 PY=${5:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$HB" power --help >"$T/out" 2>&1 || fail "power --help exited $?"
grep -q '^usage: hetbench power' "$T/out" || fail "power --help: no usage line"
for bad in "--seconds 0" "--seconds x" "--hz -1" "--bogus" "--seconds"; do
  # shellcheck disable=SC2086
  "$HB" power $bad >"$T/out" 2>"$T/err"
  rc=$?
  [[ $rc -eq 2 ]] || fail "power $bad: exit $rc, expected 2"
  [[ $(wc -l <"$T/err") -eq 1 ]] || fail "power $bad: expected one line on stderr: $(cat "$T/err")"
  grep -q '^hetbench power: ' "$T/err" || fail "power $bad: $(cat "$T/err")"
done

# no meter at all: exit 1, each source says why
HETBENCH_NVML_LIBRARY=$T/none.so HETBENCH_RSMI_LIBRARY=$T/none.so HETBENCH_POWERCAP_ROOT=$T/none \
  "$HB" power --seconds 0.2 >"$T/out" 2>"$T/err"
rc=$?
[[ $rc -eq 1 ]] || fail "no meters: exit $rc, expected 1"
grep -q '^# unavailable: nvml: NVML: cannot load' "$T/out" || fail "no meters: nvml reason: $(cat "$T/out")"
grep -q '^# unavailable: rocm-smi: ROCm SMI: cannot load' "$T/out" || fail "no meters: rocm-smi reason"
grep -q "^# unavailable: rapl: RAPL: $T/none: No such file" "$T/out" || fail "no meters: rapl reason"

if [[ -z $PY ]]; then
  echo "SKIP: no python3 to read the JSON" >&2
  exit 77
fi
export HETBENCH_NVML_LIBRARY=$NVML HB_FAKE_NVML_DEVICES=00000000:17:00.0,00000000:65:00.0 \
  HB_FAKE_NVML_POWER=300,150 HB_FAKE_NVML_MODE=ok,ok
export HETBENCH_RSMI_LIBRARY=$RSMI HB_FAKE_RSMI_DEVICES=0000:c1:00.0 HB_FAKE_RSMI_POWER=500 \
  HB_FAKE_RSMI_MODE=ok
"$FPC" "$T/pc" --sockets 2 --watts 40,8 -- "$HB" power --seconds 1.3 --json >"$T/power.json" 2>"$T/err"
rc=$?
[[ $rc -eq 0 ]] || fail "power with fakes: exit $rc: $(cat "$T/err")"
"$PY" - "$T/power.json" <<'PY' || fail "power --json contents"
import json, math, sys
d = json.load(open(sys.argv[1]))
bad = 0
def check(cond, what):
    global bad
    if not cond:
        bad += 1
        print("FAIL:", what, file=sys.stderr)
labels = [m["meter"] for m in d["meters"]]
want = ["nvml:0", "nvml:1", "rocm-smi:0", "rapl:package-0", "rapl:dram-0", "rapl:package-1", "rapl:dram-1"]
check(labels == want, f"meters {labels}")
check(d["unavailable"] == [], f"unavailable {d['unavailable']}")
check(d["seconds"] == 1.3 and d["hz"] == 20, "seconds/hz")
watts = {"nvml:0": (300, 0.01), "nvml:1": (150, 0.01), "rocm-smi:0": (500, 0.01),
         "rapl:package-0": (40, 0.05), "rapl:dram-0": (8, 0.05),
         "rapl:package-1": (40, 0.05), "rapl:dram-1": (8, 0.05)}
for m in d["meters"]:
    w, tol = watts[m["meter"]]
    win = m["window_s"]
    check(abs(m["avg_w"] - w) <= tol * w, f"{m['meter']}: avg {m['avg_w']} W, scripted {w}")
    for k in ("energy_counter_j", "energy_integral_j"):
        # the integral of RAPL's sampled power: the fake's writer process rewrites the counter
        # every 5 ms on its own clock, and when it is descheduled it catches up in one bigger
        # step, which the 20 Hz sampler reads as a power spike (seen in CI: +10 %); the counter
        # itself stays exact. 15 % still catches an integral that is off by a sample's worth
        t = 0.15 if k == "energy_integral_j" and m["meter"].startswith("rapl:") else tol
        check(m[k] is not None and abs(m[k] - w * win) <= t * w * win,
              f"{m['meter']}: {k} {m[k]} J, scripted {w * win:.3f}")
    check(m["energy_valid"] == 1 and m["energy_flags"] == 0 and m["flag_names"] == [],
          f"{m['meter']}: flags {m['flag_names']}")
    check(m["energy_source"] == "counter", f"{m['meter']}: source {m['energy_source']}")
    check(m["samples"] >= 20, f"{m['meter']}: {m['samples']} samples")
check(d["meters"][0]["api"] == "NVML" and d["meters"][0]["pci_bus_id"] == "00000000:17:00.0", "nvml provenance")
check(d["meters"][2]["api"] == "ROCm SMI" and d["meters"][2]["power_limit_w"] == 560, "rsmi provenance")
check(d["meters"][3]["api"] == "powercap/RAPL" and d["meters"][3]["power_limit_w"] == 125, "rapl provenance")
sys.exit(1 if bad else 0)
PY

# the table: a header, one row per meter, provenance lines
"$FPC" "$T/pc2" --sockets 1 -- "$HB" power --seconds 0.3 --hz 50 >"$T/table" 2>"$T/err" || fail "table: $(cat "$T/err")"
grep -q '^# hetbench power: 5 meters, 0.30 s at 50 Hz' "$T/table" || fail "table header: $(head -2 "$T/table")"
grep -Eq '^  nvml:0 +3[0-9]{2}\.[0-9]{2} ' "$T/table" || fail "table nvml:0 row: $(cat "$T/table")"
grep -q '^# nvml:0: NVIDIA H100' "$T/table" || fail "table provenance"
grep -q 'short_window' "$T/table" || fail "0.3 s is shorter than 10 NVML counter periods: short_window expected"

echo "test_power_cli: $fails failed" >&2
[[ $fails -eq 0 ]]
