/* test_proto: the wire protocol (common/vz_proto.c): the message table, decode/encode of every
 * type, every way a frame can be refused, ids, and the ZeroMQ transport over inproc and tcp
 * loopback (refused frames leave the socket usable; multipart and oversized frames). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "vz_log.h"
#include "vz_proto.h"
#include "vz_util.h"


/* One minimal valid body per type: exactly the required fields, so removing any key must be
 * refused. */
static const struct {
	vz_msg_type type;
	const char *name;
	const char *body;
	size_t nreq;
} valid[] = {
	{ VZ_MSG_HELLO, "hello", "{\"executor\":\"ex1\",\"instance\":\"a1b2c3\",\"version\":\"0.1.0\","
	  "\"capacity\":4,\"labels\":[\"linux\"],\"running\":[]}", 6 },
	{ VZ_MSG_WELCOME, "welcome", "{\"scheduler_instance\":\"s1\",\"lease_ms\":30000,\"heartbeat_ms\":5000}", 3 },
	{ VZ_MSG_REFUSE, "refuse", "{\"code\":\"version\",\"message\":\"peer speaks 2\"}", 2 },
	{ VZ_MSG_READY, "ready", "{\"free\":4,\"seen\":0}", 2 },
	{ VZ_MSG_BUILD, "build", "{\"build\":\"b1\",\"attempt\":1,\"job\":\"unit\",\"project\":\"org/p\","
	  "\"node\":{\"host\":\"127.0.0.1\"},\"commands\":[\"true\"],\"timeout\":600}", 7 },
	{ VZ_MSG_STARTED, "started", "{\"build\":\"b1\",\"attempt\":1,\"started_at\":1700000000000}", 3 },
	{ VZ_MSG_LOG, "log", "{\"build\":\"b1\",\"offset\":0,\"data\":\"hello\\n\"}", 3 },
	{ VZ_MSG_RESULT, "result", "{\"build\":\"b1\",\"attempt\":1,\"result\":\"SUCCESS\"}", 3 },
	{ VZ_MSG_ACK, "ack", "{\"build\":\"b1\",\"attempt\":1}", 2 },
	{ VZ_MSG_HEARTBEAT, "heartbeat", "{}", 0 },
	{ VZ_MSG_CANCEL, "cancel", "{\"build\":\"b1\"}", 1 },
	{ VZ_MSG_ERROR, "error", "{\"code\":\"proto\",\"message\":\"bad\"}", 2 },
	{ VZ_MSG_LOG_RESEND, "log_resend", "{\"build\":\"b1\",\"offset\":10}", 2 },
	{ VZ_MSG_REQUEST, "request", "{\"op\":\"status\"}", 1 },
	{ VZ_MSG_REPLY, "reply", "{\"ok\":true}", 1 },
	{ VZ_MSG_PAUSED, "paused", "{\"build\":\"b1\",\"attempt\":1}", 2 },
	{ VZ_MSG_RESUME, "resume", "{\"build\":\"b1\"}", 1 },
	{ VZ_MSG_EARLY_FAILURE, "early_failure", "{\"build\":\"b1\",\"attempt\":1}", 2 },
	{ VZ_MSG_LOG_FILE, "log_file",
	  "{\"build\":\"b1\",\"attempt\":1,\"path\":\"a/b.txt\",\"offset\":0,\"size\":3,\"data\":\"YWJj\"}", 6 },
	{ VZ_MSG_MERGE, "merge", "{\"merge\":\"m1\"}", 1 },
	{ VZ_MSG_MERGED, "merged", "{\"merge\":\"m1\",\"ok\":true}", 2 },
	{ VZ_MSG_MERGE_ACK, "merge_ack", "{\"merge\":\"m1\"}", 1 },
};
#define NVALID (sizeof(valid) / sizeof(valid[0]))

static json_t *parse(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	assert_non_null(j);
	return j;
}

/* A frame with v/type/id in front of body's fields, built without our encoder. */
static char *raw_frame(int v, const char *type, const char *id, json_t *body)
{
	json_t *o = json_object();
	json_object_set_new(o, "v", json_integer(v));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "id", json_string(id));
	json_object_update(o, body);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

static int decode_str(const char *s, vz_msg **m, char *ref, vz_err *e)
{
	vz_err_clear(e);
	return vz_msg_decode(m, s, strlen(s), ref, e);
}

static void test_type_names(void **state)
{
	(void)state;
	assert_int_equal(NVALID, VZ_MSG__MAX - 1);
	for (size_t i = 0; i < NVALID; i++) {
		assert_string_equal(vz_msg_type_name(valid[i].type), valid[i].name);
		assert_int_equal(vz_msg_type_from_name(valid[i].name), valid[i].type);
	}
	assert_null(vz_msg_type_name(0));
	assert_null(vz_msg_type_name(VZ_MSG__MAX));
	assert_null(vz_msg_type_name(-3));
	assert_int_equal(vz_msg_type_from_name("nope"), 0);
	assert_int_equal(vz_msg_type_from_name(NULL), 0);
	assert_int_equal(vz_msg_type_from_name("HELLO"), 0);
}

static void test_roundtrip_every_type(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVALID; i++) {
		json_t *body = parse(valid[i].body);
		vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
		vz_err e = { 0, "" };
		char ref[VZ_PROTO_MAX_ID + 1];
		vz_msg *m = NULL;

		assert_int_equal(vz_msg_encode(&b, valid[i].type, "id-42", body, &e), 0);
		assert_int_equal(vz_msg_decode(&m, b.ptr, b.len, ref, &e), 0);
		assert_non_null(m);
		assert_int_equal(m->type, valid[i].type);
		assert_string_equal(m->id, "id-42");
		assert_string_equal(ref, "id-42");
		assert_int_equal(vz_msg_int(m, "v", 0), 1);
		assert_string_equal(vz_msg_str(m, "type"), valid[i].name);
		/* every body field survives unchanged */
		const char *k;
		json_t *v;
		json_object_foreach(body, k, v)
			assert_true(json_equal(v, json_object_get(m->body, k)));
		assert_int_equal(json_object_size(m->body), json_object_size(body) + 3);
		/* compact encoding: no spaces outside strings in these bodies */
		assert_null(strstr(b.ptr, ": "));
		assert_true(vz_startswith(b.ptr, "{\"v\":1,\"type\":\""));
		vz_msg_free(m);
		vz_buf_free(&b);
		json_decref(body);
	}
}

static void test_missing_required_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVALID; i++) {
		json_t *body = parse(valid[i].body);
		size_t n = 0;
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(body, tmp, k, v) {
			json_t *less = json_deep_copy(body);
			json_object_del(less, k);
			char *s = raw_frame(1, valid[i].name, "m-1", less);
			vz_msg *m = (vz_msg *)1;
			char ref[VZ_PROTO_MAX_ID + 1];
			vz_err e;
			char want[80];
			assert_int_equal(decode_str(s, &m, ref, &e), VZ_EPROTO);
			assert_null(m);
			assert_int_equal(e.code, VZ_EPROTO);
			snprintf(want, sizeof(want), "\"%s\"", k);
			assert_non_null(strstr(e.msg, want));
			assert_non_null(strstr(e.msg, valid[i].name));
			assert_string_equal(ref, "m-1");
			/* the encoder refuses the same body */
			vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
			vz_err_clear(&e);
			assert_int_equal(vz_msg_encode(&b, valid[i].type, NULL, less, &e), VZ_EPROTO);
			assert_non_null(strstr(e.msg, want));
			assert_int_equal(b.len, 0);
			vz_buf_free(&b);
			free(s);
			json_decref(less);
			n++;
		}
		assert_int_equal(n, valid[i].nreq);
		json_decref(body);
	}
}

/* A value of another JSON type than v. */
static json_t *wrong_value(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING: return json_integer(5);
	case JSON_INTEGER: return json_string("5");
	case JSON_ARRAY: return json_object();
	case JSON_OBJECT: return json_array();
	default: return json_integer(1);
	}
}

static void test_wrong_field_type(void **state)
{
	(void)state;
	for (size_t i = 0; i < NVALID; i++) {
		json_t *body = parse(valid[i].body);
		const char *k;
		json_t *v;
		json_object_foreach(body, k, v) {
			json_t *bad = json_deep_copy(body);
			json_object_set_new(bad, k, wrong_value(v));
			char *s = raw_frame(1, valid[i].name, "m-2", bad);
			vz_msg *m = NULL;
			vz_err e;
			char want[80];
			assert_int_equal(decode_str(s, &m, NULL, &e), VZ_EPROTO);
			snprintf(want, sizeof(want), "\"%s\"", k);
			assert_non_null(strstr(e.msg, want));
			assert_null(strstr(e.msg, "below 0"));
			/* a real where an integer belongs is refused too */
			if (json_is_integer(v)) {
				json_object_set_new(bad, k, json_real(1.0));
				free(s);
				s = raw_frame(1, valid[i].name, "m-2", bad);
				assert_int_equal(decode_str(s, &m, NULL, &e), VZ_EPROTO);
				assert_non_null(strstr(e.msg, want));
			}
			free(s);
			json_decref(bad);
		}
		json_decref(body);
	}
}

static const struct {
	const char *what;
	const char *frame;
	int rc;
	const char *msg_has; /* substring of the error message, or NULL */
	const char *ref;     /* expected ref_id */
} bad_frames[] = {
	{ "negative attempt", "{\"v\":1,\"type\":\"ack\",\"id\":\"a\",\"build\":\"b\",\"attempt\":-1}", VZ_EPROTO, "\"attempt\"", "a" },
	{ "negative offset", "{\"v\":1,\"type\":\"log\",\"id\":\"a\",\"build\":\"b\",\"offset\":-5,\"data\":\"\"}", VZ_EPROTO, "\"offset\"", "a" },
	{ "negative attempt says so", "{\"v\":1,\"type\":\"ack\",\"id\":\"a\",\"build\":\"b\",\"attempt\":-1}", VZ_EPROTO, "below 0", "a" },
	{ "negative credit", "{\"v\":1,\"type\":\"ready\",\"id\":\"a\",\"free\":-1,\"seen\":0}", VZ_EPROTO, "\"free\"", "a" },
	{ "negative seen", "{\"v\":1,\"type\":\"ready\",\"id\":\"a\",\"free\":1,\"seen\":-9}", VZ_EPROTO, "\"seen\"", "a" },
	{ "bad optional type", "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"result\":\"X\",\"log_size\":\"9\"}", VZ_EPROTO, "\"log_size\"", "a" },
	{ "welcome features not a list", "{\"v\":1,\"type\":\"welcome\",\"id\":\"a\",\"scheduler_instance\":\"s\",\"lease_ms\":1,\"heartbeat_ms\":1,\"features\":\"pause\"}", VZ_EPROTO, "\"features\"", "a" },
	{ "result data not an object", "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"result\":\"X\",\"data\":[1]}", VZ_EPROTO, "\"data\"", "a" },
	{ "result artifacts not a list", "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"result\":\"X\",\"artifacts\":{}}", VZ_EPROTO, "\"artifacts\"", "a" },
	{ "result warnings not a list", "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"result\":\"X\",\"warnings\":\"w\"}", VZ_EPROTO, "\"warnings\"", "a" },
	{ "result log_url not a string", "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"result\":\"X\",\"log_url\":1}", VZ_EPROTO, "\"log_url\"", "a" },
	{ "result child_jobs not a list", "{\"v\":1,\"type\":\"result\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"result\":\"X\",\"child_jobs\":\"j\"}", VZ_EPROTO, "\"child_jobs\"", "a" },
	{ "build parent_data not an object", "{\"v\":1,\"type\":\"build\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"job\":\"j\",\"project\":\"p\",\"node\":{},\"commands\":[],\"timeout\":1,\"parent_data\":\"x\"}", VZ_EPROTO, "\"parent_data\"", "a" },
	{ "build failure_output not a list", "{\"v\":1,\"type\":\"build\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"job\":\"j\",\"project\":\"p\",\"node\":{},\"commands\":[],\"timeout\":1,\"failure_output\":\"x\"}", VZ_EPROTO, "\"failure_output\"", "a" },
	{ "build negative post_timeout", "{\"v\":1,\"type\":\"build\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"job\":\"j\",\"project\":\"p\",\"node\":{},\"commands\":[],\"timeout\":1,\"post_timeout\":-1}", VZ_EPROTO, "\"post_timeout\"", "a" },
	{ "paused data not an object", "{\"v\":1,\"type\":\"paused\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"data\":3}", VZ_EPROTO, "\"data\"", "a" },
	{ "resume without build", "{\"v\":1,\"type\":\"resume\",\"id\":\"a\"}", VZ_EPROTO, "\"build\"", "a" },
	{ "early_failure message not a string", "{\"v\":1,\"type\":\"early_failure\",\"id\":\"a\",\"build\":\"b\",\"attempt\":1,\"message\":[]}", VZ_EPROTO, "\"message\"", "a" },
	{ "merge items not a list", "{\"v\":1,\"type\":\"merge\",\"id\":\"a\",\"merge\":\"m\",\"items\":{}}", VZ_EPROTO, "\"items\"", "a" },
	{ "merge repo_state not an object", "{\"v\":1,\"type\":\"merge\",\"id\":\"a\",\"merge\":\"m\",\"repo_state\":[]}", VZ_EPROTO, "\"repo_state\"", "a" },
	{ "merge config not a bool", "{\"v\":1,\"type\":\"merge\",\"id\":\"a\",\"merge\":\"m\",\"config\":1}", VZ_EPROTO, "\"config\"", "a" },
	{ "merge projects not a list", "{\"v\":1,\"type\":\"merge\",\"id\":\"a\",\"merge\":\"m\",\"projects\":\"p\"}", VZ_EPROTO, "\"projects\"", "a" },
	{ "merged without ok", "{\"v\":1,\"type\":\"merged\",\"id\":\"a\",\"merge\":\"m\"}", VZ_EPROTO, "\"ok\"", "a" },
	{ "merged ok not a bool", "{\"v\":1,\"type\":\"merged\",\"id\":\"a\",\"merge\":\"m\",\"ok\":\"yes\"}", VZ_EPROTO, "\"ok\"", "a" },
	{ "merged config not an object", "{\"v\":1,\"type\":\"merged\",\"id\":\"a\",\"merge\":\"m\",\"ok\":true,\"config\":[]}", VZ_EPROTO, "\"config\"", "a" },
	{ "merged heads not an object", "{\"v\":1,\"type\":\"merged\",\"id\":\"a\",\"merge\":\"m\",\"ok\":true,\"heads\":\"x\"}", VZ_EPROTO, "\"heads\"", "a" },
	{ "merge_ack without merge", "{\"v\":1,\"type\":\"merge_ack\",\"id\":\"a\"}", VZ_EPROTO, "\"merge\"", "a" },
	{ "version 2", "{\"v\":2,\"type\":\"hello\",\"id\":\"h1\"}", VZ_EVERSION, "version 2", "h1" },
	{ "version 0", "{\"v\":0,\"type\":\"ready\",\"id\":\"h1\",\"free\":1,\"seen\":1}", VZ_EVERSION, "version 1", "h1" },
	{ "version 2 unknown type", "{\"v\":2,\"type\":\"frobnicate\",\"id\":\"h2\"}", VZ_EVERSION, NULL, "h2" },
	{ "version as string", "{\"v\":\"1\",\"type\":\"heartbeat\",\"id\":\"h\"}", VZ_EPROTO, "\"v\"", "h" },
	{ "version as real", "{\"v\":1.0,\"type\":\"heartbeat\",\"id\":\"h\"}", VZ_EPROTO, "\"v\"", "h" },
	{ "no version", "{\"type\":\"heartbeat\",\"id\":\"h\"}", VZ_EPROTO, "\"v\"", "h" },
	{ "unknown type", "{\"v\":1,\"type\":\"frobnicate\",\"id\":\"u1\"}", VZ_EPROTO, "frobnicate", "u1" },
	{ "type not a string", "{\"v\":1,\"type\":3,\"id\":\"u1\"}", VZ_EPROTO, "\"type\"", "u1" },
	{ "no type", "{\"v\":1,\"id\":\"u1\"}", VZ_EPROTO, "\"type\"", "u1" },
	{ "no id", "{\"v\":1,\"type\":\"heartbeat\"}", VZ_EPROTO, "\"id\"", "" },
	{ "empty id", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"\"}", VZ_EPROTO, "\"id\"", "" },
	{ "id not a string", "{\"v\":1,\"type\":\"heartbeat\",\"id\":7}", VZ_EPROTO, "\"id\"", "" },
	{ "id with a space", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"a b\"}", VZ_EPROTO, "\"id\"", "" },
	{ "id with a newline", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"a\\nb\"}", VZ_EPROTO, "\"id\"", "" },
	{ "id 65 bytes", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"01234567890123456789012345678901234567890123456789012345678901234\"}", VZ_EPROTO, "\"id\"", "" },
	{ "array", "[1,2]", VZ_EPROTO, "array", "" },
	{ "string", "\"hello\"", VZ_EPROTO, NULL, "" },
	{ "number", "42", VZ_EPROTO, NULL, "" },
	{ "null", "null", VZ_EPROTO, NULL, "" },
	{ "empty", "", VZ_EPROTO, "empty", "" },
	{ "whitespace", "   ", VZ_EPROTO, "JSON", "" },
	{ "invalid json", "{v:1}", VZ_EPROTO, "JSON", "" },
	{ "control bytes quoted safely", "\x01\x1b[31m\n", VZ_EPROTO, "JSON", "" },
	{ "trailing garbage", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"t\"}xyz", VZ_EPROTO, "JSON", "" },
	{ "two objects", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"t\"}{}", VZ_EPROTO, "JSON", "" },
	{ "truncated", "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"t\"", VZ_EPROTO, "JSON", "" },
	{ "duplicate key", "{\"v\":1,\"type\":\"ack\",\"id\":\"d\",\"build\":\"b\",\"attempt\":1,\"attempt\":2}", VZ_EPROTO, "duplicate", "" },
	{ "duplicate v", "{\"v\":1,\"v\":2,\"type\":\"heartbeat\",\"id\":\"d\"}", VZ_EPROTO, "duplicate", "" },
	{ "NUL escape in string", "{\"v\":1,\"type\":\"cancel\",\"id\":\"n\",\"build\":\"a\\u0000b\"}", VZ_EPROTO, "JSON", "" },
	{ "invalid UTF-8", "{\"v\":1,\"type\":\"cancel\",\"id\":\"n\",\"build\":\"\xff\xfe\"}", VZ_EPROTO, "JSON", "" },
	{ "integer overflow", "{\"v\":1,\"type\":\"ack\",\"id\":\"n\",\"build\":\"b\",\"attempt\":99999999999999999999999}", VZ_EPROTO, "JSON", "" },
};

static void test_bad_frames(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_frames) / sizeof(bad_frames[0]); i++) {
		vz_msg *m = NULL;
		vz_err e;
		char ref[VZ_PROTO_MAX_ID + 1];
		int rc = decode_str(bad_frames[i].frame, &m, ref, &e);
		if (rc != bad_frames[i].rc || (bad_frames[i].msg_has && !strstr(e.msg, bad_frames[i].msg_has)) ||
		    strcmp(ref, bad_frames[i].ref) != 0)
			fail_msg("%s: rc %d (%s) ref \"%s\"", bad_frames[i].what, rc, e.msg, ref);
		assert_null(m);
		assert_int_equal(e.code, rc);
		/* messages go to logs: nothing unprintable from the peer gets through */
		for (const char *c = e.msg; *c; c++)
			assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c != 0x7f);
	}
}

static void test_version_message_names_both(void **state)
{
	(void)state;
	vz_msg *m = NULL;
	vz_err e;
	assert_int_equal(decode_str("{\"v\":2,\"type\":\"hello\",\"id\":\"x\"}", &m, NULL, &e), VZ_EVERSION);
	assert_non_null(strstr(e.msg, "version 2"));
	assert_non_null(strstr(e.msg, "version 1"));
}

static void test_raw_nul_byte(void **state)
{
	(void)state;
	static const char f[] = "{\"v\":1,\"type\":\"cancel\",\"id\":\"n\",\"build\":\"a\0b\"}";
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	assert_int_equal(vz_msg_decode(&m, f, sizeof(f) - 1, NULL, &e), VZ_EPROTO);
	assert_null(m);
}

static void test_truncated_everywhere(void **state)
{
	(void)state;
	json_t *body = parse(valid[4].body); /* build */
	vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	vz_err e = { 0, "" };
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_BUILD, "tr", body, &e), 0);
	for (size_t n = 0; n < b.len; n++) {
		vz_msg *m = NULL;
		vz_err_clear(&e);
		assert_int_equal(vz_msg_decode(&m, b.ptr, n, NULL, &e), VZ_EPROTO);
		assert_null(m);
	}
	vz_buf_free(&b);
	json_decref(body);
}

static void test_id_lengths(void **state)
{
	(void)state;
	char id[VZ_PROTO_MAX_ID + 2];
	memset(id, 'a', sizeof(id));
	id[VZ_PROTO_MAX_ID] = '\0';
	vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	vz_err e = { 0, "" };
	vz_msg *m = NULL;
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_HEARTBEAT, id, NULL, &e), 0);
	assert_int_equal(vz_msg_decode(&m, b.ptr, b.len, NULL, &e), 0);
	assert_string_equal(m->id, id);
	vz_msg_free(m);
	id[VZ_PROTO_MAX_ID] = 'a';
	id[VZ_PROTO_MAX_ID + 1] = '\0';
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_HEARTBEAT, id, NULL, &e), VZ_EINVAL);
	vz_err_clear(&e);
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_HEARTBEAT, "", NULL, &e), VZ_EINVAL);
	/* quote and backslash are printable, so allowed, and escaped on the wire */
	vz_err_clear(&e);
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_HEARTBEAT, "a\"b\\c", NULL, &e), 0);
	assert_int_equal(vz_msg_decode(&m, b.ptr, b.len, NULL, &e), 0);
	assert_string_equal(m->id, "a\"b\\c");
	vz_msg_free(m);
	vz_buf_free(&b);
}

static void test_oversized(void **state)
{
	(void)state;
	/* a valid object of exactly the cap decodes; one byte more is ETOOBIG without parsing */
	size_t n = VZ_PROTO_MAX_FRAME;
	char *f = malloc(n + 2);
	assert_non_null(f);
	static const char head[] = "{\"v\":1,\"type\":\"log\",\"id\":\"big\",\"build\":\"b\",\"offset\":0,\"data\":\"";
	memcpy(f, head, sizeof(head) - 1);
	memset(f + sizeof(head) - 1, 'x', n - (sizeof(head) - 1) - 2);
	memcpy(f + n - 2, "\"}", 2);
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	assert_int_equal(vz_msg_decode(&m, f, n, NULL, &e), 0);
	assert_int_equal(m->type, VZ_MSG_LOG);
	/* and it re-encodes within the cap */
	vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_LOG, "big", m->body, &e), 0);
	assert_int_equal(b.len, n);
	vz_msg_free(m);

	memset(f + sizeof(head) - 1, 'x', n + 1 - (sizeof(head) - 1) - 2);
	memcpy(f + n - 1, "\"}", 2);
	assert_int_equal(vz_msg_decode(&m, f, n + 1, NULL, &e), VZ_ETOOBIG);
	assert_null(m);
	assert_non_null(strstr(e.msg, "1048577"));

	/* the encoder refuses a body that would not fit */
	json_t *body = json_pack("{s:s, s:i, s:s#}", "build", "b", "offset", 0, "data", f, (size_t)n);
	assert_non_null(body);
	vz_err_clear(&e);
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_LOG, NULL, body, &e), VZ_ETOOBIG);
	assert_int_equal(b.len, 0);
	json_decref(body);
	vz_buf_free(&b);
	free(f);
}

static void test_deep_nesting(void **state)
{
	(void)state;
	size_t depth = 100000;
	static const char head[] = "{\"v\":1,\"type\":\"request\",\"id\":\"deep\",\"op\":\"x\",\"args\":{\"a\":";
	char *f = malloc(sizeof(head) + 2 * depth + 4);
	assert_non_null(f);
	size_t o = 0;
	memcpy(f, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	memset(f + o, '[', depth);
	o += depth;
	memset(f + o, ']', depth);
	o += depth;
	memcpy(f + o, "}}", 2);
	o += 2;
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	assert_int_equal(vz_msg_decode(&m, f, o, NULL, &e), VZ_EPROTO);
	assert_non_null(strstr(e.msg, "depth"));
	/* moderate nesting is fine */
	o = sizeof(head) - 1;
	memset(f + o, '[', 100);
	o += 100;
	memset(f + o, ']', 100);
	o += 100;
	memcpy(f + o, "}}", 2);
	o += 2;
	assert_int_equal(vz_msg_decode(&m, f, o, NULL, &e), 0);
	vz_msg_free(m);
	free(f);
}

static void test_encode_rules(void **state)
{
	(void)state;
	vz_buf b = VZ_BUF_INIT(VZ_PROTO_MAX_FRAME);
	vz_err e = { 0, "" };
	vz_msg *m = NULL;
	/* the body's own v/type/id never reach the wire and the body is not modified */
	json_t *body = parse("{\"v\":7,\"type\":\"hello\",\"id\":\"mine\",\"build\":\"b\"}");
	char *before = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_CANCEL, NULL, body, &e), 0);
	char *after = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(vz_msg_decode(&m, b.ptr, b.len, NULL, &e), 0);
	assert_int_equal(m->type, VZ_MSG_CANCEL);
	assert_int_equal(vz_msg_int(m, "v", 0), 1);
	assert_string_not_equal(m->id, "mine");
	assert_int_equal(strlen(m->id) >= 10, 1);
	assert_string_equal(vz_msg_str(m, "build"), "b");
	assert_string_equal(vz_msg_str(m, "nothere"), "");
	assert_int_equal(vz_msg_int(m, "nothere", -7), -7);
	assert_int_equal(vz_msg_int(m, "build", -8), -8);
	vz_msg_free(m);
	json_decref(body);
	/* NULL body for a type without required fields; not for others */
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_HEARTBEAT, NULL, NULL, &e), 0);
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_ACK, NULL, NULL, &e), VZ_EPROTO);
	vz_err_clear(&e);
	/* unknown type, non-object body */
	assert_int_equal(vz_msg_encode(&b, (vz_msg_type)99, NULL, NULL, &e), VZ_EINVAL);
	vz_err_clear(&e);
	json_t *arr = json_array();
	assert_int_equal(vz_msg_encode(&b, VZ_MSG_HEARTBEAT, NULL, arr, &e), VZ_EINVAL);
	json_decref(arr);
	vz_buf_free(&b);
}

struct idgen {
	char ids[2000][VZ_PROTO_MAX_ID + 1];
};

static void *gen_ids(void *arg)
{
	struct idgen *g = arg;
	for (size_t i = 0; i < 2000; i++)
		vz_msg_next_id(g->ids[i]);
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_next_id(void **state)
{
	(void)state;
	struct idgen *g = calloc(2, sizeof(*g));
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, gen_ids, &g[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	char (*all)[VZ_PROTO_MAX_ID + 1] = (void *)g;
	qsort(all, 4000, sizeof(all[0]), cmp_id);
	for (size_t i = 0; i < 4000; i++) {
		assert_true(strlen(all[i]) >= 10 && strlen(all[i]) <= VZ_PROTO_MAX_ID);
		assert_int_equal(all[i][8], '-');
		assert_int_equal(strspn(all[i], "0123456789abcdef-"), strlen(all[i]));
		if (i)
			assert_string_not_equal(all[i - 1], all[i]);
	}
	free(g);
}

/* ---- sockets ------------------------------------------------------------------------------- */

struct pair {
	void *ctx, *router, *dealer;
	char endpoint[256];
};

static void pair_open(struct pair *p, const char *bind_ep, const char *ident)
{
	vz_err e = { 0, "" };
	int tmo = 5000;
	size_t n = sizeof(p->endpoint);
	p->ctx = zmq_ctx_new();
	assert_non_null(p->ctx);
	p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
	p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
	assert_int_equal(vz_proto_sockopts(p->router, &e), 0);
	assert_int_equal(vz_proto_sockopts(p->dealer, &e), 0);
	zmq_setsockopt(p->router, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(p->dealer, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, ident, strlen(ident));
	assert_int_equal(zmq_bind(p->router, bind_ep), 0);
	assert_int_equal(zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, p->endpoint, &n), 0);
	assert_int_equal(zmq_connect(p->dealer, p->endpoint), 0);
}

static void pair_close(struct pair *p)
{
	zmq_close(p->dealer);
	zmq_close(p->router);
	assert_int_equal(zmq_ctx_term(p->ctx), 0);
}

static int recv_router(struct pair *p, vz_msg **m, char *peer, size_t *peer_len, char *ref, vz_err *e)
{
	vz_err_clear(e);
	return vz_proto_recv(p->router, 1, peer, peer_len, m, ref, 0, e);
}

static void garbage_then_valid(const char *bind_ep)
{
	struct pair p;
	char peer[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1];
	size_t peer_len = 0;
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	pair_open(&p, bind_ep, "ex1/abc123");

	/* nothing waiting */
	assert_int_equal(vz_proto_recv(p.router, 1, peer, &peer_len, &m, ref, ZMQ_DONTWAIT, &e), VZ_ETIMEOUT);
	vz_err_clear(&e);

	assert_int_equal(zmq_send(p.dealer, "garbage{", 8, 0), 8);
	json_t *hello = parse(valid[0].body);
	assert_int_equal(vz_proto_send(p.dealer, NULL, 0, VZ_MSG_HELLO, "h-1", hello, &e), 0);

	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), VZ_EPROTO);
	assert_null(m);
	assert_int_equal(peer_len, strlen("ex1/abc123"));
	assert_memory_equal(peer, "ex1/abc123", peer_len);
	/* answer it: the dealer gets error{code:"malformed"} (no ref: garbage has no id) */
	vz_err why = e;
	vz_err_clear(&e);
	assert_int_equal(vz_proto_send_refusal(p.router, peer, peer_len, ref, &why, &e), 0);

	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), 0);
	assert_int_equal(m->type, VZ_MSG_HELLO);
	assert_string_equal(m->id, "h-1");
	assert_string_equal(vz_msg_str(m, "executor"), "ex1");
	vz_msg_free(m);

	assert_int_equal(vz_proto_recv(p.dealer, 0, NULL, NULL, &m, ref, 0, &e), 0);
	assert_int_equal(m->type, VZ_MSG_ERROR);
	assert_string_equal(vz_msg_str(m, "code"), "malformed");
	assert_non_null(strstr(vz_msg_str(m, "message"), "JSON"));
	assert_string_equal(vz_msg_str(m, "ref"), "");
	vz_msg_free(m);

	/* and the router can still talk back */
	json_t *w = parse(valid[1].body);
	assert_int_equal(vz_proto_send(p.router, "ex1/abc123", 10, VZ_MSG_WELCOME, NULL, w, &e), 0);
	assert_int_equal(vz_proto_recv(p.dealer, 0, NULL, NULL, &m, ref, 0, &e), 0);
	assert_int_equal(m->type, VZ_MSG_WELCOME);
	vz_msg_free(m);

	json_decref(w);
	json_decref(hello);
	pair_close(&p);
}

static void test_sock_garbage_inproc(void **state)
{
	(void)state;
	garbage_then_valid("inproc://proto-garbage");
}

static void test_sock_garbage_tcp(void **state)
{
	(void)state;
	garbage_then_valid("tcp://127.0.0.1:*");
}

/* Paths of log directory files: what both sides accept, and what would leave the build's log
 * directory or overwrite its streamed log. */
static void test_log_paths(void **state)
{
	(void)state;
	static const char *const good[] = { "a", "job-output.json", "logs/x.txt", "a/b/c/d", ".hidden", "a..b", "x/job-output.txt" };
	static const char *const bad[] = { "", "/etc/passwd", "../x", "a/../b", "a/./b", ".", "..", "a//b", "a/", "a\\b",
					   "job-output.txt", "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!vz_proto_log_path_ok(good[i]))
			fail_msg("'%s' should be accepted", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vz_proto_log_path_ok(bad[i]))
			fail_msg("'%s' should be refused", bad[i]);
	char longp[1100];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	assert_false(vz_proto_log_path_ok(longp));
	assert_false(vz_proto_log_path_ok(NULL));
}

static void test_sock_multipart(void **state)
{
	(void)state;
	struct pair p;
	char peer[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1];
	size_t peer_len = 0;
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	static const char f[] = "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"mp-1\"}";
	pair_open(&p, "inproc://proto-multipart", "ex2/1");

	/* [delimiter][frame][extra][extra]: refused as a whole, ref from the first frame */
	assert_int_equal(zmq_send(p.dealer, "", 0, ZMQ_SNDMORE), 0);
	assert_int_equal(zmq_send(p.dealer, f, sizeof(f) - 1, ZMQ_SNDMORE), (int)sizeof(f) - 1);
	assert_int_equal(zmq_send(p.dealer, "x", 1, ZMQ_SNDMORE), 1);
	assert_int_equal(zmq_send(p.dealer, "y", 1, 0), 1);
	/* [frame][extra] without delimiter */
	assert_int_equal(zmq_send(p.dealer, f, sizeof(f) - 1, ZMQ_SNDMORE), (int)sizeof(f) - 1);
	assert_int_equal(zmq_send(p.dealer, "z", 1, 0), 1);
	/* [delimiter] alone: an empty frame */
	assert_int_equal(zmq_send(p.dealer, "", 0, 0), 0);
	/* a valid frame without delimiter (a plain DEALER peer) */
	static const char g[] = "{\"v\":1,\"type\":\"cancel\",\"id\":\"mp-2\",\"build\":\"b9\"}";
	assert_int_equal(zmq_send(p.dealer, g, sizeof(g) - 1, 0), (int)sizeof(g) - 1);

	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), VZ_EPROTO);
	assert_non_null(strstr(e.msg, "3 frames"));
	assert_string_equal(ref, "mp-1");
	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), VZ_EPROTO);
	assert_non_null(strstr(e.msg, "2 frames"));
	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), VZ_EPROTO);
	assert_non_null(strstr(e.msg, "empty"));
	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), 0);
	assert_string_equal(m->id, "mp-2");
	assert_string_equal(vz_msg_str(m, "build"), "b9");
	vz_msg_free(m);
	/* nothing left over */
	vz_err_clear(&e);
	assert_int_equal(vz_proto_recv(p.router, 1, peer, &peer_len, &m, ref, ZMQ_DONTWAIT, &e), VZ_ETIMEOUT);
	pair_close(&p);
}

static void test_sock_oversized_tcp(void **state)
{
	(void)state;
	struct pair p;
	char peer[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1];
	size_t peer_len = 0;
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	pair_open(&p, "tcp://127.0.0.1:*", "ex3/big");

	size_t n = VZ_PROTO_MAX_FRAME + 1;
	char *f = malloc(n);
	memset(f, ' ', n);
	memcpy(f, "{\"v\":1,\"type\":\"heartbeat\",\"id\":\"big\"}", 37);
	assert_int_equal(zmq_send(p.dealer, f, n, 0), (int)n);
	assert_int_equal(vz_proto_send(p.dealer, NULL, 0, VZ_MSG_HEARTBEAT, "after", NULL, &e), 0);
	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), VZ_ETOOBIG);
	assert_string_equal(ref, "");
	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), 0);
	assert_string_equal(m->id, "after");
	vz_msg_free(m);
	free(f);
	pair_close(&p);
}

static void test_sock_version_refuse(void **state)
{
	(void)state;
	struct pair p;
	char peer[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1];
	size_t peer_len = 0;
	vz_msg *m = NULL;
	vz_err e = { 0, "" };
	pair_open(&p, "inproc://proto-version", "ex4/v2");
	static const char f[] = "{\"v\":2,\"type\":\"hello\",\"id\":\"h2\",\"whatever\":1}";
	assert_int_equal(zmq_send(p.dealer, f, sizeof(f) - 1, 0), (int)sizeof(f) - 1);
	assert_int_equal(recv_router(&p, &m, peer, &peer_len, ref, &e), VZ_EVERSION);
	assert_string_equal(ref, "h2");
	vz_err why = e;
	vz_err_clear(&e);
	assert_int_equal(vz_proto_send_refusal(p.router, peer, peer_len, ref, &why, &e), 0);
	assert_int_equal(vz_proto_recv(p.dealer, 0, NULL, NULL, &m, ref, 0, &e), 0);
	assert_int_equal(m->type, VZ_MSG_REFUSE);
	assert_string_equal(vz_msg_str(m, "code"), "version");
	assert_string_equal(vz_msg_str(m, "ref"), "h2");
	assert_int_equal(vz_msg_int(m, "version", 0), 1);
	assert_non_null(strstr(vz_msg_str(m, "message"), "version 2"));
	vz_msg_free(m);
	pair_close(&p);
}

static void test_sock_unroutable(void **state)
{
	(void)state;
	struct pair p;
	vz_err e = { 0, "" };
	pair_open(&p, "inproc://proto-unroutable", "ex5/1");
	assert_int_equal(vz_proto_send(p.router, "nobody/0", 8, VZ_MSG_HEARTBEAT, NULL, NULL, &e), VZ_ENOTFOUND);
	vz_err_clear(&e);
	/* wrong use: router without peer, dealer with one */
	assert_int_equal(vz_proto_send(p.router, NULL, 0, VZ_MSG_HEARTBEAT, NULL, NULL, &e), VZ_EINVAL);
	vz_err_clear(&e);
	assert_int_equal(vz_proto_send(p.dealer, "x", 1, VZ_MSG_HEARTBEAT, NULL, NULL, &e), VZ_EINVAL);
	pair_close(&p);
}

static void test_sock_req_client(void **state)
{
	(void)state;
	/* an admin client on a REQ socket talks to the ROUTER like a DEALER does */
	vz_err e = { 0, "" };
	char ep[256], peer[VZ_PROTO_MAX_PEER_ID + 1], ref[VZ_PROTO_MAX_ID + 1];
	size_t n = sizeof(ep), peer_len = 0;
	int tmo = 5000;
	vz_msg *m = NULL;
	void *ctx = zmq_ctx_new();
	void *r = zmq_socket(ctx, ZMQ_ROUTER), *q = zmq_socket(ctx, ZMQ_REQ);
	assert_int_equal(vz_proto_sockopts(r, &e), 0);
	assert_int_equal(vz_proto_sockopts(q, &e), 0);
	zmq_setsockopt(r, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(q, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_bind(r, "tcp://127.0.0.1:*"), 0);
	zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, ep, &n);
	assert_int_equal(zmq_connect(q, ep), 0);
	json_t *req = parse("{\"op\":\"status\",\"args\":{\"tenant\":\"t\"}}");
	assert_int_equal(vz_proto_send(q, NULL, 0, VZ_MSG_REQUEST, "r-1", req, &e), 0);
	assert_int_equal(vz_proto_recv(r, 1, peer, &peer_len, &m, ref, 0, &e), 0);
	assert_int_equal(m->type, VZ_MSG_REQUEST);
	assert_string_equal(vz_msg_str(m, "op"), "status");
	vz_msg_free(m);
	json_t *rep = parse("{\"ok\":true,\"data\":{\"builds\":3}}");
	assert_int_equal(vz_proto_send(r, peer, peer_len, VZ_MSG_REPLY, NULL, rep, &e), 0);
	assert_int_equal(vz_proto_recv(q, 0, NULL, NULL, &m, ref, 0, &e), 0);
	assert_int_equal(m->type, VZ_MSG_REPLY);
	assert_true(json_is_true(json_object_get(m->body, "ok")));
	vz_msg_free(m);
	json_decref(req);
	json_decref(rep);
	zmq_close(q);
	zmq_close(r);
	assert_int_equal(zmq_ctx_term(ctx), 0);
}

int main(void)
{
	vz_log_set_level(VZ_LOG_ERROR); /* refused frames are logged at warn; keep the output short */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_missing_required_field),
		cmocka_unit_test(test_wrong_field_type),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_version_message_names_both),
		cmocka_unit_test(test_raw_nul_byte),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_id_lengths),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_encode_rules),
		cmocka_unit_test(test_next_id),
		cmocka_unit_test(test_sock_garbage_inproc),
		cmocka_unit_test(test_sock_garbage_tcp),
		cmocka_unit_test(test_sock_multipart),
		cmocka_unit_test(test_sock_oversized_tcp),
		cmocka_unit_test(test_sock_version_refuse),
		cmocka_unit_test(test_sock_unroutable),
		cmocka_unit_test(test_sock_req_client),
		cmocka_unit_test(test_log_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
