/* vz_map: a string-keyed hash map (open addressing, linear probing) for hot-path look-ups such as
 * builds by uuid. Keys are copied; values are borrowed pointers owned by the caller. */
#ifndef VZ_MAP_H
#define VZ_MAP_H

#include <stddef.h>

typedef struct vz_map vz_map;

vz_map *vz_map_new(void);
/* Frees the map and its key copies, not the values. Accepts NULL. */
void vz_map_free(vz_map *m);
/* Sets key to val (replacing). Returns 0, or VZ_ENOMEM. */
int vz_map_set(vz_map *m, const char *key, void *val);
/* Value for key or NULL. */
void *vz_map_get(const vz_map *m, const char *key);
/* Removes key; returns its value or NULL. */
void *vz_map_del(vz_map *m, const char *key);
size_t vz_map_len(const vz_map *m);
/* Iterates: start with *it = 0; returns 1 and sets key/val while entries remain. The map must
 * not change during iteration. */
int vz_map_next(const vz_map *m, size_t *it, const char **key, void **val);

#endif
