/* The C ABI check: everything floe.h offers, on the bundled models, printed as
 * lines whose every float is its IEEE-754 bits. The same source runs on the
 * host (host.c reads the files), on aarch64 under qemu-aarch64, and on a
 * Cortex-M4F under QEMU (m4f/main.c embeds the files); `cargo xtask ffi`
 * diffs each output with the lines the Rust runtime gives.
 *
 * No libc beyond memcpy: the firmware build has none (the Rust library
 * supplies memcpy), so the few formatting helpers are written here. */
#include "check.h"

#include "floe.h"

/* string.h's, declared here: the firmware build has no C library headers. */
void *memcpy(void *dst, const void *src, size_t n);

/* Scratch for every call: the largest model's batch scratch fits. */
#define SCRATCH 16384
static float scratch[SCRATCH];
static FloeModel model;
static FloeStream stream;
static FloeTracker tracker;
static FloeRng rng;

/* ---- lines ------------------------------------------------------------ */

static char line[256];
static size_t at;

static void put(const char *s) {
  while (*s && at + 1 < sizeof line) line[at++] = *s++;
}

static void put_u(uint32_t v) {
  char b[11];
  int n = 0;
  do {
    b[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n && at + 1 < sizeof line) line[at++] = b[--n];
}

static void put_i(int32_t v) {
  if (v < 0) {
    put("-");
    put_u((uint32_t)0 - (uint32_t)v);
  } else {
    put_u((uint32_t)v);
  }
}

static void put_f(float f) {
  uint32_t u;
  static const char hex[] = "0123456789abcdef";
  memcpy(&u, &f, 4);
  put(" 0x");
  for (int k = 7; k >= 0; k--) {
    char c[2] = {hex[(u >> (4 * k)) & 15], 0};
    put(c);
  }
}

static void end_line(void) {
  line[at] = 0;
  check_emit(line);
  at = 0;
}

/* "what i j" then the rest of the line. */
static void head(const char *what, uint32_t i, uint32_t j) {
  put(what);
  put(" ");
  put_u(i);
  put(" ");
  put_u(j);
}

static void value(const char *what, uint32_t i, uint32_t j, float v) {
  head(what, i, j);
  put_f(v);
  end_line();
}

/* An expected error: its code, numbers and message. */
static void error(const char *what, uint32_t i, FloeStatus st) {
  char msg[96];
  head(what, i, 0);
  put(" error ");
  put_i(st.code);
  put(" ");
  put_u(st.detail[0]);
  put(" ");
  put_u(st.detail[1]);
  put(" ");
  floe_status_message(st, msg, sizeof msg);
  put(msg);
  end_line();
}

/* A call that must succeed: on failure print it and stop. */
#define MUST(call)                \
  do {                            \
    FloeStatus st_ = (call);      \
    if (st_.code != FLOE_CODE_OK) { \
      error("failed", __LINE__, st_); \
      return 1;                   \
    }                             \
  } while (0)

static float f32_at(const struct check_blob *b, size_t k) {
  float f;
  memcpy(&f, b->data + 4 * k, 4);
  return f;
}

/* ---- the checks ------------------------------------------------------- */

/* A plain model: log_prob of every row, the batch call, scores, forward and
 * inverse, seeded samples, and the typed errors of bad calls. */
static int check_model(const char *name, const struct check_blob *file, const struct check_blob *rows) {
  FloeModelInfo info;
  float x[64], z[64], back[64], batch[64];
  float lp, ld;
  MUST(floe_model_load(&model, file->data, file->len));
  MUST(floe_model_info(&model, &info));
  put("model ");
  put(name);
  put(" dim=");
  put_u((uint32_t)info.dim);
  put(" context=");
  put_u((uint32_t)info.context_dim);
  put(" layers=");
  put_u((uint32_t)info.n_layers);
  put(" scratch=");
  put_u((uint32_t)info.scratch_len);
  put(" batch-scratch=");
  put_u((uint32_t)info.batch_scratch_len);
  put(" bytes=");
  put_u((uint32_t)info.file_len);
  end_line();
  size_t d = info.dim;
  size_t n = rows->len / (4 * d);
  if (d > 64 || n > 64 || info.context_dim != 0 || info.batch_scratch_len > SCRATCH) {
    put("model too large for the check's buffers");
    end_line();
    return 1;
  }
  static float all[64 * 64];
  for (size_t k = 0; k < n * d; k++) all[k] = f32_at(rows, k);
  for (size_t r = 0; r < n; r++) {
    MUST(floe_log_prob(&model, all + r * d, d, NULL, 0, scratch, info.scratch_len, &lp));
    value("logp", (uint32_t)r, 0, lp);
  }
  MUST(floe_log_prob_batch(&model, all, n * d, NULL, 0, batch, n, scratch, SCRATCH));
  for (size_t r = 0; r < n; r++) value("batch", (uint32_t)r, 0, batch[r]);
  for (size_t r = 0; r < 4 && r < n; r++) {
    FloeScore s;
    MUST(floe_score(&model, all + r * d, d, NULL, 0, scratch, SCRATCH, &s));
    head("score", (uint32_t)r, 0);
    put_f(s.nats);
    put_f(s.per_dim);
    put(" ");
    put_i(s.verdict);
    end_line();
    MUST(floe_forward(&model, all + r * d, d, NULL, 0, z, d, scratch, SCRATCH, &ld));
    for (size_t j = 0; j < d; j++) value("z", (uint32_t)r, (uint32_t)j, z[j]);
    value("forward-logdet", (uint32_t)r, 0, ld);
    MUST(floe_inverse(&model, z, d, NULL, 0, back, d, scratch, SCRATCH, &ld));
    for (size_t j = 0; j < d; j++) value("x", (uint32_t)r, (uint32_t)j, back[j]);
    value("inverse-logdet", (uint32_t)r, 0, ld);
  }
  MUST(floe_rng_init(&rng, 7));
  for (uint32_t i = 0; i < 3; i++) {
    MUST(floe_sample(&model, &rng, NULL, 0, x, d, scratch, SCRATCH, &lp));
    for (size_t j = 0; j < d; j++) value("sample", i, (uint32_t)j, x[j]);
    value("sample-logp", i, 0, lp);
  }
  /* Bad calls: typed errors, nothing written. */
  memcpy(x, all, 4 * d);
  lp = 12345.0f;
  error("short-input", 0, floe_log_prob(&model, x, d - 1, NULL, 0, scratch, SCRATCH, &lp));
  error("small-scratch", 0, floe_log_prob(&model, x, d, NULL, 0, scratch, 1, &lp));
  error("context", 0, floe_log_prob(&model, x, d, x, 2, scratch, SCRATCH, &lp));
  x[d / 2] = __builtin_nanf("");
  error("nan-input", 0, floe_log_prob(&model, x, d, NULL, 0, scratch, SCRATCH, &lp));
  error("null-input", 0, floe_log_prob(&model, NULL, d, NULL, 0, scratch, SCRATCH, &lp));
  error("null-output", 0, floe_log_prob(&model, all, d, NULL, 0, scratch, SCRATCH, NULL));
  value("untouched", 0, 0, lp);
  error("batch-rows", 0, floe_log_prob_batch(&model, all, n * d - 1, NULL, 0, batch, n, scratch, SCRATCH));
  return 0;
}

/* A stream model over its test series: every window above the threshold,
 * alarms raised and cleared, the top window; then rejected samples. */
static int check_stream(const struct check_blob *file, const struct check_blob *series) {
  FloeModelInfo info;
  FloeScore s;
  FloeAlarm a;
  bool scored;
  float sample[8];
  MUST(floe_model_load(&model, file->data, file->len));
  MUST(floe_model_info(&model, &info));
  MUST(floe_stream_init(&stream, &model));
  size_t c = info.stream_channels;
  if (c == 0 || c > 8 || info.scratch_len > SCRATCH) return 1;
  head("stream", (uint32_t)info.stream_window, (uint32_t)c);
  put_f(info.threshold);
  end_line();
  size_t n = series->len / (4 * c);
  uint32_t windows = 0, raised = 0, top_t = 0;
  float top = -__builtin_inff();
  for (size_t t = 0; t < n; t++) {
    for (size_t j = 0; j < c; j++) sample[j] = f32_at(series, t * c + j);
    MUST(floe_stream_push_seq(&stream, (uint32_t)t, sample, c, scratch, info.scratch_len, &s, &scored));
    if (!scored) continue;
    windows++;
    if (s.nats > top) {
      top = s.nats;
      top_t = (uint32_t)t;
    }
    if (s.verdict == 1) value("above", (uint32_t)t, 0, s.nats);
    MUST(floe_stream_alarm(&stream, &a));
    if (a.valid && (a.raised || a.cleared)) {
      head(a.raised ? "raised" : "cleared", (uint32_t)t, a.above);
      end_line();
      raised += a.raised;
    }
  }
  value("top", top_t, 0, top);
  head("windows", windows, raised);
  end_line();
  for (size_t j = 0; j < c; j++) sample[j] = 0.5f;
  error("stream-seq", 0, floe_stream_push_seq(&stream, 3, sample, c, scratch, SCRATCH, &s, &scored));
  error("stream-width", 0, floe_stream_push(&stream, sample, c + 1, scratch, SCRATCH, &s, &scored));
  sample[0] = __builtin_inff();
  error("stream-inf", 0, floe_stream_push(&stream, sample, c, scratch, SCRATCH, &s, &scored));
  MUST(floe_stream_reset(&stream));
  size_t need;
  MUST(floe_stream_samples_needed(&stream, &need));
  head("needed", (uint32_t)need, 0);
  end_line();
  return 0;
}

/* A trajectory model over real windows: predict from the observed history,
 * sampled positions, the joint density of the true future, the step-1 and
 * step-6 densities, updates along the true track. */
static int check_tracker(const struct check_blob *file, const struct check_blob *windows) {
  FloeModelInfo info;
  float hist[2 * 32], fut[2 * FLOE_TRACKER_HORIZON], xy[2], lp, ess;
  MUST(floe_model_load(&model, file->data, file->len));
  MUST(floe_model_info(&model, &info));
  MUST(floe_tracker_init(&tracker, &model, 2024));
  size_t obs = info.trajectory_observed;
  size_t per = 2 * (obs + FLOE_TRACKER_HORIZON);
  if (obs > 32 || info.trajectory_horizon != FLOE_TRACKER_HORIZON || info.scratch_len > SCRATCH) return 1;
  size_t n = windows->len / (4 * per);
  for (size_t k = 0; k < n; k++) {
    uint32_t i = (uint32_t)k;
    for (size_t j = 0; j < 2 * obs; j++) hist[j] = f32_at(windows, k * per + j);
    for (size_t j = 0; j < 2 * FLOE_TRACKER_HORIZON; j++) fut[j] = f32_at(windows, k * per + 2 * obs + j);
    MUST(floe_tracker_predict(&tracker, hist, obs, scratch, SCRATCH));
    static const size_t ps[3] = {0, FLOE_TRACKER_PARTICLES / 2, FLOE_TRACKER_PARTICLES - 1};
    static const size_t ss[3] = {1, 6, FLOE_TRACKER_HORIZON};
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) {
        MUST(floe_tracker_position(&tracker, ps[a], ss[b], xy));
        head("pos", i, (uint32_t)(ps[a] * 100 + ss[b]));
        put_f(xy[0]);
        put_f(xy[1]);
        end_line();
      }
    MUST(floe_tracker_log_prob_future(&tracker, fut, FLOE_TRACKER_HORIZON, scratch, SCRATCH, &lp));
    value("joint", i, 0, lp);
    MUST(floe_tracker_log_density(&tracker, 1, fut[0], fut[1], scratch, SCRATCH, &lp));
    value("next", i, 0, lp);
    MUST(floe_tracker_log_density(&tracker, 6, fut[10], fut[11], scratch, SCRATCH, &lp));
    value("step6", i, 0, lp);
    for (uint32_t u = 0; u < 4; u++) {
      MUST(floe_tracker_update(&tracker, fut[2 * u], fut[2 * u + 1], 0.05f, &ess));
      value("ess", i, u, ess);
    }
    MUST(floe_tracker_log_density(&tracker, 1, fut[8], fut[9], scratch, SCRATCH, &lp));
    value("after", i, 0, lp);
  }
  error("traj-sigma", 0, floe_tracker_update(&tracker, 0.0f, 0.0f, 0.0f, &ess));
  error("traj-step", 0, floe_tracker_log_density(&tracker, 0, 0.0f, 0.0f, scratch, SCRATCH, &lp));
  error("traj-short", 0, floe_tracker_predict(&tracker, hist, 1, scratch, SCRATCH));
  error("traj-particle", 0, floe_tracker_position(&tracker, FLOE_TRACKER_PARTICLES, 1, xy));
  return 0;
}

/* Files that must be refused, and handles that were never filled. */
static void check_refusals(const struct check_blob *file) {
  static uint32_t copy[1024];
  size_t len = file->len < sizeof copy ? file->len : sizeof copy;
  FloeModelInfo info;
  error("truncated", 0, floe_model_load(&model, file->data, len - 1));
  error("uninitialized", 0, floe_model_info(&model, &info));
  memcpy(copy, file->data, len);
  error("bad-magic", 0, floe_model_load(&model, (const uint8_t *)copy + 1, len - 1));
  ((uint8_t *)copy)[0] ^= 1;
  error("bad-magic", 1, floe_model_load(&model, (const uint8_t *)copy, len));
  error("null-model", 0, floe_model_load(NULL, file->data, file->len));
  error("no-stream", 0, floe_model_load(&model, file->data, file->len));
  error("no-stream", 1, floe_stream_init(&stream, &model));
  error("no-tracker", 0, floe_tracker_init(&tracker, &model, 1));
}

int check_run(const struct check_assets *a) {
  head("abi", floe_abi_version(), 0);
  end_line();
  head("sizes", (uint32_t)sizeof(FloeModel), (uint32_t)sizeof(FloeStream));
  put(" ");
  put_u((uint32_t)sizeof(FloeTracker));
  end_line();
  if (check_model("thyroid-f32", &a->thyroid_f32, &a->thyroid_rows)) return 1;
  if (check_model("thyroid-int8", &a->thyroid_int8, &a->thyroid_rows)) return 1;
  if (check_stream(&a->ucr_model, &a->ucr_series)) return 1;
  if (check_tracker(&a->traj_model, &a->traj_windows)) return 1;
  check_refusals(&a->thyroid_int8);
  put("done");
  end_line();
  return 0;
}
