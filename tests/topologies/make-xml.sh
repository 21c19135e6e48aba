#!/bin/bash
# make-xml.sh - regenerates the hwloc XML topologies of synthetic GPU and CPU nodes used by
# tests/test_topology.c (and by `HETBENCH_TOPOLOGY=FILE.xml hetbench info` to plan a node).
#
# The XMLs are committed: tests never run this script. It needs `lstopo-no-graphics` (Debian
# package hwloc). Usage: tests/topologies/make-xml.sh [OUTDIR]   (default: this directory)
#
# Route: hwloc's synthetic topology strings describe the CPU part (packages, NUMA nodes, caches,
# cores, PUs, with Linux-like PU numbering: the second hyperthread of core c is PU c + ncores);
# `lstopo --of xml` exports it in the hwloc 2 XML format. Synthetic strings cannot hold I/O
# objects, so this script then adds, per package, the PCI tree a real `lstopo --of xml` shows:
# a host bridge, PCIe switch ports (Bridge objects with pci_busid/pci_type) and the PCI devices
# (PCIDev with pci_busid, pci_type="CCCC [vvvv:dddd] [ssss:ssss] rr", pci_link_speed in GB/s).
#
# The files must stay readable by hwloc's minimal XML parser (used when the libxml2 plugin is
# not installed): no XML comments. Notes go into <info name="hetbenchNote"> attributes instead.
set -euo pipefail

out=${1:-$(cd "$(dirname "$0")" && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

hex2() { printf '%02x' "$1"; }

# ---- I/O object writers: each appends XML to the file named by $io -------------------------
# hostbridge_open LO HI / hostbridge_close: a host bridge owning buses LO..HI (numbers)
hostbridge_open() {
    printf '      <object type="Bridge" bridge_type="0-1" depth="0" bridge_pci="0000:[%s-%s]">\n' \
        "$(hex2 "$1")" "$(hex2 "$2")" >>"$io"
}
hostbridge_close() { printf '      </object>\n' >>"$io"; }

# bridge_open BUS DEV LO HI DEPTH: a PCIe switch/root port at 0000:BUS:DEV.0 with buses LO..HI
bridge_open() {
    printf '%*s<object type="Bridge" bridge_type="1-1" depth="%d" bridge_pci="0000:[%s-%s]" pci_busid="0000:%s:%s.0" pci_type="0604 [1000:c030] [1000:100b] b0" pci_link_speed="63.015385">\n' \
        $((8 + 2 * $5)) "" "$5" "$(hex2 "$3")" "$(hex2 "$4")" "$(hex2 "$1")" "$(hex2 "$2")" >>"$io"
}
bridge_close() { printf '%*s</object>\n' $((8 + 2 * $1)) "" >>"$io"; }

# pcidev INDENT BUSID CLASS VENDOR DEVICE SUBVENDOR SUBDEVICE REV SPEED [VENDORNAME DEVICENAME [OSDEV...]]
# OSDEV: "name|subtype|osdev_type|GPUModel" (OS devices that an hwloc built with the cuda, nvml
# or rsmi plugins adds below a GPU; Debian's hwloc has none of these plugins)
pcidev() {
    local ind=$1 busid=$2 class=$3 ven=$4 dev=$5 sven=$6 sdev=$7 rev=$8 speed=$9
    shift 9
    local pad
    pad=$(printf '%*s' "$ind" "")
    if [ $# -eq 0 ]; then
        printf '%s<object type="PCIDev" pci_busid="%s" pci_type="%s [%s:%s] [%s:%s] %s" pci_link_speed="%s"/>\n' \
            "$pad" "$busid" "$class" "$ven" "$dev" "$sven" "$sdev" "$rev" "$speed" >>"$io"
        return
    fi
    printf '%s<object type="PCIDev" pci_busid="%s" pci_type="%s [%s:%s] [%s:%s] %s" pci_link_speed="%s">\n' \
        "$pad" "$busid" "$class" "$ven" "$dev" "$sven" "$sdev" "$rev" "$speed" >>"$io"
    if [ -n "$1" ]; then printf '%s  <info name="PCIVendor" value="%s"/>\n' "$pad" "$1" >>"$io"; fi
    if [ -n "$2" ]; then printf '%s  <info name="PCIDevice" value="%s"/>\n' "$pad" "$2" >>"$io"; fi
    shift 2
    local od name sub typ model
    for od in "$@"; do
        IFS='|' read -r name sub typ model <<<"$od"
        {
            printf '%s  <object type="OSDev" name="%s" subtype="%s" osdev_type="%s">\n' "$pad" "$name" "$sub" "$typ"
            printf '%s    <info name="Backend" value="%s"/>\n' "$pad" "$sub"
            printf '%s    <info name="GPUModel" value="%s"/>\n' "$pad" "$model"
            printf '%s  </object>\n' "$pad"
        } >>"$io"
    done
    printf '%s</object>\n' "$pad" >>"$io"
}

# gpu_behind_switch BUS GPU-ARGS... [-- NIC-ARGS...]: a host bridge, a PCIe switch whose upstream
# port is at BUS-2, one downstream port with the GPU at BUS:00.0 and, optionally, a second one
# with a NIC at BUS+1:00.0 (the DGX-style GPU/NIC pairing).
gpu_behind_switch() {
    local b=$1
    shift
    local gpu=() nic=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do gpu+=("$1"); shift; done
    if [ $# -gt 0 ]; then shift; nic=("$@"); fi
    local hi=$b
    if [ ${#nic[@]} -gt 0 ]; then hi=$((b + 1)); fi
    hostbridge_open $((b - 2)) "$hi"
    bridge_open $((b - 2)) 0 $((b - 1)) "$hi" 1
    bridge_open $((b - 1)) 0 "$b" "$b" 2
    pcidev 14 "0000:$(hex2 "$b"):00.0" "${gpu[@]}"
    bridge_close 2
    if [ ${#nic[@]} -gt 0 ]; then
        bridge_open $((b - 1)) 1 $((b + 1)) $((b + 1)) 2
        pcidev 14 "0000:$(hex2 $((b + 1))):00.0" "${nic[@]}"
        bridge_close 2
    fi
    bridge_close 1
    hostbridge_close
}

# single_dev BUS ARGS...: a root port at BUS-1 with one device at BUS:00.0 (NVMe, NIC, BMC VGA)
single_dev() {
    local b=$1
    shift
    hostbridge_open $((b - 1)) "$b"
    bridge_open $((b - 1)) 0 "$b" "$b" 1
    pcidev 12 "0000:$(hex2 "$b"):00.0" "$@"
    bridge_close 1
    hostbridge_close
}

# Common non-GPU devices (must all be ignored by the accelerator discovery).
ASPEED=(0300 1a03 2000 1a03 2000 52 0.250000 "ASPEED Technology, Inc." "ASPEED Graphics Family")
CX7=(0207 15b3 1021 15b3 0041 00 63.015385 "Mellanox Technologies" "MT2910 Family [ConnectX-7]")
NVME=(0108 144d a824 144d a809 00 7.876923 "Samsung Electronics Co Ltd" "NVMe SSD Controller PM173X")

# ---- assemble: synthetic CPU part + machine/package infos + per-package I/O files -----------
# make NAME HOSTNAME SYNTHETIC CPUVENDOR CPUMODEL NOTE
make_xml() {
    local name=$1 host=$2 synth=$3 cpuvendor=$4 cpumodel=$5 note=$6
    lstopo-no-graphics -i "$synth" --of xml >"$tmp/base.xml"
    awk -v host="$host" -v cpuvendor="$cpuvendor" -v cpumodel="$cpumodel" -v note="$note" \
        -v io0="$tmp/io0" -v io1="$tmp/io1" '
        function cat(f,   l) { while ((getline l < f) > 0) print l; close(f) }
        /<info name="(ProcessName|hwlocVersion)"/ { next }
        /^  <object type="Machine"/ {
            print
            print "    <info name=\"HostName\" value=\"" host "\"/>"
            print "    <info name=\"OSName\" value=\"Linux\"/>"
            print "    <info name=\"Architecture\" value=\"x86_64\"/>"
            print "    <info name=\"hetbenchNote\" value=\"" note "\"/>"
            next
        }
        /^    <object type="Package"/ {
            pkg = (pkg == "") ? 0 : pkg + 1
            print
            print "      <info name=\"CPUVendor\" value=\"" cpuvendor "\"/>"
            print "      <info name=\"CPUModel\" value=\"" cpumodel "\"/>"
            next
        }
        /^    <\/object>$/ { cat(pkg == 0 ? io0 : io1) }
        { print }
    ' "$tmp/base.xml" >"$out/$name"
    if ! lstopo-no-graphics -i "$out/$name" --of console >/dev/null 2>"$tmp/err" || [ -s "$tmp/err" ]; then
        echo "make-xml.sh: $name does not load:" >&2
        cat "$tmp/err" >&2
        exit 1
    fi
    echo "wrote $out/$name"
}

GEN="generated by tests/topologies/make-xml.sh (synthetic, not a recorded machine)"

# ---- h100x8-2socket.xml: DGX H100-like. 2x Xeon Platinum 8480C (56 cores, HT), one NUMA node
# per socket; 8 H100 SXM5 (10de:2330, class 0302) at the DGX H100 bus ids, 4 per socket, each
# behind a PCIe switch shared with a ConnectX-7; plus NVMe, the BMC's ASPEED VGA (class 0300,
# another vendor) and 4 NVSwitch PCI functions (10de:22a3, class 0680: NVIDIA but not a GPU;
# hwloc's KEEP_IMPORTANT filter already drops them).
H100=(0302 10de 2330 10de 16c1 a1 63.015385 "NVIDIA Corporation" "GH100 [H100 SXM5 80GB]")
io=$tmp/io0; : >"$io"
single_dev 0x03 "${ASPEED[@]}"
hostbridge_open 0x04 0x08
for b in 05 06 07 08; do pcidev 8 "0000:$b:00.0" 0680 10de 22a3 10de 1796 a1 15.753846; done
hostbridge_close
for b in 0x18 0x2a 0x3a 0x5d; do gpu_behind_switch $b "${H100[@]}" -- "${CX7[@]}"; done
single_dev 0x4e "${NVME[@]}"
io=$tmp/io1; : >"$io"
for b in 0x9a 0xab 0xba 0xdb; do gpu_behind_switch $b "${H100[@]}" -- "${CX7[@]}"; done
single_dev 0xc4 "${NVME[@]}"
make_xml h100x8-2socket.xml dgx-h100 \
    "pack:2 numa:1(memory=1099511627776) l3:1(size=110100480) l2:56(size=2097152) l1d:1(size=49152) core:1 pu:2(indexes=2*112:1*2)" \
    GenuineIntel "Intel(R) Xeon(R) Platinum 8480C" "$GEN"

# ---- mi300x8.xml: 2x EPYC 9654 (96 cores, SMT, 12 CCDs of 8 cores), NPS1; 8 MI300X
# (1002:74a1), 4 per socket behind PCIe switches; one ConnectX-7 per socket, NVMe, ASPEED VGA,
# and an AMD HD-audio function (1002:ab38, class 0403) at 0000:0c:00.1 that is not a GPU.
# The class of the MI300X is written as 0x1200 (processing accelerator): real MI300X report
# 0x1200 or 0x0380 depending on firmware/VBIOS - verify on hardware (lspci -nn -d 1002:74a1).
MI300X=(1200 1002 74a1 1002 74a1 00 63.015385 "Advanced Micro Devices, Inc. [AMD/ATI]" "Aqua Vanjaram [Instinct MI300X]")
io=$tmp/io0; : >"$io"
single_dev 0x03 "${ASPEED[@]}"
for b in 0x0c 0x22 0x38 0x5c; do
    gpu_behind_switch $b "${MI300X[@]}"
done
# the audio function sits next to GPU 0 (same bus, function 1)
awk '{ print } /pci_busid="0000:0c:00.0"/ { inside = 1 } inside && /^              <\/object>$/ {
        print "              <object type=\"PCIDev\" pci_busid=\"0000:0c:00.1\" pci_type=\"0403 [1002:ab38] [1002:ab38] 00\" pci_link_speed=\"63.015385\"/>"
        inside = 0 }' "$io" >"$io.new" && mv "$io.new" "$io"
single_dev 0x41 "${CX7[@]}"
single_dev 0x4e "${NVME[@]}"
io=$tmp/io1; : >"$io"
for b in 0x9f 0xaf 0xbf 0xdf; do gpu_behind_switch $b "${MI300X[@]}"; done
single_dev 0xc1 "${CX7[@]}"
make_xml mi300x8.xml mi300x-node \
    "pack:2 numa:1(memory=824633720832) l3:12(size=33554432) l2:8(size=1048576) l1d:1(size=32768) core:1 pu:2(indexes=2*192:1*2)" \
    AuthenticAMD "AMD EPYC 9654 96-Core Processor" \
    "$GEN; MI300X class written as 0x1200, real parts report 0x1200 or 0x0380: verify on hardware"

# ---- mixed-2nv-2amd.xml: 2x Xeon Gold 6346 (16 cores, HT); per socket one A100 PCIe 80GB
# (10de:20b5, class 0302) and one MI210 (1002:740f, class 0380). PCI bus id order interleaves the
# vendors: 17 (NVIDIA, socket 0), 31 (AMD, socket 0), b1 (AMD, socket 1), ca (NVIDIA, socket 1).
# The socket-0 GPUs carry the OS devices an hwloc with the cuda/nvml/rsmi plugins would add (the
# GPU name comes from there); ca has only the PCI name; b1 has no name at all.
A100=(0302 10de 20b5 10de 1533 a1 31.507692)
MI210=(0380 1002 740f 1002 0c34 02 31.507692)
io=$tmp/io0; : >"$io"
single_dev 0x03 "${ASPEED[@]}"
single_dev 0x17 "${A100[@]}" "NVIDIA Corporation" "GA100 [A100 PCIe 80GB]" \
    "cuda0|CUDA|5|NVIDIA A100 80GB PCIe" "nvml0|NVML|1|NVIDIA A100 80GB PCIe"
single_dev 0x31 "${MI210[@]}" "Advanced Micro Devices, Inc. [AMD/ATI]" "Aldebaran/MI200 [Instinct MI210]" \
    "rsmi0|RSMI|1|AMD Instinct MI210"
single_dev 0x4b "${NVME[@]}"
io=$tmp/io1; : >"$io"
single_dev 0x98 "${CX7[@]}"
single_dev 0xb1 "${MI210[@]}"
single_dev 0xca "${A100[@]}" "NVIDIA Corporation" "GA100 [A100 PCIe 80GB]"
make_xml mixed-2nv-2amd.xml mixed-node \
    "pack:2 numa:1(memory=274877906944) l3:1(size=37748736) l2:16(size=1310720) l1d:1(size=49152) core:1 pu:2(indexes=2*32:1*2)" \
    GenuineIntel "Intel(R) Xeon(R) Gold 6346 CPU @ 3.10GHz" \
    "$GEN; the OS devices below 17:00.0 and 31:00.0 stand for an hwloc built with the cuda, nvml and rsmi plugins"

# ---- cpu-2socket.xml: 2x EPYC 7763 (64 cores, SMT off, 8 CCDs of 8 cores), NPS1; no GPU,
# only the BMC's VGA, a NIC and an NVMe.
io=$tmp/io0; : >"$io"
single_dev 0x03 "${ASPEED[@]}"
single_dev 0x41 "${CX7[@]}"
io=$tmp/io1; : >"$io"
single_dev 0xc2 "${NVME[@]}"
make_xml cpu-2socket.xml cpu-node \
    "pack:2 numa:1(memory=274877906944) l3:8(size=33554432) l2:8(size=524288) l1d:1(size=32768) core:1 pu:1" \
    AuthenticAMD "AMD EPYC 7763 64-Core Processor" "$GEN; SMT off"
