/* vz_gitcred without a network: repository URLs are classified and split as libgit2 will connect
 * to them (ssh://, scp-like, https://, paths), malformed ones are refused, and what can be checked
 * before connecting (known_hosts and ssh_key for ssh, readable files) is. The transfers
 * themselves are tested against real servers in tests/integration/test_cache_remote.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vz_gitcred.h"

static const struct {
	const char *url;
	int rc;
	vz_giturl_kind kind;
	const char *user, *host;
	int port;
} urls[] = {
	{ "ssh://git@example.org/r/p.git", 0, VZ_GITURL_SSH, "git", "example.org", 22 },
	{ "ssh://example.org:2222/r/p", 0, VZ_GITURL_SSH, "", "example.org", 2222 },
	{ "ssh://ci@[::1]:29418/p", 0, VZ_GITURL_SSH, "ci", "::1", 29418 },
	{ "git+ssh://u@h/p", 0, VZ_GITURL_SSH, "u", "h", 22 },
	{ "git@github.com:org/p.git", 0, VZ_GITURL_SSH, "git", "github.com", 22 },
	{ "host:p.git", 0, VZ_GITURL_SSH, "", "host", 22 },
	{ "https://git.example.org/r/p", 0, VZ_GITURL_HTTPS, "", "git.example.org", 443 },
	{ "https://bot@127.0.0.1:8443/p.git", 0, VZ_GITURL_HTTPS, "bot", "127.0.0.1", 8443 },
	{ "https://bot:pw@h/p", 0, VZ_GITURL_HTTPS, "bot", "h", 443 },
	{ "http://h:8080/p", 0, VZ_GITURL_HTTP, "", "h", 8080 },
	{ "/srv/git/p.git", 0, VZ_GITURL_LOCAL, "", "", 0 },
	{ "./repos/a:b", 0, VZ_GITURL_LOCAL, "", "", 0 },
	{ "repos/a:b", 0, VZ_GITURL_LOCAL, "", "", 0 },
	{ "file:///srv/p", 0, VZ_GITURL_LOCAL, "", "", 0 },
	{ "git://h/p", 0, VZ_GITURL_OTHER, "", "", 0 },
	{ "ssh://h:0/p", VZ_EINVAL, 0, NULL, NULL, 0 },
	{ "ssh://h:65536/p", VZ_EINVAL, 0, NULL, NULL, 0 },
	{ "ssh://h:22x/p", VZ_EINVAL, 0, NULL, NULL, 0 },
	{ "ssh:///p", VZ_EINVAL, 0, NULL, NULL, 0 },
	{ "https://[::1/p", VZ_EINVAL, 0, NULL, NULL, 0 },
	{ "", VZ_EINVAL, 0, NULL, NULL, 0 },
};

static void test_urls(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		vz_giturl u;
		vz_err e = { 0 };
		int rc = vz_giturl_parse(&u, urls[i].url, &e);
		if (rc != urls[i].rc) {
			print_error("%s: rc %d, want %d (%s)\n", urls[i].url, rc, urls[i].rc, vz_err_msg(&e));
			bad++;
			continue;
		}
		if (rc) {
			if (!e.msg[0]) {
				print_error("%s: no message\n", urls[i].url);
				bad++;
			}
			continue;
		}
		if (u.kind != urls[i].kind || strcmp(u.user, urls[i].user) || strcmp(u.host, urls[i].host) ||
		    u.port != urls[i].port) {
			print_error("%s: kind %d user '%s' host '%s' port %d\n", urls[i].url, u.kind, u.user, u.host,
				    u.port);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void test_checks_before_connecting(void **state)
{
	(void)state;
	vz_gitcred *g = NULL;
	vz_err e = { 0 };
	vz_repo_cred c = { .connection = "review" };
	/* ssh needs known_hosts, then ssh_key, then a readable key */
	assert_int_equal(vz_gitcred_new(&g, "ssh://git@h/p", NULL, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "'known_hosts'"));
	vz_err_clear(&e);
	c.known_hosts = "/etc/vinz/known_hosts";
	assert_int_equal(vz_gitcred_new(&g, "git@h:p", &c, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "'ssh_key'"));
	assert_non_null(strstr(e.msg, "connection 'review'"));
	vz_err_clear(&e);
	c.ssh_key = "/nonexistent/id_ed25519";
	assert_int_equal(vz_gitcred_new(&g, "git@h:p", &c, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "/nonexistent/id_ed25519"));
	assert_null(g);
	/* https: a CA file that cannot be read */
	vz_err_clear(&e);
	c.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(vz_gitcred_new(&g, "https://h/p", &c, &e), VZ_EINVAL);
	assert_non_null(strstr(e.msg, "/nonexistent/ca.pem"));
	/* local paths and anonymous https need nothing */
	vz_err_clear(&e);
	assert_int_equal(vz_gitcred_new(&g, "/srv/git/p.git", NULL, &e), 0);
	assert_int_equal(vz_gitcred_handshakes(g), 0);
	vz_gitcred_free(g);
	assert_int_equal(vz_gitcred_new(&g, "https://h/p", NULL, &e), 0);
	vz_gitcred_free(g);
	vz_gitcred_free(NULL);
}

static void test_cred_from_conf(void **state)
{
	(void)state;
	vz_conf_connection cc = { .name = "r", .user = "u", .ssh_key = "/k", .known_hosts = "/kh",
				  .password_file = "/pw", .ca_file = "/ca" };
	vz_repo_cred c;
	vz_repo_cred_from_conf(&c, &cc);
	assert_string_equal(c.connection, "r");
	assert_string_equal(c.user, "u");
	assert_string_equal(c.ssh_key, "/k");
	assert_string_equal(c.known_hosts, "/kh");
	assert_string_equal(c.password_file, "/pw");
	assert_null(c.password_env);
	assert_string_equal(c.ca_file, "/ca");
	vz_repo_cred_from_conf(&c, NULL);
	assert_null(c.connection);
	assert_null(c.ssh_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_checks_before_connecting),
		cmocka_unit_test(test_cred_from_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
