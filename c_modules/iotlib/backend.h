// The hardware layer under the _iotlib module: one implementation per target
// (backend_rp2040.c on the chip, backend_sim.c on unix and qemu). The module's
// Python-visible API is the same on every port; only these functions differ.
#ifndef IOTLIB_BACKEND_H
#define IOTLIB_BACKEND_H

// Short name of the backend in use ("rp2040" or "sim"), reported by build_info().
extern const char iotlib_backend_name[];

#endif
