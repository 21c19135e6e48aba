#!/usr/bin/env bash
# le64.sh N - writes N as 8 little-endian bytes (a safetensors header length)
n=$1
for _ in 1 2 3 4 5 6 7 8; do printf "\\$(printf '%03o' $((n & 255)))"; n=$((n >> 8)); done
