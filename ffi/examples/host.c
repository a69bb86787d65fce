/* The C ABI check on a hosted system: `check ASSETS_DIR` reads the bundled
 * files from ASSETS_DIR (firmware/assets) and prints the check's lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

void check_emit(const char *line) { puts(line); }

/* Read DIR/NAME whole into a malloc'd (16-byte aligned) buffer. */
static struct check_blob load(const char *dir, const char *name) {
  char path[4096];
  struct check_blob b = {NULL, 0};
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f || fseek(f, 0, SEEK_END) != 0) {
    fprintf(stderr, "check: cannot read %s\n", path);
    exit(2);
  }
  long n = ftell(f);
  uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
  rewind(f);
  if (n < 0 || !data || fread(data, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "check: cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  b.data = data;
  b.len = (size_t)n;
  return b;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ASSETS_DIR\n", argv[0]);
    return 2;
  }
  const char *d = argv[1];
  struct check_assets a = {
      load(d, "thyroid.floe"), load(d, "thyroid-int8.floe"), load(d, "thyroid.f32"),
      load(d, "ucr-int8.floe"), load(d, "ucr-test.f32"),       load(d, "traj-int8.floe"),
      load(d, "traj-windows.f32"),
  };
  return check_run(&a);
}
