/* Bulk so that a test image spans many flash sectors (the copy has many power-cut points);
   each version fills with its own byte, so a half-copied region is visible. */
    .section .rodata.iot_filler, "a"
    .global iot_filler
iot_filler:
    .fill FILL_SIZE, 1, FILL_BYTE
