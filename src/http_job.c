/*-------------------------------------------------------------------------
 * http_job.c
 *    The "http" job kind: payload {"method","url","headers","body",
 *    "timeout_ms"} in, result {"status","headers","body"} out, and the
 *    classification of what came back.
 *
 * Classification: 2xx succeeds; 5xx, timeouts and connection errors are
 * failed attempts that retry with backoff; 429 and 503 with Retry-After
 * (seconds or an HTTP-date) or a rate-limit reset header are rescheduled
 * at that time without counting an attempt; every other status, a body
 * over synchub.max_response_size, a refused address and an invalid
 * payload go dead at once.  Errors carry the status and the first
 * ERROR_BODY_BYTES of the body, and name the URL only as redacted by
 * redact.c.  The result's body is jsonb when the response is JSON, text
 * when it is valid text, and base64 (key body_base64) otherwise.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "common/base64.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "compat.h"
#include "http_job.h"
#include "redact.h"

#define ERROR_BODY_BYTES	200
#define MAX_RESCHEDULE_S	86400.0

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

static JsonbValue *
payload_get(Jsonb *payload, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&payload->root, JB_FOBJECT, &k);
}

static char *
jbv_string(JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static void
dead(SynchubOutcome *out, char *error)
{
	out->kind = SYNCHUB_DEAD;
	out->error = error;
}

/*
 * Parse the payload and submit the request.  False, with a dead outcome,
 * when the payload is invalid or the request cannot be set up.
 */
/*
 * A JSON number as an integer in [min, max]: false for anything else
 * (fractions are rounded), never an ERROR.
 */
bool
synchub_numeric_int64(Numeric n, int64 min, int64 max, int64 *result)
{
	if (numeric_is_nan(n) || numeric_is_inf(n) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(min)))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(max)))) > 0)
		return false;
	*result = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
	return *result >= min && *result <= max;
}

/* Zero the strings of a submitted request that may carry credentials. */
static void
wipe_spec(SynchubHttpSpec *spec)
{
	ListCell   *lc;

	foreach(lc, spec->headers)
		explicit_bzero(lfirst(lc), strlen(lfirst(lc)));
	if (spec->url)
		explicit_bzero((char *) spec->url, strlen(spec->url));
}

bool
synchub_http_job_start(SynchubJob *job, SynchubOutcome *out)
{
	SynchubHttpSpec spec;
	JsonbValue *v;
	char		errbuf[256];
	const char *method = "GET";
	int64		timeout_ms;
	bool		ok;

	memset(&spec, 0, sizeof(spec));
	if (!JB_ROOT_IS_OBJECT(job->payload))
	{
		dead(out, pstrdup("invalid http payload: not a JSON object"));
		return false;
	}
	v = payload_get(job->payload, "url");
	if (v == NULL || v->type != jbvString)
	{
		dead(out, pstrdup("invalid http payload: \"url\" must be a string"));
		return false;
	}
	spec.url = jbv_string(v);
	if (pg_strncasecmp(spec.url, "http://", 7) != 0 && pg_strncasecmp(spec.url, "https://", 8) != 0)
	{
		dead(out, pstrdup("invalid http payload: \"url\" must start with http:// or https://"));
		return false;
	}
	v = payload_get(job->payload, "method");
	if (v != NULL && v->type != jbvNull)
	{
		bool		known = false;

		if (v->type == jbvString)
		{
			char	   *m = jbv_string(v);

			for (int i = 0; i < lengthof(methods); i++)
				if (pg_strcasecmp(m, methods[i]) == 0)
				{
					method = methods[i];
					known = true;
				}
		}
		if (!known)
		{
			dead(out, pstrdup("invalid http payload: \"method\" must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"));
			return false;
		}
	}
	spec.method = method;
	job->what = psprintf("%s %s", method, synchub_redact_url(spec.url));

	v = payload_get(job->payload, "headers");
	if (v != NULL && v->type != jbvNull)
	{
		JsonbIterator *it;
		JsonbValue	kv;
		JsonbIteratorToken tok;
		char	   *name = NULL;

		if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		{
			dead(out, pstrdup("invalid http payload: \"headers\" must be an object of strings"));
			return false;
		}
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				name = jbv_string(&kv);
			else if (tok == WJB_VALUE)
			{
				char	   *value;

				if (kv.type != jbvString || strpbrk(name, ":\r\n") || name[0] == '\0')
				{
					dead(out, psprintf("invalid http payload: header \"%s\" must have a string value and a name without \":\"", name));
					return false;
				}
				value = jbv_string(&kv);
				if (strpbrk(value, "\r\n"))
				{
					dead(out, psprintf("invalid http payload: the value of header \"%s\" contains a line break", name));
					return false;
				}
				spec.headers = lappend(spec.headers, psprintf("%s: %s", name, value));
			}
		}
	}

	v = payload_get(job->payload, "body");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type == jbvString)
		{
			spec.body = v->val.string.val;
			spec.body_len = v->val.string.len;
		}
		else
		{
			char	   *text;

			if (v->type == jbvBinary)
				text = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
			else
			{
				/* scalar number or boolean: its JSON text */
				Jsonb	   *j = JsonbValueToJsonb(v);

				text = JsonbToCString(NULL, &j->root, VARSIZE(j));
			}
			spec.body = text;
			spec.body_len = strlen(text);
			spec.headers = lappend(spec.headers, pstrdup("Content-Type: application/json"));
		}
	}

	spec.timeout_ms = synchub_http_timeout;
	v = payload_get(job->payload, "timeout_ms");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvNumeric)
		{
			dead(out, pstrdup("invalid http payload: \"timeout_ms\" must be a number"));
			return false;
		}
		if (!synchub_numeric_int64(v->val.numeric, 1, 3600000, &timeout_ms))
		{
			dead(out, pstrdup("invalid http payload: \"timeout_ms\" must be between 1 and 3600000"));
			return false;
		}
		spec.timeout_ms = (int) timeout_ms;
	}
	job->timeout_ms = spec.timeout_ms;
	spec.max_body = (long) synchub_max_response_size * 1024L;
	spec.user_agent = synchub_user_agent;
	spec.allowed_hosts = synchub_allowed_hosts;

	ok = synchub_http_submit(&spec, job, errbuf, sizeof(errbuf));
	/* the request keeps its own copies: ours, which may hold credentials, go */
	wipe_spec(&spec);
	if (!ok)
	{
		out->kind = SYNCHUB_RETRY;
		out->error = psprintf("%s: %s", job->what, errbuf);
		return false;
	}
	return true;
}

/* The value of the last header "name" in a raw header block, or NULL. */
static char *
header_value(const char *raw, const char *name)
{
	size_t		nl = strlen(name);
	const char *p = raw;
	char	   *found = NULL;

	while (p && *p)
	{
		const char *eol = strchr(p, '\n');
		size_t		len = eol ? (size_t) (eol - p) : strlen(p);

		if (len > nl && p[nl] == ':' && pg_strncasecmp(p, name, nl) == 0)
		{
			const char *v = p + nl + 1;
			const char *end = p + len;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
				end--;
			found = pnstrdup(v, end - v);
		}
		p = eol ? eol + 1 : NULL;
	}
	return found;
}

/* Seconds to wait per Retry-After or a rate-limit reset header; -1 if none. */
static double
retry_after_seconds(const char *raw)
{
	static const char *const reset_headers[] = {
		"x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"
	};
	char	   *v = header_value(raw, "retry-after");
	char	   *end;
	double		s;
	TimestampTz at;

	if (v)
	{
		s = strtod(v, &end);
		if (end != v && *end == '\0' && s >= 0)
			return s;
		if (synchub_http_parse_date(v, &at))
			return Max(0.0, (double) (at - GetCurrentTimestamp()) / USECS_PER_SEC);
	}
	for (int i = 0; i < lengthof(reset_headers); i++)
	{
		v = header_value(raw, reset_headers[i]);
		if (v == NULL)
			continue;
		s = strtod(v, &end);
		if (end == v || *end != '\0' || s < 0)
			continue;
		if (s > 1e9)			/* a Unix time, not a delay */
			s = Max(0.0, s - (double) time(NULL));
		return s;
	}
	return -1;
}

static bool
is_valid_text(const char *data, size_t len)
{
	return memchr(data, '\0', len) == NULL &&
		pg_verifymbstr(data, (int) len, true);
}

static bool
is_json(const char *data, size_t len)
{
	JsonLexContext *lex;
	JsonSemAction sem;

	memset(&sem, 0, sizeof(sem));
	if (!is_valid_text(data, len))
		return false;
#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, (char *) data, (int) len, GetDatabaseEncoding(), true);
#else
	lex = makeJsonLexContextCstringLen((char *) data, (int) len, GetDatabaseEncoding(), true);
#endif
	return pg_parse_json(lex, &sem) == JSON_SUCCESS;
}

/*
 * {"status": n, "headers": {...}, "body": ...}; with json_body false a JSON
 * body is kept as a string.
 */
static Jsonb *
build_result(SynchubHttpResult *res, bool json_body)
{
	StringInfoData s;
	char	   *ctype = res->headers ? header_value(res->headers, "content-type") : NULL;
	const char *p = res->headers;
	bool		first = true;
	const char *body = res->body ? res->body : "";

	initStringInfo(&s);
	appendStringInfo(&s, "{\"status\": %ld, \"headers\": {", res->status);
	while (p && *p)
	{
		const char *eol = strchr(p, '\n');
		size_t		len = eol ? (size_t) (eol - p) : strlen(p);
		const char *colon = memchr(p, ':', len);

		if (colon && strncmp(p, "HTTP/", 5) != 0)
		{
			char	   *name = pnstrdup(p, colon - p);
			char	   *value = header_value(p, name);

			if (is_valid_text(name, strlen(name)) && value && is_valid_text(value, strlen(value)))
			{
				if (!first)
					appendStringInfoString(&s, ", ");
				for (char *c = name; *c; c++)
					*c = pg_ascii_tolower((unsigned char) *c);
				escape_json(&s, name);
				appendStringInfoString(&s, ": ");
				escape_json(&s, value);
				first = false;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	appendStringInfoString(&s, "}, ");
	if (json_body && ctype && strstr(ctype, "json") && res->body_len > 0 && is_json(body, res->body_len))
	{
		appendStringInfoString(&s, "\"body\": ");
		appendBinaryStringInfo(&s, body, res->body_len);
	}
	else if (is_valid_text(body, res->body_len))
	{
		appendStringInfoString(&s, "\"body\": ");
		escape_json(&s, body);
	}
	else
	{
		int			n = pg_b64_enc_len((int) res->body_len);
		char	   *b64 = palloc(n + 1);

#if PG_VERSION_NUM >= 180000
		n = pg_b64_encode((const uint8 *) body, (int) res->body_len, b64, n);
#else
		n = pg_b64_encode(body, (int) res->body_len, b64, n);
#endif
		b64[Max(n, 0)] = '\0';
		appendStringInfoString(&s, "\"body\": null, \"body_base64\": ");
		escape_json(&s, b64);
	}
	appendStringInfoChar(&s, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/*
 * The result of a response.  A body that is valid JSON text but that jsonb
 * refuses (a number beyond numeric's range, nesting deeper than the stack
 * allows) is kept as a string instead.  This runs outside any transaction:
 * the parsers hold no resources, so their ERROR is caught and dropped here
 * rather than ending the worker.
 */
Jsonb *
synchub_http_job_result(SynchubHttpResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile result = NULL;

	PG_TRY();
	{
		result = build_result(res, true);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	return result != NULL ? result : build_result(res, false);
}

/* The first bytes of the body, cut at a character boundary. */
static char *
trimmed_body(SynchubHttpResult *res)
{
	size_t		n = Min(res->body_len, ERROR_BODY_BYTES);

	if (res->body == NULL || n == 0 || !is_valid_text(res->body, res->body_len))
		return pstrdup("");
	n = pg_mbcliplen(res->body, (int) res->body_len, (int) n);
	return psprintf(": %.*s%s", (int) n, res->body, n < res->body_len ? "..." : "");
}

/* Remaining: 0 with a reset header: no request before the reset. */
static TimestampTz
exhausted_until(const char *raw)
{
	static const char *const remaining_headers[] = {
		"x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining"
	};
	double		s;

	for (int i = 0; i < lengthof(remaining_headers); i++)
	{
		char	   *v = header_value(raw, remaining_headers[i]);

		if (v && strcmp(v, "0") == 0 && (s = retry_after_seconds(raw)) >= 0)
			return GetCurrentTimestamp() + (TimestampTz) (Min(s, MAX_RESCHEDULE_S) * USECS_PER_SEC);
	}
	return 0;
}

void
synchub_http_job_finish(SynchubJob *job, SynchubHttpResult *res, SynchubOutcome *out)
{
	long		st = res->status;

	out->rate_event = SYNCHUB_RATE_NEUTRAL;
	out->blocked_until = 0;
	if (res->error == SYNCHUB_HTTP_TIMEOUT || res->error == SYNCHUB_HTTP_CONNECT ||
		(res->error == SYNCHUB_HTTP_OK && st >= 500 && st != 503))
		out->rate_event = SYNCHUB_RATE_FAILURE;
	else if (res->error == SYNCHUB_HTTP_OK && st != 429 && st != 503)
		out->rate_event = SYNCHUB_RATE_SUCCESS;
	if (res->error == SYNCHUB_HTTP_OK && res->headers)
		out->blocked_until = exhausted_until(res->headers);

	switch (res->error)
	{
		case SYNCHUB_HTTP_OK:
			break;
		case SYNCHUB_HTTP_TIMEOUT:
			out->kind = SYNCHUB_RETRY;
			out->error = psprintf("%s: timed out after %ld ms", job->what, job->timeout_ms);
			return;
		case SYNCHUB_HTTP_CONNECT:
			out->kind = SYNCHUB_RETRY;
			out->error = psprintf("%s: connection failed: %s", job->what, res->message);
			return;
		case SYNCHUB_HTTP_TOO_LARGE:
			dead(out, psprintf("%s: response body exceeds synchub.max_response_size (%d kB)",
							   job->what, synchub_max_response_size));
			return;
		case SYNCHUB_HTTP_BLOCKED:
			dead(out, psprintf("%s: address not allowed by synchub.allowed_hosts", job->what));
			return;
		case SYNCHUB_HTTP_OTHER:
			dead(out, psprintf("%s: %s", job->what, res->message));
			return;
	}

	if (st >= 200 && st < 300)
	{
		out->kind = SYNCHUB_SUCCEEDED;
		out->result = synchub_http_job_result(res);
		return;
	}
	if (st == 429 || st == 503)
	{
		double		s = res->headers ? retry_after_seconds(res->headers) : -1;

		if (s >= 0)
		{
			out->kind = SYNCHUB_RESCHEDULE;
			out->delay_s = Min(s, MAX_RESCHEDULE_S);
			out->blocked_until = GetCurrentTimestamp() + (TimestampTz) (out->delay_s * USECS_PER_SEC);
			out->error = psprintf("%s: HTTP %ld, retry after %.0f s", job->what, st, out->delay_s);
			return;
		}
	}
	if (st >= 500 || st == 429)
	{
		if (st == 503)
			out->rate_event = SYNCHUB_RATE_FAILURE;
		out->kind = SYNCHUB_RETRY;
		out->error = psprintf("%s: HTTP %ld%s", job->what, st, trimmed_body(res));
		return;
	}
	dead(out, psprintf("%s: HTTP %ld%s", job->what, st, trimmed_body(res)));
}
