#!/usr/bin/env bash
# Cargo runner: run a firmware ELF in QEMU and decode its defmt output.
#   bash qemu-run.sh <machine> <elf>     machine: mps2-an386 (Cortex-M4F) | microbit (Cortex-M0) | virt (riscv32)
# The exit status is QEMU's, which is the program's semihosting exit status.
set -euo pipefail
machine=$1
elf=$2
qemu=qemu-system-arm
case $machine in
  mps2-an386) cpu="-cpu cortex-m4" ;;
  virt) qemu=qemu-system-riscv32 cpu="-bios none" ;;
  *) cpu="" ;;
esac
# shellcheck disable=SC2086
$qemu $cpu -machine "$machine" -display none -monitor none -serial none \
  -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf" \
  | defmt-print -e "$elf"
