/* The C ABI check program's parts: the bundled files it runs on, and the
 * platform's line printer. */
#ifndef FLOE_CHECK_H
#define FLOE_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* A file's bytes (4-byte aligned: models are read in place). */
struct check_blob {
  const uint8_t *data;
  size_t len;
};

/* The firmware assets the check uses (firmware/assets/). */
struct check_assets {
  struct check_blob thyroid_f32, thyroid_int8, thyroid_rows;
  struct check_blob ucr_model, ucr_series;
  struct check_blob traj_model, traj_windows;
};

/* Print one line (no newline in `line`). Supplied by the platform. */
void check_emit(const char *line);

/* Run every check; 0 when every call that must succeed did. */
int check_run(const struct check_assets *a);

#endif
