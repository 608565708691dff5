/*
 * Unit tests of the configuration loader: every key and default, drop-in
 * order, bad values, unknown keys with line numbers, durations, environment
 * and credential precedence, -o overrides, control characters in values
 * and diagnostics, -t output.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcevents.h"
#include "lib/tap.h"

static char dir[] = "/tmp/dcevents-test-conf.XXXXXX";
static char conf_path[256];
static char errbuf[8192];

static void
write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF) {
		perror(path);
		exit(99);
	}
}

/* Load with stderr captured into errbuf. */
static struct conf *
load_ov(const char *text, char **ov, size_t nov)
{
	char path[512];
	struct conf *c;
	int fd, saved;
	ssize_t n;

	if (text != NULL)
		write_file("dcevents.conf", text);
	snprintf(path, sizeof path, "%s/stderr", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	c = conf_load(conf_path, 1, ov, nov);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, errbuf, sizeof errbuf - 1);
	errbuf[n > 0 ? n : 0] = '\0';
	close(fd);
	return c;
}

static struct conf *
load(const char *text)
{
	return load_ov(text, NULL, 0);
}

/* The load fails and stderr holds want. */
static void
fails_with(const char *text, const char *want, const char *what)
{
	struct conf *c = load(text);

	ok(c == NULL && strstr(errbuf, want) != NULL,
	    "%s: rejected with \"%s\"", what, want);
	if (c != NULL || strstr(errbuf, want) == NULL)
		printf("#   stderr: %s\n", errbuf);
	conf_free(c);
}

static void
test_defaults(void)
{
	struct conf *c = load("");

	if (!ok(c != NULL, "an empty file loads")) {
		printf("# %s\n", errbuf);
		return;
	}
	is_str(c->url, "wss://ws.cloud.docker.com/", "URL default");
	is_str(c->host, "ws.cloud.docker.com", "URL host");
	is_str(c->port, "443", "URL default port for wss");
	is_str(c->path, "/", "URL path");
	ok(c->secure, "wss is secure");
	is_str(c->ns, "", "Namespace default empty");
	is_str(c->user, "", "User default empty");
	is_str(c->apikey_file, "", "APIKeyFile default empty");
	is_str(c->type, "", "Type default empty");
	is_str(c->object, "", "Object default empty");
	is_str(c->parent, "", "Parent default empty");
	is_str(c->cafile, "", "CAFile default: system store");
	is_str(c->capath, "", "CAPath default: system store");
	is_str(c->syslog_cafile, "",
	    "SyslogCAFile default: the system store, not CAFile");
	is_str(c->syslog_capath, "", "SyslogCAPath default: system store");
	is_int(c->allow_insecure, 0, "AllowInsecure default no");
	is_int(c->connect_timeout_ms, 10000, "ConnectTimeoutSec default 10");
	is_int(c->ping_interval_ms, 10000, "PingIntervalSec default 10");
	is_int(c->pong_timeout_ms, 10000, "PongTimeoutSec default 10");
	is_int(c->backoff_min_ms, 1000, "BackoffMinSec default 1");
	is_int(c->backoff_max_ms, 120000, "BackoffMaxSec default 120");
	is_int(c->backoff_reset_ms, 60000, "BackoffResetSec default 60");
	is_int(c->auth_backoff_ms, 300000, "AuthBackoffSec default 300");
	is_int(c->max_message_bytes, 1048576, "MaxMessageBytes default");
#ifdef HAVE_SYSTEMD
	is_int(c->journal, 1, "Journal default yes");
	is_int(c->stdout_json, 0, "Stdout default no");
#else
	is_int(c->journal, 0, "Journal default no without libsystemd");
	is_int(c->stdout_json, 1, "Stdout default yes without libsystemd");
#endif
	is_str(c->syslog, "no", "Syslog default no");
	is_int(c->syslog_mode, SYSLOG_NO, "Syslog mode no");
	is_int(c->syslog_facility, 3, "SyslogFacility default daemon");
	is_str(c->identifier, "dcevents", "Identifier default");
	is_int(c->queue_max, 100000, "QueueMax default");
	is_int(c->queue_max_bytes, 8 << 20, "QueueMaxBytes default 8M");
	is_int(c->nprio, 0, "no [Priority] rules by default");
	is_int(c->cred_source, CRED_NONE, "no credential by default");
	ok(c->secret == NULL, "no secret by default");
	conf_free(c);
}

static void
test_every_key(void)
{
	struct conf *c;
	char text[2048];

	write_file("ca.pem", "x\n");
	write_file("key", "  s3cret-key \nignored second line\n");
	snprintf(text, sizeof text,
	    "# comment\n; another\n\n"
	    "[Stream]\n"
	    "  URL = ws://events.example:8080/base/  \n"
	    "Namespace=myorg\nUser=alice\nAPIKeyFile=%s/key\n"
	    "Type=container,service\nObject=/api/app/v1/container/1/\n"
	    "Parent=/api/app/v1/stack/2/\nCAFile=%s/ca.pem\nCAPath=%s\n"
	    "AllowInsecure=yes\nConnectTimeoutSec=5\nPingIntervalSec=2500ms\n"
	    "PongTimeoutSec=1min\nBackoffMinSec=0.5\nBackoffMaxSec=1min 30s\n"
	    "AuthBackoffSec=10min\nMaxMessageBytes=64K\n"
	    "[Output]\nJournal=no\nSyslog=tcp://[::1]:1514\n"
	    "SyslogFacility=local7\nStdout=yes\nIdentifier=dce-test\n"
	    "QueueMax=42\nSyslogCAFile=%s/ca.pem\nSyslogCAPath=%s/\n"
	    "[Priority]\nDefault=notice\ncontainer=debug\n"
	    "container.Partly running=crit\n",
	    dir, dir, dir, dir, dir);
	c = load(text);
	if (!ok(c != NULL, "a file setting every key loads")) {
		printf("# %s\n", errbuf);
		return;
	}
	is_str(c->url, "ws://events.example:8080/base/", "URL set, trimmed");
	is_str(c->host, "events.example", "URL host");
	is_str(c->port, "8080", "URL port");
	is_str(c->path, "/base/", "URL path");
	ok(!c->secure, "ws is not secure");
	is_str(c->ns, "myorg", "Namespace");
	is_str(c->user, "alice", "User");
	is_int(c->cred_source, CRED_APIKEYFILE, "credential from APIKeyFile");
	is_str(c->secret, "s3cret-key", "APIKeyFile: first line, trimmed");
	is_str(c->type, "container,service", "Type");
	is_str(c->object, "/api/app/v1/container/1/", "Object");
	is_str(c->parent, "/api/app/v1/stack/2/", "Parent");
	ok(strstr(c->cafile, "/ca.pem") != NULL, "CAFile");
	is_str(c->capath, dir, "CAPath");
	ok(strstr(c->syslog_cafile, "/ca.pem") != NULL, "SyslogCAFile");
	ok(strncmp(c->syslog_capath, dir, strlen(dir)) == 0 &&
		strcmp(c->syslog_capath, dir) != 0,
	    "SyslogCAPath, apart from CAPath");
	is_int(c->allow_insecure, 1, "AllowInsecure");
	is_int(c->connect_timeout_ms, 5000, "ConnectTimeoutSec plain seconds");
	is_int(c->ping_interval_ms, 2500, "PingIntervalSec in ms");
	is_int(c->pong_timeout_ms, 60000, "PongTimeoutSec in min");
	is_int(c->backoff_min_ms, 500, "BackoffMinSec fractional");
	is_int(c->backoff_max_ms, 90000, "BackoffMaxSec compound");
	is_int(c->auth_backoff_ms, 600000, "AuthBackoffSec");
	is_int(c->max_message_bytes, 65536, "MaxMessageBytes with K");
	is_int(c->journal, 0, "Journal");
	is_int(c->syslog_mode, SYSLOG_TCP, "Syslog tcp");
	is_str(c->syslog_host, "::1", "Syslog IPv6 host");
	is_str(c->syslog_port, "1514", "Syslog port");
	is_int(c->syslog_facility, 23, "SyslogFacility local7");
	is_int(c->stdout_json, 1, "Stdout");
	is_str(c->identifier, "dce-test", "Identifier");
	is_int(c->queue_max, 42, "QueueMax");
	is_int(c->nprio, 3, "three [Priority] rules");
	is_int(conf_priority_for(c, "container", "Partly running", 6), 2,
	    "TYPE.STATE rule wins");
	is_int(conf_priority_for(c, "container", "Running", 6), 7,
	    "TYPE rule next");
	is_int(conf_priority_for(c, "service", "Running", 6), 5,
	    "Default rule next");
	conf_free(c);
}

static void
test_durations(void)
{
	static const struct {
		const char *s;
		long long ms;
	} good[] = {
		{ "10", 10000 },
		{ "10s", 10000 },
		{ "500ms", 500 },
		{ "2min", 120000 },
		{ "1.5s", 1500 },
		{ "0.25", 250 },
		{ "1min 30s", 90000 },
		{ "1min30s", 90000 },
		{ " 7s ", 7000 },
		{ "0", 0 },
		{ "43200min", 2592000000LL },
	};
	static const char *const bad[] = {
		"",
		"abc",
		"10x",
		"-1",
		"1.",
		".5",
		"5 ms ms",
		"0.0001s",
		"99999999999999999999",
		"31d",
		"43201min",
		"10sec",
		"1,5",
	};
	uint64_t ms;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ms = 0;
		ok(conf_parse_duration(good[i].s, &ms) == 0 &&
			(long long)ms == good[i].ms,
		    "duration \"%s\" = %lld ms", good[i].s, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ok(conf_parse_duration(bad[i], &ms) == -1,
		    "duration \"%s\" rejected", bad[i]);
}

static void
test_values(void)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES" };
	static const char *const no[] = { "no", "false", "off", "0", "No" };
	char text[256];
	struct conf *c;

	for (size_t i = 0; i < 5; i++) {
		snprintf(text, sizeof text, "[Output]\nStdout=%s\n", yes[i]);
		c = load(text);
		ok(c != NULL && c->stdout_json == 1, "boolean \"%s\" is yes",
		    yes[i]);
		conf_free(c);
		snprintf(
		    text, sizeof text, "[Stream]\nAllowInsecure=%s\n", no[i]);
		c = load(text);
		ok(c != NULL && c->allow_insecure == 0, "boolean \"%s\" is no",
		    no[i]);
		conf_free(c);
	}
	fails_with("[Output]\nStdout=maybe\n",
	    "dcevents.conf:2: Stdout: "
	    "invalid value \"maybe\": expected yes or no",
	    "bad boolean");

	c = load("[Stream]\nURL=wss://[::1]:9443/x\n");
	ok(c && strcmp(c->host, "::1") == 0 && strcmp(c->port, "9443") == 0 &&
		strcmp(c->path, "/x") == 0,
	    "URL with an IPv6 literal");
	conf_free(c);
	c = load("[Stream]\nURL=WSS://Host.Example\n");
	ok(c && strcmp(c->host, "Host.Example") == 0 && c->secure &&
		strcmp(c->path, "/") == 0,
	    "URL scheme case-insensitive, no path");
	conf_free(c);
	fails_with("[Stream]\nURL=ws://h/\n",
	    "dcevents.conf:2: URL: ws:// "
	    "sends events and credentials in clear text",
	    "ws:// needs "
	    "AllowInsecure");
	fails_with("[Stream]\nURL=https://h/\n",
	    ":2: URL: invalid value "
	    "\"https://h/\": expected a ws:// or wss:// URL",
	    "http URL");
	fails_with("[Stream]\nURL=wss://u:p@h/\n",
	    "credentials do not "
	    "belong in the URL",
	    "URL with userinfo");
	fails_with("[Stream]\nURL=wss://h:0/\n", "bad host or port", "port 0");
	fails_with("[Stream]\nURL=wss://h:70000/\n", "bad host or port",
	    "port out of range");
	fails_with("[Stream]\nURL=wss://h/?a=b\n", "no query", "URL query");
	fails_with("[Stream]\nURL=wss:///\n", "bad host or port", "no host");
	fails_with("[Stream]\nURL=wss://::1/\n", "bad host or port",
	    "IPv6 without brackets");

	c = load("[Output]\nSyslog=udp://127.0.0.1\n");
	ok(c && c->syslog_mode == SYSLOG_UDP &&
		strcmp(c->syslog_port, "514") == 0,
	    "Syslog udp default port 514");
	conf_free(c);
	c = load("[Output]\nSyslog=tls://logs.example\n");
	ok(c && c->syslog_mode == SYSLOG_TLS &&
		strcmp(c->syslog_host, "logs.example") == 0 &&
		strcmp(c->syslog_port, "6514") == 0,
	    "Syslog tls default port 6514");
	conf_free(c);
	c = load("[Output]\nSyslog=relp://logs.example\n");
	ok(c && c->syslog_mode == SYSLOG_RELP &&
		strcmp(c->syslog_port, "2514") == 0,
	    "Syslog relp default port 2514");
	conf_free(c);
	c = load("[Output]\nSyslog=relp+tls://[::1]:20514\n");
	ok(c && c->syslog_mode == SYSLOG_RELP_TLS &&
		strcmp(c->syslog_host, "::1") == 0 &&
		strcmp(c->syslog_port, "20514") == 0,
	    "Syslog relp+tls with an IPv6 address and a port");
	conf_free(c);
	c = load("[Output]\nSyslog=local\nJournal=no\n");
	ok(c && c->syslog_mode == SYSLOG_LOCAL, "Syslog local");
	conf_free(c);
	fails_with("[Output]\nSyslog=smtp://h\n", ":2: Syslog: invalid value",
	    "Syslog scheme");
	fails_with("[Output]\nSyslog=udp://\n", ":2: Syslog: invalid value",
	    "Syslog without host");
	fails_with("[Output]\nSyslog=tcp://h:99999\n", "Syslog: invalid",
	    "Syslog port");
	fails_with("[Output]\nSyslogFacility=local8\n",
	    ":2: SyslogFacility: "
	    "invalid value \"local8\"",
	    "bad facility");
	fails_with("[Output]\nIdentifier=has space\n",
	    ":2: Identifier: "
	    "invalid",
	    "Identifier with a space");
	fails_with("[Output]\nIdentifier="
		   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    ":2: Identifier: invalid", "Identifier of 49 characters");
	c = load("[Stream]\nMaxMessageBytes=1M\n");
	ok(c && c->max_message_bytes == 1048576, "MaxMessageBytes=1M");
	conf_free(c);
	fails_with("[Stream]\nMaxMessageBytes=0\n",
	    ":2: MaxMessageBytes: "
	    "invalid value \"0\"",
	    "MaxMessageBytes=0");
	fails_with("[Stream]\nMaxMessageBytes=2G\n", "MaxMessageBytes: invalid",
	    "MaxMessageBytes over 1G");
	fails_with("[Output]\nQueueMax=ten\n", ":2: QueueMax: invalid value",
	    "QueueMax not a number");
	fails_with("[Output]\nQueueMax=0\n", ":2: QueueMax: invalid value",
	    "QueueMax=0");
	c = load("[Output]\nQueueMaxBytes=64K\n");
	ok(c && c->queue_max_bytes == 65536, "QueueMaxBytes=64K");
	conf_free(c);
	fails_with("[Output]\nQueueMaxBytes=0\n",
	    ":2: QueueMaxBytes: invalid value", "QueueMaxBytes=0");
	c = load("");
	ok(c && c->spool_mode == SPOOL_NO && c->spool_max_bytes == 256 << 20 &&
		!c->spool_drop_oldest,
	    "[Spool] defaults: Mode=no, MaxBytes=256M, WhenFull=pause");
	conf_free(c);
	c = load("[Spool]\nMode=always\nPath=/x/s.db\nMaxBytes=1M\n"
		 "WhenFull=drop-oldest\n");
	ok(c && c->spool_mode == SPOOL_ALWAYS &&
		strcmp(c->spool_path, "/x/s.db") == 0 &&
		c->spool_max_bytes == 1 << 20 && c->spool_drop_oldest,
	    "[Spool] keys");
	conf_free(c);
	unsetenv("STATE_DIRECTORY");
	fails_with("[Spool]\nMode=always\n",
	    ":2: Path: Mode=always needs Path= or $STATE_DIRECTORY",
	    "Mode=always without a path");
	setenv("STATE_DIRECTORY", "/var/lib/dcevents:/var/lib/other", 1);
	c = load("[Spool]\nMode=always\n");
	ok(c && strcmp(c->spool_path, "/var/lib/dcevents/spool.db") == 0,
	    "Path defaults to the first $STATE_DIRECTORY");
	conf_free(c);
	unsetenv("STATE_DIRECTORY");
	c = load("[Spool]\nMode=overflow\nPath=/tmp/s.db\n");
	ok(c && c->spool_mode == SPOOL_OVERFLOW, "Mode=overflow");
	conf_free(c);
	fails_with("[Spool]\nMode=sometimes\n",
	    ":2: Mode: invalid value \"sometimes\": expected no, overflow "
	    "or always",
	    "Mode=sometimes");
	fails_with("[Spool]\nWhenFull=block\n", ":2: WhenFull: invalid value",
	    "WhenFull=block");
	/* [Metrics] (issue 18) */
	c = load("");
	ok(c && strcmp(c->metrics_listen, "no") == 0 &&
		c->metrics_host == NULL && c->metrics_unix == NULL &&
		c->stats_interval_ms == 0,
	    "[Metrics] defaults: Listen=no, StatsIntervalSec=0");
	conf_free(c);
	c = load("[Metrics]\nListen=[::1]:9464\nStatsIntervalSec=5min\n");
	ok(c && strcmp(c->metrics_host, "::1") == 0 &&
		strcmp(c->metrics_port, "9464") == 0 &&
		c->stats_interval_ms == 300000,
	    "[Metrics] Listen=[::1]:9464, StatsIntervalSec=5min");
	conf_free(c);
	c = load("[Metrics]\nListen=unix:/run/m.sock\n");
	ok(c && strcmp(c->metrics_unix, "/run/m.sock") == 0 &&
		c->metrics_host == NULL,
	    "[Metrics] Listen=unix:/run/m.sock");
	conf_free(c);
	fails_with("[Metrics]\nListen=localhost\n",
	    ":2: Listen: invalid value \"localhost\": expected no, HOST:PORT",
	    "Listen= without a port");
	fails_with("[Metrics]\nListen=unix:m.sock\n", ":2: Listen: invalid value",
	    "Listen=unix: with a relative path");
	fails_with("[Metrics]\nListen=user@h:1\n", ":2: Listen: invalid value",
	    "Listen= with userinfo");
	fails_with("[Metrics]\nStatsIntervalSec=often\n",
	    ":2: StatsIntervalSec: invalid value", "StatsIntervalSec=often");
	fails_with("[Stream]\nPingIntervalSec=0\n",
	    ":2: PingIntervalSec: "
	    "invalid value \"0\": must be greater than zero",
	    "zero interval");
	fails_with("[Stream]\nPongTimeoutSec=soon\n",
	    ":2: PongTimeoutSec: "
	    "invalid value \"soon\": expected a duration",
	    "bad duration");
	fails_with("[Stream]\nBackoffMinSec=10\nBackoffMaxSec=5\n",
	    ":3: BackoffMaxSec: smaller than BackoffMinSec", "min > max");
	fails_with("[Stream]\nCAFile=/nonexistent/ca.pem\n",
	    ":2: CAFile: "
	    "/nonexistent/ca.pem: No such file",
	    "missing CAFile");
	fails_with("[Output]\nSyslogCAFile=/nonexistent/ca.pem\n",
	    ":2: SyslogCAFile: /nonexistent/ca.pem: No such file",
	    "missing SyslogCAFile");
	fails_with("[Output]\nSyslogCAPath=/nonexistent/certs\n",
	    ":2: SyslogCAPath: /nonexistent/certs: No such file",
	    "missing SyslogCAPath");
	fails_with("[Output]\nJournal=no\nStdout=no\n", "no output enabled",
	    "no output at all");
#ifndef HAVE_SYSTEMD
	fails_with("[Output]\nJournal=yes\n",
	    ":2: Journal: this dcevents was "
	    "built without libsystemd",
	    "Journal=yes without libsystemd");
#endif
	fails_with("[Priority]\ncontainer=loud\n",
	    ":2: container: invalid "
	    "priority \"loud\"",
	    "bad priority");
	fails_with("[Priority]\n.Running=err\n", ":2: .Running: expected",
	    "bad priority key");
	c = load("[Priority]\nerror=0\nnode.Unreachable=warn\n");
	ok(c && conf_priority_for(c, "error", "", 3) == 0 &&
		conf_priority_for(c, "node", "Unreachable", 3) == 4 &&
		conf_priority_for(c, "node", "Deployed", 6) == 6,
	    "numeric and alias priorities, fallback without a rule");
	conf_free(c);
}

static void
test_syntax(void)
{
	fails_with("[Stream]\n\n# ok\nFoo=1\n",
	    "dcevents.conf:4: Foo: unknown key in [Stream]", "unknown key");
	fails_with("[Output]\nURL=wss://h/\n",
	    "dcevents.conf:2: URL: unknown key in [Output]",
	    "key in the wrong section");
	fails_with("[Streams]\nURL=x\n",
	    "dcevents.conf:1: unknown section "
	    "[Streams]",
	    "unknown section");
	fails_with("URL=wss://h/\n",
	    "dcevents.conf:1: URL: key outside of a "
	    "section",
	    "key before any section");
	fails_with("[Stream]\njust words\n",
	    "dcevents.conf:2: expected "
	    "Key=Value",
	    "line without =");
	fails_with("[Stream\n", "dcevents.conf:1: malformed section header",
	    "unclosed section header");
	{
		FILE *f;
		char path[512];

		snprintf(path, sizeof path, "%s/dcevents.conf", dir);
		f = fopen(path, "w");
		fwrite("[Stream]\nUser=a\0b\n", 1, 18, f);
		fclose(f);
	}
	{
		struct conf *c = load_ov(NULL, NULL, 0);

		ok(c == NULL && strstr(errbuf, ":2: NUL byte") != NULL,
		    "NUL byte in a line");
		conf_free(c);
	}
	fails_with("[Stream]\nFoo=1\nPingIntervalSec=x\n[Output]\nBar=2\n",
	    "3 errors in the configuration", "every error reported in one run");
	ok(strstr(errbuf, ":2: Foo") && strstr(errbuf, ":3: PingIntervalSec") &&
		strstr(errbuf, ":5: Bar"),
	    "each with its own line number");
}

static void
test_dropins(void)
{
	char d[512];
	struct conf *c;

	snprintf(d, sizeof d, "%s/dcevents.conf.d", dir);
	mkdir(d, 0755);
	write_file("dcevents.conf.d/20-c.conf", "[Output]\nIdentifier=c\n");
	write_file("dcevents.conf.d/10-b.conf",
	    "[Output]\nIdentifier=b\nQueueMax=7\n");
	write_file("dcevents.conf.d/9-z.conf", "[Output]\nIdentifier=z\n");
	write_file("dcevents.conf.d/README", "not a drop-in\n");
	write_file("dcevents.conf.d/x.conf.disabled", "[Bad]\n");
	c = load("[Output]\nIdentifier=main\nQueueMax=5\nStdout=yes\n");
	ok(c && strcmp(c->identifier, "z") == 0,
	    "drop-ins in lexical order, "
	    "the last (9-z.conf) wins");
	ok(c && c->queue_max == 7, "a drop-in overrides the main file");
	ok(c && c->stdout_json == 1,
	    "keys no drop-in sets keep the main value");
	conf_free(c);

	/* A missing default file is fine; its drop-ins still apply. */
	c = conf_load("/nonexistent/dcevents.conf", 0, NULL, 0);
	ok(c != NULL, "a missing default file is not an error");
	conf_free(c);
	{
		snprintf(conf_path, sizeof conf_path, "%s/missing.conf", dir);
		c = load_ov(NULL, NULL, 0);
		ok(c == NULL && strstr(errbuf, "missing.conf: No such file"),
		    "a missing named file is an error");
		conf_free(c);
		snprintf(conf_path, sizeof conf_path, "%s/dcevents.conf", dir);
	}
	write_file("dcevents.conf.d/30-bad.conf", "[Output]\n\nNope=1\n");
	fails_with("", "dcevents.conf.d/30-bad.conf:3: Nope: unknown key",
	    "an error in a drop-in names the drop-in");
	snprintf(d, sizeof d, "rm -rf '%s/dcevents.conf.d'", dir);
	if (system(d) != 0)
		exit(99);
}

static void
test_overrides(void)
{
	char *ov[] = { "Stream.URL=wss://o.example:1/", "Output.Stdout=yes",
		"Priority.container.Stopped=warning" };
	char *bad1[] = { "Stream.URL" }, *bad2[] = { "URL=wss://x/" },
	     *bad3[] = { "Stream.Nope=1" }, *bad4[] = { "Foo.Bar=1" };
	struct conf *c;

	c = load_ov("[Stream]\nURL=wss://file.example/\n", ov, 3);
	ok(c && strcmp(c->host, "o.example") == 0, "-o beats the file");
	ok(c && c->stdout_json, "-o Output.Stdout=yes");
	ok(c && conf_priority_for(c, "container", "Stopped", 5) == 4,
	    "-o Priority.TYPE.STATE keeps the dot in the key");
	conf_free(c);
	c = load_ov("", bad1, 1);
	ok(!c && strstr(errbuf, "-o Stream.URL: expected Section.Key=Value"),
	    "-o without =");
	conf_free(c);
	c = load_ov("", bad2, 1);
	ok(!c && strstr(errbuf, "expected Section.Key=Value"),
	    "-o without a "
	    "section");
	conf_free(c);
	c = load_ov("", bad3, 1);
	ok(!c && strstr(errbuf, "-o Stream.Nope: Nope: unknown key"),
	    "-o with an unknown key");
	conf_free(c);
	c = load_ov("", bad4, 1);
	ok(!c && strstr(errbuf, "unknown section [Foo]"),
	    "-o with an unknown section");
	conf_free(c);
}

static void
clear_env(void)
{
	unsetenv("DOCKERCLOUD_STREAM_HOST");
	unsetenv("DOCKERCLOUD_STREAM_URL");
	unsetenv("DOCKERCLOUD_NAMESPACE");
	unsetenv("DOCKERCLOUD_USER");
	unsetenv("DOCKERCLOUD_APIKEY");
	unsetenv("DOCKERCLOUD_AUTH");
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void
test_environment(void)
{
	struct conf *c;

	setenv("DOCKERCLOUD_STREAM_HOST", "wss://env.example:8443", 1);
	setenv("DOCKERCLOUD_STREAM_URL", "wss://other.example/", 1);
	setenv("DOCKERCLOUD_NAMESPACE", "envns", 1);
	setenv("DOCKERCLOUD_USER", "envuser", 1);
	setenv("DOCKERCLOUD_APIKEY", "envkey", 1); /* a user needs a key */
	c = load("");
	ok(c && strcmp(c->host, "env.example") == 0 &&
		strcmp(c->port, "8443") == 0,
	    "DOCKERCLOUD_STREAM_HOST sets URL "
	    "(over DOCKERCLOUD_STREAM_URL)");
	ok(c && strcmp(c->ns, "envns") == 0, "DOCKERCLOUD_NAMESPACE");
	ok(c && strcmp(c->user, "envuser") == 0, "DOCKERCLOUD_USER");
	conf_free(c);
	unsetenv("DOCKERCLOUD_STREAM_HOST");
	c = load("");
	ok(c && strcmp(c->host, "other.example") == 0,
	    "DOCKERCLOUD_STREAM_URL when HOST is unset");
	conf_free(c);
	c = load("[Stream]\nURL=wss://file.example/\nNamespace=filens\n"
		 "User=fileuser\n");
	ok(c && strcmp(c->host, "file.example") == 0 &&
		strcmp(c->ns, "filens") == 0 &&
		strcmp(c->user, "fileuser") == 0,
	    "the file beats the environment");
	conf_free(c);
	setenv("DOCKERCLOUD_STREAM_HOST", "http://nope", 1);
	fails_with("", "$DOCKERCLOUD_STREAM_HOST: URL: invalid value",
	    "a bad environment value names the variable");
	clear_env();
}

static void
test_credentials(void)
{
	char text[1024], credsdir[512];
	const char *env;
	struct conf *c;

	c = load("[Stream]\nUser=u\nAPIKey=k1\n");
	ok(c && c->cred_source == CRED_APIKEY && strcmp(c->secret, "k1") == 0,
	    "APIKey");
	conf_free(c);

	write_file("key", "key2\n");
	snprintf(text, sizeof text,
	    "[Stream]\nUser=u\nAPIKey=k1\n"
	    "APIKeyFile=%s/key\n",
	    dir);
	c = load(text);
	ok(c && c->cred_source == CRED_APIKEYFILE &&
		strcmp(c->secret, "key2") == 0,
	    "APIKeyFile after APIKey wins");
	conf_free(c);
	snprintf(text, sizeof text,
	    "[Stream]\nUser=u\nAPIKeyFile=%s/key\n"
	    "APIKey=k1\n",
	    dir);
	c = load(text);
	ok(c && c->cred_source == CRED_APIKEY && strcmp(c->secret, "k1") == 0,
	    "APIKey after APIKeyFile wins");
	conf_free(c);

	snprintf(credsdir, sizeof credsdir, "%s/creds", dir);
	mkdir(credsdir, 0700);
	write_file("creds/apikey", "credkey\n");
	setenv("CREDENTIALS_DIRECTORY", credsdir, 1);
	setenv("DOCKERCLOUD_AUTH", "TutumAccessKey envauth", 1);
	setenv("DOCKERCLOUD_APIKEY", "envkey", 1);
	c = load(text);
	ok(c && c->cred_source == CRED_APIKEY,
	    "APIKey beats the systemd "
	    "credential and the environment");
	conf_free(c);
	snprintf(
	    text, sizeof text, "[Stream]\nUser=u\nAPIKeyFile=%s/key\n", dir);
	c = load(text);
	ok(c && c->cred_source == CRED_APIKEYFILE,
	    "APIKeyFile beats the "
	    "systemd credential");
	conf_free(c);
	c = load("[Stream]\nUser=u\n");
	ok(c && c->cred_source == CRED_SYSTEMD &&
		strcmp(c->secret, "credkey") == 0,
	    "$CREDENTIALS_DIRECTORY/apikey when no key is configured");
	conf_free(c);
	unsetenv("CREDENTIALS_DIRECTORY");
	c = load("[Stream]\nUser=u\n");
	ok(c && c->cred_source == CRED_ENV_AUTH &&
		strcmp(c->secret, "TutumAccessKey envauth") == 0,
	    "DOCKERCLOUD_AUTH verbatim, before DOCKERCLOUD_APIKEY");
	conf_free(c);
	unsetenv("DOCKERCLOUD_AUTH");
	setenv("DOCKERCLOUD_USER", "envuser", 1);
	c = load("");
	ok(c && c->cred_source == CRED_ENV_APIKEY &&
		strcmp(c->secret, "envkey") == 0 &&
		strcmp(c->user, "envuser") == 0,
	    "DOCKERCLOUD_USER and _APIKEY");
	conf_free(c);
	clear_env();

	/* At start the daemon moves these secrets out of its environment. */
	setenv("DOCKERCLOUD_AUTH", "TutumAccessKey taken", 1);
	setenv("DOCKERCLOUD_APIKEY", "takenkey", 1);
	env = getenv("DOCKERCLOUD_AUTH");
	ok(conf_take_environment() == 0 && getenv("DOCKERCLOUD_AUTH") == NULL &&
		getenv("DOCKERCLOUD_APIKEY") == NULL,
	    "conf_take_environment() unsets DOCKERCLOUD_AUTH and _APIKEY");
	ok(memchr(env, 'T', strlen("TutumAccessKey taken")) == NULL,
	    "... and wipes the value where it was");
	for (int i = 0; i < 2; i++) {
		c = load("");
		ok(c && c->cred_source == CRED_ENV_AUTH &&
			strcmp(c->secret, "TutumAccessKey taken") == 0,
		    "load %d still finds the taken DOCKERCLOUD_AUTH", i + 1);
		conf_free(c);
	}
	ok(conf_take_environment() == 0, "taking an empty environment");
	c = load("");
	ok(c && c->cred_source == CRED_NONE, "... forgets what was taken");
	conf_free(c);

	fails_with("[Stream]\nAPIKey=k\n",
	    "dcevents.conf:2: User: an API key "
	    "needs User=",
	    "a key without a user");
	fails_with("[Stream]\nUser=u\n",
	    "dcevents.conf:2: User: User= needs an API key and none was found: "
	    "not in APIKey=, APIKeyFile=, $CREDENTIALS_DIRECTORY/apikey, "
	    "$DOCKERCLOUD_AUTH or $DOCKERCLOUD_APIKEY ($CREDENTIALS_DIRECTORY "
	    "is not set",
	    "a user without a key");
	setenv("DOCKERCLOUD_USER", "envuser", 1);
	fails_with("", "$DOCKERCLOUD_USER: User: User= needs an API key",
	    "a user from the environment without a key");
	unsetenv("DOCKERCLOUD_USER");
	snprintf(text, sizeof text, "%s/apikey", credsdir);
	unlink(text);
	setenv("CREDENTIALS_DIRECTORY", credsdir, 1);
	fails_with("[Stream]\nUser=u\n", "User= needs an API key",
	    "a credentials directory without apikey");
	ok(strstr(errbuf, "is not set") == NULL,
	    "... says nothing of $CREDENTIALS_DIRECTORY being unset");
	unsetenv("CREDENTIALS_DIRECTORY");
	fails_with("[Stream]\nUser=u\nAPIKeyFile=/nonexistent/key\n",
	    "dcevents.conf:3: APIKeyFile: cannot open /nonexistent/key",
	    "a missing key file");
	write_file("empty", "\n  \n");
	snprintf(
	    text, sizeof text, "[Stream]\nUser=u\nAPIKeyFile=%s/empty\n", dir);
	fails_with(text, "no key on the first line", "an empty key file");
	fails_with("[Stream]\nUser=a:b\nAPIKey=k\n",
	    "User: a user name "
	    "cannot contain ':'",
	    "':' in a Basic user name");
	fails_with("[Stream]\nUser=u\nAPIKey=topsecret\nBogus=1\n", ":4: Bogus",
	    "errors after a key");
	ok(strstr(errbuf, "topsecret") == NULL, "the key is never in an error");
}

/* Does s hold a byte a terminal could take as a control (or not UTF-8)? */
static int
raw_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\n') || *p >= 0x7f)
			return 1; /* the texts here are ASCII but for the bad byte */
	return 0;
}

/* text (a file) is refused at line 2 with want, escaped. */
static void
refused(const char *text, const char *want, const char *what)
{
	fails_with(text, want, what);
	ok(!raw_control(errbuf), "%s: no raw control byte on stderr", what);
}

/*
 * A control character (or a byte that is not UTF-8) in a value is an error
 * in every layer, and every diagnostic shows such bytes escaped the way
 * MESSAGE escapes control characters (\n, \r, \t or \xNN).
 */
static void
test_control(void)
{
	char *ov1[] = { "Stream.Namespace=ns\n[Output]\nJournal=no" },
	     *ov2[] = { "Priority.#x=err" }, *ov3[] = { "Priority.a\x01z=err" },
	     *ov4[] = { "Stream.User=\x1b]0;title\x07" },
	     *ov5[] = { "Stream.Nope\x1b[2J=1" };
	char text[1024], *out = NULL;
	size_t n;
	struct conf *c;
	FILE *f;

	refused("[Stream]\nNamespace=a\rb\n",
	    "dcevents.conf:2: Namespace: invalid value \"a\\rb\": control "
	    "characters are not allowed",
	    "a carriage return inside a value");
	refused("[Stream]\nUser=\x1b[31mred\n",
	    "dcevents.conf:2: User: invalid value \"\\x1b[31mred\"", "ESC");
	refused("[Stream]\nType=a\tb\n",
	    "dcevents.conf:2: Type: invalid value \"a\\tb\"",
	    "a tab inside a value");
	refused("[Output]\nIdentifier=x\x7f\n",
	    "dcevents.conf:2: Identifier: invalid value \"x\\x7f\"", "DEL");
	refused("[Stream]\nParent=\302\2331m\n",
	    "dcevents.conf:2: Parent: invalid value \"\\xc2\\x9b1m\": control",
	    "a C1 control (U+009B) in UTF-8");
	refused("[Stream]\nCAFile=/etc/\xff\n",
	    "dcevents.conf:2: CAFile: invalid value \"/etc/\\xff\": not UTF-8",
	    "a byte that is not UTF-8");
	refused("[Stream]\nURL=wss://h/\x01\n",
	    "dcevents.conf:2: URL: invalid value \"wss://h/\\x01\"",
	    "a control character in URL=");
	refused("[Output]\nSyslog=udp://h\x0b\n",
	    "dcevents.conf:2: Syslog: invalid value \"udp://h\\x0b\": control",
	    "VT at the end of a value (not a blank)");
	refused("[Priority]\ncontainer=err\x1b\n",
	    "dcevents.conf:2: container: invalid value \"err\\x1b\"",
	    "a control character in a [Priority] value");
	refused("[Priority]\ncon\x1btainer=err\n",
	    "dcevents.conf:2: con\\x1btainer: invalid key",
	    "a control character in a [Priority] key");
	refused("[Stream]\nUser=u\nAPIKey=top\x1bsecret\n",
	    "dcevents.conf:3: APIKey: invalid value: control",
	    "ESC in APIKey=");
	ok(strstr(errbuf, "top") == NULL && strstr(errbuf, "secret") == NULL,
	    "the bad key is not quoted");
	refused("[Str\033eam]\nNo\x1bpe=1\n",
	    "dcevents.conf:1: unknown section [Str\\x1beam]",
	    "a control character in a section name");
	refused("[Stream]\nNo\x9bpe=\x1b\n",
	    "dcevents.conf:2: No\\x9bpe: unknown key",
	    "a control character in a key");
	refused("[Stream]\n\x1b[2Jjunk\n", "expected Key=Value, got \"\\x1b[2J",
	    "a line without = quoted");

	/* A binary file: every byte value, twice. */
	{
		char bin[512], path[512];

		for (int i = 0; i < 512; i++)
			bin[i] = (char)i;
		snprintf(path, sizeof path, "%s/dcevents.conf", dir);
		if ((f = fopen(path, "w")) == NULL ||
		    fwrite(bin, 1, sizeof bin, f) != sizeof bin || fclose(f))
			exit(99);
		c = load_ov(NULL, NULL, 0);
		ok(c == NULL && strstr(errbuf, "dcevents.conf:3: ") &&
			strstr(errbuf, "\\x0e\\x0f"),
		    "a binary file: refused, its bytes escaped");
		ok(!raw_control(errbuf),
		    "a binary file: no raw byte on stderr");
		conf_free(c);
	}

	/* Surrounding blanks (and a CRLF line end) are not part of a value. */
	c = load(
	    "[Stream]\r\nNamespace=\t ns \t\r\nUser=\xc3\xa9t\xc3\xa9\r\n"
	    "APIKey=k\r\n");
	ok(c && strcmp(c->ns, "ns") == 0, "blanks around a value are removed");
	ok(c && strcmp(c->user, "\xc3\xa9t\xc3\xa9") == 0,
	    "a UTF-8 value is accepted");
	conf_free(c);

	/* -o: the example of issue 14. */
	c = load_ov("", ov1, 1);
	ok(c == NULL &&
		strstr(errbuf,
		    "-o Stream.Namespace: Namespace: invalid value "
		    "\"ns\\n[Output]\\nJournal=no\": control characters") &&
		!raw_control(errbuf),
	    "-o with a line break in the value");
	conf_free(c);
	c = load_ov("", ov2, 1);
	ok(c == NULL && strstr(errbuf, "-o Priority.#x: #x: expected Default"),
	    "-o Priority key that -t would print as a comment");
	conf_free(c);
	c = load_ov("", ov3, 1);
	ok(c == NULL && strstr(errbuf, "a\\x01z: invalid key") &&
		!raw_control(errbuf),
	    "-o Priority key with a control character");
	conf_free(c);
	c = load_ov("", ov4, 1);
	ok(c == NULL && strstr(errbuf, "\"\\x1b]0;title\\x07\"") &&
		!raw_control(errbuf),
	    "-o with a terminal title sequence, escaped");
	conf_free(c);
	c = load_ov("", ov5, 1);
	ok(c == NULL && strstr(errbuf, "Nope\\x1b[2J: unknown key") &&
		!raw_control(errbuf),
	    "-o with an unknown key, escaped");
	conf_free(c);

	/* The environment layer. */
	setenv("DOCKERCLOUD_NAMESPACE", "ns\n[Output]\nJournal=no", 1);
	refused("",
	    "$DOCKERCLOUD_NAMESPACE: Namespace: invalid value "
	    "\"ns\\n[Output]\\nJournal=no\"",
	    "DOCKERCLOUD_NAMESPACE with line breaks");
	setenv("DOCKERCLOUD_NAMESPACE", " envns\n", 1);
	c = load("");
	ok(c && strcmp(c->ns, "envns") == 0,
	    "blanks around an environment value are removed, as in a file");
	conf_free(c);
	clear_env();
	setenv("DOCKERCLOUD_USER", "u\x1b", 1);
	refused("", "$DOCKERCLOUD_USER: User: invalid value \"u\\x1b\"",
	    "DOCKERCLOUD_USER with ESC");
	clear_env();
	setenv("DOCKERCLOUD_STREAM_URL", "wss://h/\tx", 1);
	refused("", "$DOCKERCLOUD_STREAM_URL: URL: invalid value",
	    "DOCKERCLOUD_STREAM_URL with a tab");
	clear_env();
	setenv("DOCKERCLOUD_AUTH", "Basic abc\r\nX-Injected: 1", 1);
	refused("", "$DOCKERCLOUD_AUTH: control characters",
	    "DOCKERCLOUD_AUTH with a line break");
	ok(strstr(errbuf, "abc") == NULL, "the credential is not quoted");
	clear_env();
	setenv("DOCKERCLOUD_APIKEY", "envk\x01y", 1);
	refused("[Stream]\nUser=u\n", "$DOCKERCLOUD_APIKEY: control characters",
	    "DOCKERCLOUD_APIKEY with a control character");
	ok(strstr(errbuf, "envk") == NULL, "the key is not quoted");
	clear_env();
	write_file("esckey", "fil\x1bkey\r\n");
	snprintf(
	    text, sizeof text, "[Stream]\nUser=u\nAPIKeyFile=%s/esckey\n", dir);
	refused(text, "esckey: the key: control characters",
	    "a key file with a control character");
	ok(strstr(errbuf, "fil") == NULL, "the key file's key is not quoted");

	/* -t escapes its comments: here a file name with a line break. */
	{
		char path[512];

		snprintf(path, sizeof path, "%s/a\n[Output]\nb.conf", dir);
		if ((f = fopen(path, "w")) == NULL ||
		    fputs("[Stream]\nNamespace=x\n", f) == EOF || fclose(f))
			exit(99);
		c = conf_load(path, 1, NULL, 0);
		if (ok(c != NULL, "a file whose name has line breaks loads")) {
			f = open_memstream(&out, &n);
			conf_print(c, f);
			fclose(f);
			ok(strstr(out,
			       "/a\\n[Output]\\nb.conf:2\nNamespace=x\n") &&
				strstr(out, "\n[Output]\nb.conf") == NULL,
			    "-t prints its origin escaped");
			free(out);
		}
		conf_free(c);
		unlink(path);
	}
}

/* Strip "#" lines so that two prints of the same settings compare equal. */
static void
settings_only(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		char *nl = strchr(r, '\n');
		size_t n = nl ? (size_t)(nl - r + 1) : strlen(r);

		if (*r != '#') {
			memmove(w, r, n);
			w += n;
		}
		r += n;
	}
	*w = '\0';
}

static void
test_print(void)
{
	char *out1 = NULL, *out2 = NULL;
	size_t n1, n2;
	struct conf *c;
	FILE *f;

	c = load("[Stream]\nUser=u\nAPIKey=hunter2\nPingIntervalSec=1500ms\n"
		 "[Output]\nSyslog=udp://[::1]:515\n[Priority]\nDefault=info\n"
		 "service.Partly running=err\n");
	if (!ok(c != NULL, "print: loads"))
		return;
	f = open_memstream(&out1, &n1);
	conf_print(c, f);
	fclose(f);
	ok(strstr(out1, "hunter2") == NULL, "-t never prints the key");
	ok(strstr(out1, "APIKey=(masked)\n") != NULL, "-t masks the key");
	ok(strstr(out1, "PingIntervalSec=1500ms\n") != NULL, "-t durations");
	ok(strstr(out1, "# from ") &&
		strstr(out1,
		    "dcevents.conf:4\n"
		    "PingIntervalSec"),
	    "-t says where a value came from");
	ok(strstr(out1, "# credential: APIKey=") != NULL,
	    "-t names the "
	    "credential source");
	ok(strstr(out1, "service.Partly running=err\n") != NULL,
	    "-t prints [Priority] rules");
	ok(strstr(out1, "\nSyslogCAFile=\nSyslogCAPath=\n") != NULL,
	    "-t prints the collector's trust anchors");
	conf_free(c);

	/* Fed back in (with the key again), it gives the same settings. */
	{
		char *copy = strdup(out1), *p = strstr(copy, "APIKey=(masked)");

		memcpy(p, "APIKey=hunter2 ", 15);
		c = load(copy);
		free(copy);
	}
	if (ok(c != NULL, "-t output loads as a configuration")) {
		f = open_memstream(&out2, &n2);
		conf_print(c, f);
		fclose(f);
		settings_only(out1);
		settings_only(out2);
		is_str(out2, out1, "and prints the same settings");
		free(out2);
	} else
		printf("# %s\n", errbuf);
	conf_free(c);
	free(out1);
}

static void
test_changed(void)
{
	struct conf *a, *b;

	a = load("[Stream]\nURL=wss://a.example/\n");
	b = load("[Stream]\nURL=wss://a.example/\n[Output]\nIdentifier=x\n");
	ok(a && b && !conf_stream_changed(a, b),
	    "an output change keeps the "
	    "connection");
	conf_free(b);
	b = load("[Stream]\nURL=wss://a.example/\n[Output]\n"
		 "SyslogCAFile=/dev/null\n");
	ok(a && b && !conf_stream_changed(a, b),
	    "the collector's trust anchors keep the connection");
	conf_free(b);
	b = load("[Stream]\nURL=wss://b.example/\n");
	ok(a && b && conf_stream_changed(a, b), "a new URL reconnects");
	conf_free(b);
	b = load("[Stream]\nURL=wss://a.example/\nUser=u\nAPIKey=k\n");
	ok(a && b && conf_stream_changed(a, b), "a new credential reconnects");
	conf_free(b);
	conf_free(a);
}

/* [Enrich]: defaults, values, and what is refused with file:line. */
static void
test_enrich_keys(void)
{
	struct conf *c = load("");

	ok(c != NULL && !c->enrich && c->enrich_concurrency == 4 &&
		c->enrich_cache_entries == 10000 &&
		c->enrich_cache_ttl_ms == 3600000 &&
		c->enrich_timeout_ms == 2000 && c->nenrich_fields == 0 &&
		strcmp(c->enrich_host, "cloud.docker.com") == 0 &&
		strcmp(c->enrich_port, "443") == 0 &&
		strcmp(c->enrich_path, "") == 0 && c->enrich_secure,
	    "[Enrich] defaults: Lookup=no, https://cloud.docker.com/, 4, "
	    "10000, 3600 s, 2 s");
	conf_free(c);
	c = load("[Enrich]\nLookup=yes\nURL=https://api.example:8443/base/\n"
		 "Concurrency=8\nCacheEntries=5\nCacheTTLSec=10min\n"
		 "TimeoutSec=500ms\nFields=image_tag, node,region\n");
	ok(c != NULL && c->enrich && c->enrich_concurrency == 8 &&
		c->enrich_cache_entries == 5 &&
		c->enrich_cache_ttl_ms == 600000 &&
		c->enrich_timeout_ms == 500 &&
		strcmp(c->enrich_host, "api.example") == 0 &&
		strcmp(c->enrich_port, "8443") == 0 &&
		strcmp(c->enrich_path, "/base") == 0 &&
		c->nenrich_fields == 3 &&
		strcmp(c->enrich_fields[1], "node") == 0,
	    "[Enrich] keys set; Fields= split on spaces and commas");
	conf_free(c);
	fails_with("[Enrich]\nLookup=yes\nFields=name container_envvars\n",
	    "dcevents.conf:3: Fields: invalid value \"name container_envvars\""
	    ": container_envvars can hold secrets",
	    "Fields=container_envvars");
	fails_with("[Enrich]\nFields=password\n",
	    ":2: Fields: invalid value \"password\": password is not on the "
	    "allow-list",
	    "Fields= outside the allow-list");
	fails_with("[Enrich]\nLookup=yes\nURL=http://h/\n",
	    ":3: URL: http:// sends the credentials in clear text",
	    "http:// without AllowInsecure");
	fails_with("[Enrich]\nURL=wss://h/\n",
	    ":2: URL: invalid value \"wss://h/\": expected a http:// or "
	    "https:// URL",
	    "a websocket URL");
	fails_with("[Enrich]\nConcurrency=65\n",
	    ":2: Concurrency: at most 64 requests in flight", "Concurrency=65");
	fails_with("[Enrich]\nTimeoutSec=0\n", ":2: TimeoutSec: invalid value",
	    "TimeoutSec=0");
}

int
main(void)
{
	char cmd[512];
	int rc;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(conf_path, sizeof conf_path, "%s/dcevents.conf", dir);
	clear_env();
	log_init(0);

	test_defaults();
	test_every_key();
	test_durations();
	test_values();
	test_syntax();
	test_dropins();
	test_overrides();
	test_environment();
	test_credentials();
	test_control();
	test_print();
	test_changed();
	test_enrich_keys();

	rc = done();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
