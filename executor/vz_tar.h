/* vz_tar: writes a directory tree as a POSIX ustar stream (GNU long-name records for paths over
 * 100 bytes) into a capped buffer, to ship a checkout to a node through one SSH channel into
 * `tar -x`. Regular files, directories and symlinks; modes kept; owners and times normalized. */
#ifndef VZ_TAR_H
#define VZ_TAR_H

#include "vz_buf.h"
#include "vz_err.h"

/* Appends the tree under dir (not dir itself) to out. Entries named in skip (NULL-terminated list
 * of top-level names, e.g. ".git") are left out. VZ_ETOOBIG when out's cap is reached. */
int vz_tar_dir(vz_buf *out, const char *dir, const char *const *skip, vz_err *e);

#endif
