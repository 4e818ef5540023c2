/* bench_secrets: what secrets cost, each against a peer measured in the same run.
 *  - decrypting: vz_secrets_decrypt on 3-chunk values vs the same RSA-OAEP decryptions done with
 *    bare OpenSSL calls (the floor: RSA-4096 private-key operations dominate);
 *  - redacting: vz_redact over 16 MiB of build-log-like text with 50 secret values
 *    (71 patterns once multi-line values are split into lines) vs copying the same text into a vz_buf.
 * Prints times and ratios; never fails on timing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "vz_buf.h"
#include "vz_redact.h"
#include "vz_secrets.h"
#include "vz_testutil.h"
#include "vz_util.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define VALUES 20

int main(void)
{
	char *dir = vz_test_tmpdir("bench-secrets");
	vz_err e = { 0 };
	vz_secrets_key *k = NULL;
	double t0 = now_ms();
	if (vz_secrets_key_get(&k, dir, "gerrit", "org/app", 1, &e)) {
		fprintf(stderr, "%s\n", vz_err_msg(&e));
		return 1;
	}
	printf("RSA-4096 key pair made and installed: %.0f ms\n", now_ms() - t0);

	/* 20 values of 1,200 bytes: 3 chunks each */
	json_t *enc[VALUES];
	char msg[1200];
	for (int v = 0; v < VALUES; v++) {
		for (size_t i = 0; i < sizeof(msg); i++)
			msg[i] = (char)('a' + (i + (size_t)v) % 26);
		if (vz_secrets_encrypt(&enc[v], k, msg, sizeof(msg), &e))
			return 1;
	}
	double c0 = cpu_ms();
	for (int v = 0; v < VALUES; v++) {
		const char *chunks[3];
		for (int i = 0; i < 3; i++)
			chunks[i] = json_string_value(json_array_get(enc[v], (size_t)i));
		char *out = NULL;
		size_t len = 0;
		if (vz_secrets_decrypt(&out, &len, k, chunks, 3, &e) || len != sizeof(msg))
			return 1;
		vz_secrets_wipe(out, len);
	}
	double ours = cpu_ms() - c0;

	/* the peer: the same 60 RSA-OAEP decryptions with OpenSSL directly, base64 decoded beforehand */
	char *pem = NULL;
	if (vz_secrets_key_pem(&pem, k, 1, &e))
		return 1;
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	unsigned char ct[VALUES * 3][512], pt[512];
	for (int v = 0; v < VALUES; v++)
		for (int i = 0; i < 3; i++)
			EVP_DecodeBlock(ct[v * 3 + i], (const unsigned char *)json_string_value(json_array_get(enc[v], (size_t)i)),
					684);
	c0 = cpu_ms();
	for (int i = 0; i < VALUES * 3; i++) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
		size_t ol = sizeof(pt);
		EVP_PKEY_decrypt_init(c);
		EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING);
		EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha1());
		EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha1());
		if (EVP_PKEY_decrypt(c, pt, &ol, ct[i], 512) != 1)
			return 1;
		EVP_PKEY_CTX_free(c);
	}
	double peer = cpu_ms() - c0;
	printf("decrypt %d values of 3 chunks: vinz %.1f ms CPU (%.2f ms per chunk), bare OpenSSL %.1f ms: "
	       "ratio %.2f\n", VALUES, ours, ours / (VALUES * 3), peer, peer > 0 ? ours / peer : 0);
	EVP_PKEY_free(pk);
	vz_secrets_wipe(pem, strlen(pem));
	for (int v = 0; v < VALUES; v++)
		json_decref(enc[v]);

	/* redaction: 50 values (10 of them 4-line key files), over a 16 MiB log with a hit every
	 * ~4 KiB */
	json_t *vals = json_array();
	for (int v = 0; v < 50; v++) {
		char s[256];
		if (v % 5 == 0)
			snprintf(s, sizeof(s), "-----BEGIN KEY %d-----\nMIIEv%dQIBADANBgkq\nhkiG9w0BAQEFAAS%d\n-----END KEY-----", v, v, v);
		else
			snprintf(s, sizeof(s), "tok_%08x_%d_secret", (unsigned)(v * 2654435761u), v);
		json_array_append_new(vals, json_string(s));
	}
	vz_redactor *r = vz_redactor_new(vals);
	size_t n = 16u << 20;
	char *log = malloc(n);
	size_t o = 0;
	unsigned line = 0;
	while (o < n) {
		char l[200];
		int w = line % 50 == 0 ? snprintf(l, sizeof(l), "TASK [deploy] token=tok_%08x_%d_secret ok\n",
						   (unsigned)(((line / 50) % 50) * 2654435761u), (line / 50) % 50)
					: snprintf(l, sizeof(l), "2026-11-22 03:00:%02u | ok: [node%u] => changed=false, "
								 "stdout=compiling module %u of 9000\n", line % 60, line % 7, line);
		size_t take = (size_t)w < n - o ? (size_t)w : n - o;
		memcpy(log + o, l, take);
		o += take;
		line++;
	}
	vz_buf out = VZ_BUF_INIT(n * 2);
	c0 = cpu_ms();
	vz_buf_add(&out, log, n);
	double copy = cpu_ms() - c0;
	vz_buf_reset(&out);
	c0 = cpu_ms();
	long hits = vz_redact(&out, r, log, n);
	double red = cpu_ms() - c0;
	printf("redact 16 MiB with %zu patterns: %.1f ms CPU (%.0f MiB/s), %ld replaced; copying it: %.1f ms: "
	       "ratio %.1f\n", vz_redactor_count(r), red, 16.0 / (red / 1e3), hits, copy,
	       copy > 0 ? red / copy : 0);
	vz_buf_free(&out);
	free(log);
	vz_redactor_free(r);
	json_decref(vals);
	vz_secrets_key_free(k);
	vz_test_rm(dir);
	free(dir);
	return 0;
}
