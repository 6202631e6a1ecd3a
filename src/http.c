/*-------------------------------------------------------------------------
 * http.c
 *    The HTTP engine: many requests at once over libcurl's multi
 *    interface, driven by the worker's loop.  The only file that includes
 *    <curl/curl.h>.
 *
 * Rules (each one a bug another extension shipped):
 * - Callbacks never ereport and never palloc: they record what went wrong
 *   and return curl's abort value; the caller reports after curl returns.
 *   Everything a request owns is malloc'd and freed when its result is
 *   freed; the multi handle is cleaned up at process exit.
 * - No signals (CURLOPT_NOSIGNAL), http and https only, an explicit
 *   redirect limit, environment proxies ignored, TLS verification on,
 *   connect and total timeouts per request, the body capped both by
 *   CURLOPT_MAXFILESIZE_LARGE and in the write callback.
 * - Redirects are followed only within the origin of the request: same
 *   scheme, host and port.  A request may carry a credential in any
 *   header or in the query string, and libcurl drops only Authorization
 *   and Cookie when a redirect changes host; so a redirect elsewhere,
 *   and any change of scheme (https to http would send the credential in
 *   cleartext), ends the request with an error instead.  Three layers:
 *   CURLOPT_REDIR_PROTOCOLS_STR admits only the request's own scheme, the
 *   open-socket callback refuses a new connection to another origin, and
 *   CURLOPT_PREREQFUNCTION, called before every request is sent (on a new
 *   or a reused connection), refuses to send to another origin.
 * - The allow-list is checked in CURLOPT_OPENSOCKETFUNCTION against the
 *   address curl is about to connect to, after DNS: a name that resolves
 *   to a loopback or private address is refused unless that address is
 *   listed, so DNS rebinding cannot reach internal services.  IPv6
 *   addresses that carry an IPv4 address (NAT64, 6to4) are judged by that
 *   IPv4 address.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "nodes/pg_list.h"
#include "storage/ipc.h"

#include "http.h"

#define MAX_REDIRECTS		5
#define MAX_HEADER_BYTES	65536
#define MAX_CONNECT_MS		10000L

typedef struct Request
{
	CURL	   *easy;
	struct curl_slist *headers;
	char	   *method;
	char	   *url;
	char	   *body;
	size_t		body_len;
	char	   *allowed;
	char	   *origin;			/* "scheme://host:port" of url */
	void	   *tag;
	bool		blocked;
	bool		redirect_refused;	/* a redirect left the origin */
	bool		too_large;
	long		max_body;
	char		errbuf[CURL_ERROR_SIZE];
	SynchubHttpResult *result;
	struct Request *next;		/* in the done list */
} Request;

static CURLM *multi = NULL;
static int	running = 0;
static Request *done_head = NULL;
static Request *done_tail = NULL;

static void
http_cleanup(int code, Datum arg)
{
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
}

/* Create the multi handle (once per process). */
void
synchub_http_init(void)
{
	if (multi)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	on_proc_exit(http_cleanup, 0);
}

static void
request_free(Request *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	/* headers, URL and body may hold credentials: wiped before freed */
	for (struct curl_slist *h = r->headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(r->headers);
	free(r->method);
	if (r->url)
		explicit_bzero(r->url, strlen(r->url));
	free(r->url);
	if (r->body)
		explicit_bzero(r->body, r->body_len);
	free(r->body);
	free(r->allowed);
	free(r->origin);
	free(r);
}

void
synchub_http_result_free(SynchubHttpResult *result)
{
	if (result == NULL)
		return;
	free(result->body);
	free(result->headers);
	free(result);
}

/* Append to a malloc'd buffer; false when out of memory. */
static bool
buf_append(char **buf, size_t *len, const char *data, size_t n)
{
	char	   *nb = realloc(*buf, *len + n + 1);

	if (nb == NULL)
		return false;
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
	return true;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	Request    *r = arg;
	size_t		n = size * nmemb;

	if ((long) (r->result->body_len + n) > r->max_body)
	{
		r->too_large = true;
		return 0;
	}
	if (!buf_append(&r->result->body, &r->result->body_len, data, n))
		return 0;
	return n;
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	Request    *r = arg;
	size_t		n = size * nmemb;

	/* keep the headers of the last response only (after redirects) */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		r->result->headers_len = 0;
	if (r->result->headers_len + n > MAX_HEADER_BYTES)
		return n;				/* drop the excess quietly */
	if (!buf_append(&r->result->headers, &r->result->headers_len, data, n))
		return 0;
	return n;
}

/* Does addr fall in the network text[/bits]? */
static bool
in_network(const char *text, const struct sockaddr *addr)
{
	char		net[INET6_ADDRSTRLEN + 8];
	char	   *slash;
	unsigned char want[16];
	const unsigned char *have;
	int			family = strchr(text, ':') ? AF_INET6 : AF_INET;
	int			len = family == AF_INET ? 4 : 16;
	int			bits = len * 8;

	if (strlen(text) >= sizeof(net))
		return false;
	strcpy(net, text);
	slash = strchr(net, '/');
	if (slash)
	{
		*slash = '\0';
		bits = atoi(slash + 1);
		if (bits < 0 || bits > len * 8)
			return false;
	}
	if (inet_pton(family, net, want) != 1 || addr->sa_family != family)
		return false;
	have = family == AF_INET
		? (const unsigned char *) &((const struct sockaddr_in *) addr)->sin_addr
		: (const unsigned char *) &((const struct sockaddr_in6 *) addr)->sin6_addr;
	for (int i = 0; i < len && bits > 0; i++, bits -= 8)
	{
		unsigned char mask = bits >= 8 ? 0xff : (unsigned char) (0xff << (8 - bits));

		if ((want[i] & mask) != (have[i] & mask))
			return false;
	}
	return true;
}

/*
 * Not public: refused unless listed.  IPv4: "this" network, private,
 * shared (carrier-grade NAT), loopback, link-local, private, IETF protocol
 * assignments, private, benchmarking, multicast and reserved.  IPv6:
 * unspecified, loopback and IPv4-compatible (::/96), IPv4-mapped,
 * local-use NAT64 (its IPv4 address can sit at several offsets), Teredo
 * (its client address is obfuscated), unique local, link-local, site-local
 * and multicast.  The well-known NAT64 prefix and 6to4 are handled in
 * is_internal by the IPv4 address they embed.
 */
static const char *const internal_networks[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3",
	"::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "2001::/32", "fc00::/7", "fe80::/10",
	"fec0::/10", "ff00::/8"
};

/*
 * Is addr in an internal network, directly or as the IPv4 address inside a
 * NAT64 (64:ff9b::/96, last 32 bits) or 6to4 (2002::/16, bits 16-47)
 * address?
 */
static bool
is_internal(const struct sockaddr *addr)
{
	struct sockaddr_in v4;
	const unsigned char *a6;

	for (int i = 0; i < lengthof(internal_networks); i++)
		if (in_network(internal_networks[i], addr))
			return true;
	if (addr->sa_family != AF_INET6)
		return false;
	a6 = ((const struct sockaddr_in6 *) addr)->sin6_addr.s6_addr;
	memset(&v4, 0, sizeof(v4));
	v4.sin_family = AF_INET;
	if (in_network("64:ff9b::/96", addr))
		memcpy(&v4.sin_addr, a6 + 12, 4);
	else if (in_network("2002::/16", addr))
		memcpy(&v4.sin_addr, a6 + 2, 4);
	else
		return false;
	return is_internal((const struct sockaddr *) &v4);
}

static bool
host_matches(const char *entry, const char *host)
{
	size_t		el = strlen(entry);
	size_t		hl = strlen(host);

	if (strcmp(entry, "*") == 0)
		return true;
	if (entry[0] == '*' && entry[1] == '.')
		entry++, el--;
	if (entry[0] == '.')
		return hl > el && pg_strcasecmp(host + hl - el, entry) == 0;
	return pg_strcasecmp(entry, host) == 0;
}

/*
 * May a request for host connect to addr?  An address listed (as an
 * address or network) is allowed whatever the name; otherwise the host
 * must match a name entry ("*", "api.example.com", ".example.com") and
 * the address must be public.
 */
bool
synchub_http_address_allowed(const char *allowed, const char *host,
							 const struct sockaddr *addr)
{
	char		entry[256];
	const char *p = allowed;
	bool		name_ok = false;

	while (p && *p)
	{
		size_t		n;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		if (n < sizeof(entry))
		{
			memcpy(entry, p, n);
			entry[n] = '\0';
			if (strspn(entry, "0123456789abcdefABCDEF.:/") == n && strpbrk(entry, ".:"))
			{
				if (in_network(entry, addr))
					return true;
			}
			else if (host && host_matches(entry, host))
				name_ok = true;
		}
		p += n;
	}
	if (!name_ok)
		return false;
	return !is_internal(addr);
}

/*
 * "scheme://host:port" of url in lower case, the scheme's default port
 * filled in; malloc'd, NULL if url does not parse (or out of memory).
 */
static char *
url_origin(const char *url)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *port = NULL;
	char	   *origin = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
	{
		size_t		n = strlen(scheme) + strlen(host) + strlen(port) + sizeof("://:");

		origin = malloc(n);
		if (origin)
		{
			snprintf(origin, n, "%s://%s:%s", scheme, host, port);
			for (char *c = origin; *c; c++)
				*c = pg_ascii_tolower((unsigned char) *c);
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return origin;
}

/*
 * Is the URL curl is working on (after a redirect, its target) in the
 * origin of the request?  Anything unknown counts as another origin.
 */
static bool
in_origin(Request *r)
{
	char	   *url = NULL;
	char	   *origin;
	bool		same;

	if (r->origin == NULL ||
		curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL)
		return false;
	origin = url_origin(url);
	same = origin != NULL && strcmp(origin, r->origin) == 0;
	free(origin);
	return same;
}

/* Before each request is sent, on a new or a reused connection. */
static int
prereq_cb(void *arg, char *conn_primary_ip, char *conn_local_ip,
		  int conn_primary_port, int conn_local_port)
{
	Request    *r = arg;

	if (!in_origin(r))
	{
		r->redirect_refused = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

static curl_socket_t
opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
	Request    *r = arg;
	char	   *url = NULL;
	char	   *host = NULL;
	CURLU	   *u;
	bool		ok = false;

	if (!in_origin(r))
	{
		r->redirect_refused = true;
		return CURL_SOCKET_BAD;
	}
	/* the effective URL: after a redirect, the host being connected to */
	if (curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL)
		url = r->url;
	u = curl_url();
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		/* [::1] comes back with brackets */
		char	   *h = host;
		size_t		hl = strlen(h);

		if (hl > 2 && h[0] == '[' && h[hl - 1] == ']')
		{
			h[hl - 1] = '\0';
			h++;
		}
		ok = synchub_http_address_allowed(r->allowed, h, &address->addr);
	}
	curl_free(host);
	curl_url_cleanup(u);
	if (!ok)
	{
		r->blocked = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype, address->protocol);
}

static char *
strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * Add a request.  False (with a message in errbuf) when it could not even
 * be set up; nothing is left behind then.
 */
bool
synchub_http_submit(const SynchubHttpSpec *spec, void *tag, char *errbuf, size_t errlen)
{
	Request    *r = calloc(1, sizeof(Request));
	ListCell   *lc;
	CURL	   *e;
	bool		ok = true;

	if (r == NULL || (r->result = calloc(1, sizeof(SynchubHttpResult))) == NULL)
	{
		free(r);
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	r->tag = tag;
	r->max_body = spec->max_body;
	r->method = strdup_or_null(spec->method);
	r->url = strdup_or_null(spec->url);
	r->allowed = strdup_or_null(spec->allowed_hosts ? spec->allowed_hosts : "");
	if (r->url)
		r->origin = url_origin(r->url);
	if (spec->body)
	{
		r->body = malloc(spec->body_len + 1);
		r->body_len = spec->body_len;
		if (r->body)
			memcpy(r->body, spec->body, spec->body_len);
	}
	r->easy = e = curl_easy_init();
	if (!r->method || !r->url || !r->allowed || (spec->body && !r->body) || !e)
		ok = false;
	foreach(lc, spec->headers)
	{
		struct curl_slist *l;

		if (!ok)
			break;
		l = curl_slist_append(r->headers, (const char *) lfirst(lc));
		if (l == NULL)
			ok = false;
		else
			r->headers = l;
	}
	if (ok)
	{
		curl_easy_setopt(e, CURLOPT_PRIVATE, r);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		/* redirects keep the scheme; see the top of the file */
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR,
						 pg_strncasecmp(r->url, "https:", 6) == 0 ? "https" : "http");
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long) MAX_REDIRECTS);
		curl_easy_setopt(e, CURLOPT_PROXY, "");
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, spec->timeout_ms);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, Min(spec->timeout_ms, MAX_CONNECT_MS));
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) spec->max_body);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
		curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
		curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
		curl_easy_setopt(e, CURLOPT_URL, r->url);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
		if (pg_strcasecmp(r->method, "HEAD") == 0)
			curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		if (r->body)
		{
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) spec->body_len);
		}
		if (r->headers)
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
		if (spec->user_agent && spec->user_agent[0])
			curl_easy_setopt(e, CURLOPT_USERAGENT, spec->user_agent);
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
		if (curl_multi_add_handle(multi, e) != CURLM_OK)
			ok = false;
	}
	if (!ok)
	{
		synchub_http_result_free(r->result);
		request_free(r);
		snprintf(errbuf, errlen, "could not set up the request");
		return false;
	}
	running++;
	return true;
}

/* Move finished transfers to the done list. */
static void
collect_done(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		Request    *r = NULL;
		SynchubHttpResult *res;
		CURLcode	code;

		if (msg->msg != CURLMSG_DONE)
			continue;
		code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
		res = r->result;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
		if (code == CURLE_OK)
			res->error = SYNCHUB_HTTP_OK;
		else if (r->redirect_refused || code == CURLE_UNSUPPORTED_PROTOCOL)
		{
			/* the request's own scheme is http or https: a redirect's is not */
			r->redirect_refused = true;
			res->error = SYNCHUB_HTTP_OTHER;
		}
		else if (r->blocked)
			res->error = SYNCHUB_HTTP_BLOCKED;
		else if (r->too_large || code == CURLE_FILESIZE_EXCEEDED)
			res->error = SYNCHUB_HTTP_TOO_LARGE;
		else if (code == CURLE_OPERATION_TIMEDOUT)
			res->error = SYNCHUB_HTTP_TIMEOUT;
		else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
				 code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR ||
				 code == CURLE_GOT_NOTHING || code == CURLE_PARTIAL_FILE ||
				 code == CURLE_SSL_CONNECT_ERROR)
			res->error = SYNCHUB_HTTP_CONNECT;
		else
			res->error = SYNCHUB_HTTP_OTHER;
		if (code != CURLE_OK && r->redirect_refused)
			snprintf(res->message, sizeof(res->message),
					 "redirect to another scheme, host or port refused");
		else if (code != CURLE_OK)
			snprintf(res->message, sizeof(res->message), "%s",
					 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
		curl_multi_remove_handle(multi, r->easy);
		r->next = NULL;
		if (done_tail)
			done_tail->next = r;
		else
			done_head = r;
		done_tail = r;
		running--;
	}
}

/*
 * Drive the transfers, waiting at most wait_ms for socket activity.
 * Returns how many requests are still in flight.
 */
int
synchub_http_perform(long wait_ms)
{
	int			still;

	if (running == 0)
		return 0;
	curl_multi_perform(multi, &still);
	collect_done();
	if (running > 0 && done_head == NULL && wait_ms > 0)
	{
		curl_multi_poll(multi, NULL, 0, (int) wait_ms, NULL);
		curl_multi_perform(multi, &still);
		collect_done();
	}
	return running;
}

/* The next finished request, if any; the caller frees the result. */
bool
synchub_http_next_done(void **tag, SynchubHttpResult **result)
{
	Request    *r = done_head;

	if (r == NULL)
		return false;
	done_head = r->next;
	if (done_head == NULL)
		done_tail = NULL;
	*tag = r->tag;
	*result = r->result;
	r->result = NULL;
	request_free(r);
	return true;
}

int
synchub_http_running(void)
{
	return running;
}

/* An HTTP-date (Retry-After, Date) as a timestamp; false if unparseable. */
bool
synchub_http_parse_date(const char *text, TimestampTz *result)
{
	time_t		t = curl_getdate(text, NULL);

	if (t == -1)
		return false;
	*result = time_t_to_timestamptz((pg_time_t) t);
	return true;
}
