/* vz_tar: writes a directory tree as a POSIX ustar stream (GNU long-name records for paths over
 * 100 bytes) into a capped buffer, to ship a checkout to a node through one SSH channel into
 * `tar -x`. Regular files, directories and symlinks; modes kept; owners and times normalized. */
#ifndef VZ_TAR_H
#define VZ_TAR_H

#include <stdint.h>

#include "vz_buf.h"
#include "vz_err.h"

/* Appends the tree under dir (not dir itself) to out. Entries named in skip (NULL-terminated list
 * of top-level names, e.g. ".git") are left out. VZ_ETOOBIG when out's cap is reached. */
int vz_tar_dir(vz_buf *out, const char *dir, const char *const *skip, vz_err *e);

/* The pieces, for writers of other streams (the playbook modules' tree transfers): appends the
 * ustar header of one member (type '0' file, '5' dir, '2' symlink to link; size bytes of data
 * to follow; mtime, 0 or less: 0; uid/gid 0), preceded by a GNU long-name ('L') and long-link
 * ('K') record when name or link is 100 bytes or more. Returns 0 or out's failure code. */
int vz_tar_header(vz_buf *out, const char *name, char type, unsigned mode, uint64_t size,
		  int64_t mtime, const char *link);
/* Appends the zeros that complete a member of size bytes of data to whole 512-byte blocks.
 * Returns 0 or out's failure code. */
int vz_tar_pad(vz_buf *out, uint64_t size);

#endif
