/* vz_inventory: Ansible inventories (INI and YAML) for the playbook engine: hosts, groups with
 * children, group and host variables, and Ansible's host patterns (all, groups, names, wildcards,
 * `:`/`,` union, `:&` intersection, `:!` exclusion). The connection variables (ansible_host,
 * ansible_port, ansible_user, ansible_ssh_private_key_file, ansible_connection) are plain host
 * variables here; the engine reads them. */
#ifndef VZ_INVENTORY_H
#define VZ_INVENTORY_H

#include <stddef.h>

#include <jansson.h>

#include "vz_err.h"

typedef struct vz_inventory vz_inventory;

#define VZ_INVENTORY_MAX_HOSTS 10000
#define VZ_INVENTORY_MAX_GROUPS 10000

/* Reads an inventory file: YAML when it parses as a YAML mapping whose values are group
 * mappings, INI otherwise (as Ansible's yaml and ini plugins decide). Errors (VZ_EINVAL,
 * VZ_ENOTFOUND, VZ_ETOOBIG) read "FILE:LINE: message". *out freed with vz_inventory_free. */
int vz_inventory_load(vz_inventory **out, const char *path, vz_err *e);

/* The same from memory; fname is for messages. */
int vz_inventory_parse(vz_inventory **out, const char *data, size_t len, const char *fname, vz_err *e);

/* An empty inventory (groups all and ungrouped), to which hosts are added. */
vz_inventory *vz_inventory_new(void);

/* Adds a host (or finds it) in group (NULL: ungrouped) and sets vars on it (may be NULL;
 * borrowed, copied shallowly). For callers that build an inventory from nodes. 0 or VZ_EINVAL
 * (bad name)/VZ_ETOOBIG/VZ_ENOMEM. */
int vz_inventory_add_host(vz_inventory *inv, const char *host, const char *group, const json_t *vars, vz_err *e);

void vz_inventory_free(vz_inventory *inv);

/* Number of hosts and the i-th one's name in inventory order. Borrowed from inv. */
size_t vz_inventory_nhosts(const vz_inventory *inv);
const char *vz_inventory_host(const vz_inventory *inv, size_t i);
/* 1 when host is in the inventory. */
int vz_inventory_has_host(const vz_inventory *inv, const char *host);

/* The variables of host: group vars from `all` down to the deepest group (same depth by name,
 * as Ansible orders them), then host vars. New reference; an empty object for an unknown host. */
json_t *vz_inventory_host_vars(const vz_inventory *inv, const char *host);

/* {"all": [...], "ungrouped": [...], "GROUP": [...]}: Ansible's `groups` variable. New reference. */
json_t *vz_inventory_groups(const vz_inventory *inv);

/* Sorted names of the groups host belongs to, directly or through children, without all and
 * ungrouped: Ansible's `group_names`. New reference. */
json_t *vz_inventory_group_names(const vz_inventory *inv, const char *host);

/* Evaluates an Ansible host pattern. *out is a new JSON array of host names without duplicates,
 * in the order Ansible gives them. `localhost` (or 127.0.0.1) not in the inventory matches the
 * implicit localhost, which is returned as "localhost"; *implicit_localhost (may be NULL) is then
 * set. A pattern matching nothing is not an error (the array is empty). VZ_EINVAL for a malformed
 * pattern. */
int vz_inventory_match(json_t **out, const vz_inventory *inv, const char *pattern, int *implicit_localhost,
		       vz_err *e);

#endif
