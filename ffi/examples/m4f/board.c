/* The C ABI check as Cortex-M4F firmware (QEMU mps2-an386): a vector table,
 * a reset handler that sets up RAM and the FPU, lines out and the exit status
 * through semihosting, and the bundled files embedded by assets.S. No C
 * library: the floe static library supplies memcpy and memset. */
#include <stdint.h>

#include "check.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

/* ---- semihosting ---- */

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023

static void __attribute__((noreturn)) exit_with(int ok) {
  semihost(SYS_EXIT, (const void *)(uintptr_t)(ok ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
  for (;;) {
  }
}

/* Semihosting's stdout: the special file ":tt" opened for writing. */
static int stdout_handle = -1;

void check_emit(const char *line) {
  static char buf[300];
  uint32_t n = 0;
  if (stdout_handle < 0) {
    static const char tt[] = ":tt";
    const uint32_t open_args[3] = {(uint32_t)(uintptr_t)tt, 4 /* "w" */, 3};
    stdout_handle = semihost(SYS_OPEN, open_args);
  }
  while (line[n] && n < sizeof buf - 1) {
    buf[n] = line[n];
    n++;
  }
  buf[n++] = '\n';
  const uint32_t write_args[3] = {(uint32_t)stdout_handle, (uint32_t)(uintptr_t)buf, n};
  semihost(SYS_WRITE, write_args);
}

/* ---- the files (assets.S) ---- */

#define ASSET(name) extern const uint8_t asset_##name[], asset_##name##_end[]
#define BLOB(name) {asset_##name, (size_t)(asset_##name##_end - asset_##name)}
ASSET(thyroid_f32);
ASSET(thyroid_int8);
ASSET(thyroid_rows);
ASSET(ucr_model);
ASSET(ucr_series);
ASSET(traj_model);
ASSET(traj_windows);

int main(void) {
  struct check_assets a = {
      BLOB(thyroid_f32), BLOB(thyroid_int8), BLOB(thyroid_rows), BLOB(ucr_model),
      BLOB(ucr_series),  BLOB(traj_model),   BLOB(traj_windows),
  };
  return check_run(&a);
}

/* ---- reset and faults ---- */

void Reset_Handler(void) {
  const uint32_t *src = &_sidata;
  for (uint32_t *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  /* CPACR: full access to CP10 and CP11 (the FPU). */
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  exit_with(main() == 0);
}

static void Fault_Handler(void) {
  check_emit("fault");
  exit_with(0);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_estack,      (const void *)Reset_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler,
    (const void *)Fault_Handler, (const void *)Fault_Handler, (const void *)Fault_Handler,
};
