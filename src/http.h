/*-------------------------------------------------------------------------
 * http.h
 *    Many HTTP requests at once over libcurl's multi interface.  No curl
 *    type leaks out of http.c.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_HTTP_H
#define SYNCHUB_HTTP_H

#include "postgres.h"

#include <sys/socket.h>

#include "nodes/pg_list.h"
#include "utils/timestamp.h"

/* Why a request produced no HTTP response (or an unusable one). */
typedef enum SynchubHttpError
{
	SYNCHUB_HTTP_OK = 0,		/* a response arrived; see status */
	SYNCHUB_HTTP_TIMEOUT,
	SYNCHUB_HTTP_CONNECT,		/* DNS, connection refused, reset, TLS */
	SYNCHUB_HTTP_TOO_LARGE,		/* body over synchub.max_response_size */
	SYNCHUB_HTTP_BLOCKED,		/* address not on synchub.allowed_hosts */
	SYNCHUB_HTTP_OTHER
} SynchubHttpError;

/* What to send.  Strings are copied at submit. */
typedef struct SynchubHttpSpec
{
	const char *method;
	const char *url;
	List	   *headers;		/* of char * "Name: value" */
	const char *body;			/* NULL for none */
	size_t		body_len;
	long		timeout_ms;
	long		max_body;		/* bytes */
	const char *user_agent;
	const char *allowed_hosts;	/* the allow-list in force */
} SynchubHttpSpec;

/* What came back; malloc'd, free with synchub_http_result_free. */
typedef struct SynchubHttpResult
{
	SynchubHttpError error;
	long		status;
	char	   *body;
	size_t		body_len;
	char	   *headers;		/* raw header block of the last response */
	size_t		headers_len;
	char		message[256];	/* for errors: curl's text, no URL */
} SynchubHttpResult;

extern void synchub_http_init(void);
extern bool synchub_http_submit(const SynchubHttpSpec *spec, void *tag, char *errbuf, size_t errlen);
extern int	synchub_http_perform(long wait_ms);
extern bool synchub_http_next_done(void **tag, SynchubHttpResult **result);
extern void synchub_http_result_free(SynchubHttpResult *result);
extern int	synchub_http_running(void);
extern bool synchub_http_parse_date(const char *text, TimestampTz *result);
extern bool synchub_http_address_allowed(const char *allowed, const char *host,
										 const struct sockaddr *addr);

#endif							/* SYNCHUB_HTTP_H */
