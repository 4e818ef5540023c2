/* vz_zuulvars: Zuul's job variables for a build; see vz_zuulvars.h. */
#include "vz_zuulvars.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vz_util.h"

static const char *jstr(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

/* "12,3" -> change "12", patchset "3"; anything else: change as given, patchset "". */
static void split_change(const char *id, json_t *into)
{
	const char *comma = strchr(id, ',');
	if (comma && comma != id && comma[1]) {
		json_object_set_new(into, "change", json_stringn(id, (size_t)(comma - id)));
		json_object_set_new(into, "patchset", json_string(comma + 1));
	} else if (*id) {
		json_object_set_new(into, "change", json_string(id));
		json_object_set_new(into, "patchset", json_string(""));
	}
}

/* {name, short_name, canonical_hostname, canonical_name, src_dir} of a project. */
static json_t *project_json(const char *name, const char *canonical)
{
	if (!*name)
		name = canonical;
	const char *slash = strchr(canonical, '/');
	const char *shortn = strrchr(name, '/');
	char src[1200];
	snprintf(src, sizeof(src), "src/%s", canonical);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "short_name", shortn ? shortn + 1 : name,
			      "canonical_name", canonical, "src_dir", src);
	json_object_set_new(o, "canonical_hostname",
			    slash ? json_stringn(canonical, (size_t)(slash - canonical)) : json_string(""));
	return o;
}

json_t *vz_zuulvars_zuul(const json_t *req, const vz_prepared *p, const vz_zuulvars_dirs *dirs)
{
	json_t *z = json_object();
	json_object_set_new(z, "build", json_string(jstr(req, "build")));
	json_object_set_new(z, "buildset", json_string(*jstr(req, "buildset") ? jstr(req, "buildset") : jstr(req, "build")));
	json_object_set_new(z, "job", json_string(jstr(req, "job")));
	json_object_set_new(z, "pipeline", json_string(jstr(req, "pipeline")));
	json_object_set_new(z, "tenant", json_string(jstr(req, "tenant")));
	json_t *voting = json_object_get(req, "voting");
	json_object_set_new(z, "voting", json_boolean(!json_is_false(voting)));
	json_object_set_new(z, "timeout", json_integer(json_integer_value(json_object_get(req, "timeout"))));
	json_int_t attempt = json_integer_value(json_object_get(req, "attempt"));
	json_object_set_new(z, "attempts", json_integer(attempt ? attempt : 1));
	json_t *maxa = json_object_get(req, "max_attempts");
	json_object_set_new(z, "max_attempts", json_integer(json_is_integer(maxa) ? json_integer_value(maxa) : 3));
	json_object_set_new(z, "ref", json_string(jstr(req, "ref")));
	json_object_set_new(z, "branch", json_string(jstr(req, "branch")));
	json_object_set_new(z, "message", json_string(jstr(req, "message")));
	json_object_set_new(z, "post_review", json_boolean(json_is_true(json_object_get(req, "post_review"))));
	split_change(jstr(req, "change"), z);
	json_object_set_new(z, "child_jobs", json_array());

	/* the build's own project and every prepared one */
	const char *own_name = jstr(req, "project"), *own_canon = *jstr(req, "canonical_project") ? jstr(req, "canonical_project") : own_name;
	json_t *projects = json_object();
	for (size_t i = 0; p && i < p->nprojects; i++) {
		const vz_prepared_project *x = &p->projects[i];
		json_t *o = project_json(x->project ? x->project : "", x->canonical);
		json_object_set_new(o, "required", json_boolean(!x->own));
		json_object_set_new(o, "checkout", json_string(x->branch ? x->branch : x->commit));
		json_object_set_new(o, "commit", json_string(x->commit));
		json_object_set_new(projects, x->canonical, o);
		if (x->own) {
			own_name = x->project ? x->project : own_name;
			own_canon = x->canonical;
		}
	}
	json_object_set_new(z, "project", project_json(own_name, own_canon));
	json_object_set_new(z, "projects", projects);

	/* the items the build is tested with: those ahead, then its own */
	json_t *items = json_array();
	const json_t *ri = json_object_get(req, "items");
	if (json_is_array(ri)) {
		for (size_t i = 0; i < json_array_size(ri); i++) {
			const json_t *o = json_array_get(ri, i);
			const char *pn = jstr(o, "project"), *pc = *jstr(o, "canonical_project") ? jstr(o, "canonical_project") : pn;
			json_t *it = json_pack("{s:o, s:s, s:s}", "project", project_json(pn, pc), "branch", jstr(o, "branch"), "ref",
					       jstr(o, "ref"));
			split_change(jstr(o, "id"), it);
			json_array_append_new(items, it);
		}
	} else if (*jstr(req, "change")) {
		json_t *it = json_pack("{s:o, s:s, s:s}", "project", project_json(own_name, own_canon), "branch", jstr(req, "branch"),
				       "ref", jstr(req, "ref"));
		split_change(jstr(req, "change"), it);
		json_array_append_new(items, it);
	}
	json_object_set_new(z, "items", items);

	const char *work = dirs && dirs->work_root ? dirs->work_root : "";
	char *src = vz_path_join(work, "src"), *res = vz_path_join(work, "results.json"), *inv = vz_path_join(work, "inventory.yaml");
	json_object_set_new(z, "executor",
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "hostname", dirs && dirs->hostname ? dirs->hostname : "",
				      "src_root", src, "log_root", dirs && dirs->log_root ? dirs->log_root : work, "work_root", work,
				      "result_data_file", res, "inventory_file", inv));
	free(src);
	free(res);
	free(inv);
	return z;
}

json_t *vz_zuulvars_nodepool(const json_t *node)
{
	const char *host = jstr(node, "host");
	unsigned char buf[16];
	int v4 = inet_pton(AF_INET, host, buf) == 1, v6 = !v4 && inet_pton(AF_INET6, host, buf) == 1;
	json_t *labels = json_object_get(node, "labels");
	const char *label = json_is_array(labels) && json_array_size(labels) ? json_string_value(json_array_get(labels, 0)) : NULL;
	if (!label)
		label = jstr(node, "label");
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "label", label, "interface_ip", host,
			 "public_ipv4", v4 ? host : "", "private_ipv4", v4 ? host : "", "public_ipv6", v6 ? host : "", "host_id",
			 jstr(node, "name"), "provider", "static", "region", "", "az", "", "cloud", "");
}
