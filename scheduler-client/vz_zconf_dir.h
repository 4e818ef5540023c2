/* vz_zconf_dir: Zuul configuration read from work trees on disk (for `vinz config` and tests).
 * The scheduler reads commits instead, through vz_spec_read_config. */
#ifndef VZ_ZCONF_DIR_H
#define VZ_ZCONF_DIR_H

#include <jansson.h>

#include "vz_err.h"
#include "vz_zconf.h"

/* The in-repo configuration of a work tree as Zuul picks it: the first of `zuul.yaml`, `zuul.d/`,
 * `.zuul.yaml`, `.zuul.d/` holding anything; a directory gives its `*.yaml` files recursively,
 * sorted by path; empty files are left out. *out = {relative path: content}. VZ_ENOTFOUND when
 * dir is not a directory, VZ_EIO, VZ_ETOOBIG (a file over 4 MiB, over 10,000 files). */
int vz_zconf_read_dir(json_t **out, const char *dir, vz_err *e);

/* The branch checked out in a work tree (from .git/HEAD), or NULL. Caller frees. */
char *vz_zconf_dir_branch(const char *dir);

/* Loads a tenant file:
 *   sources:                          # in tenant order: config projects first
 *     - {project: NAME, branch: B, trusted: BOOL, dir: DIR, include: [TYPES] | exclude: [TYPES]}
 *   cases: [...]                      # optional, returned as JSON in *cases (for tests)
 * DIR is relative to the tenant file; errors name files as DIR/PATH. Returns what vz_zconf_load
 * returns (VZ_EINVAL with *out set for configuration errors), or VZ_EINVAL with *out NULL and a
 * positioned message for a bad tenant file. */
int vz_zconf_load_tenant(vz_zconf **out, json_t **cases, const char *path, vz_err *e);

#endif
