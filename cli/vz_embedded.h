/* vz_embedded: scheduler + executor threads in one process (`vinz up`, `vinz demo`). */
#ifndef VZ_EMBEDDED_H
#define VZ_EMBEDDED_H

#include "vz_config.h"
#include "vz_err.h"

typedef struct vz_embedded vz_embedded;

/* Starts both on threads; cfg must outlive the pair. */
int vz_embedded_start(vz_embedded **out, const vz_config *cfg, vz_err *e);
/* Non-zero once either loop stopped on an error. */
int vz_embedded_failed(vz_embedded *m);
/* Stops both and frees. Accepts NULL. */
void vz_embedded_stop(vz_embedded *m);

#endif
