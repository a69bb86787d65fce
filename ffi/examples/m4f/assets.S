/* The bundled files the check runs on (firmware/assets/), in flash, 16-byte
 * aligned: models are read in place. */
  .section .rodata.assets, "a"
  .macro asset name, file
  .balign 16
  .global asset_\name
  .global asset_\name\()_end
asset_\name:
  .incbin "\file"
asset_\name\()_end:
  .endm

  asset thyroid_f32, "thyroid.floe"
  asset thyroid_int8, "thyroid-int8.floe"
  asset thyroid_rows, "thyroid.f32"
  asset ucr_model, "ucr-int8.floe"
  asset ucr_series, "ucr-test.f32"
  asset traj_model, "traj-int8.floe"
  asset traj_windows, "traj-windows.f32"
