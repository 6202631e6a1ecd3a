/*-------------------------------------------------------------------------
 * providers.c
 *    Provider requests with the real credential in place, for the sync
 *    engine: the next page request, the OAuth refresh request, and storing
 *    the tokens a refresh returns.
 *
 * Planning and parsing are plpgsql (sql/install/63_provider_requests.sql):
 * they are driven by the provider spec, a jsonb document, and cost nothing
 * next to an HTTP round trip.  Their SQL results never hold a secret: the
 * credential appears as "[redacted]" and "auth" says where it goes
 * ({"style": bearer | header | query, "name", "credential": [keys]}).
 * This file puts the real value there, in C, so that the secret only
 * exists in the memory of the process that sends the request.  The SQL
 * wrappers at the end return secrets and are for the extension owner only
 * (tests and tools); the worker calls the C functions directly.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

#include "compat.h"
#include "credentials.h"
#include "providers.h"

#define REDACTED "[redacted]"

/* Run a one-row, one-column jsonb query; the result is copied to caller. */
static Jsonb *
query_jsonb(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
			MemoryContext caller)
{
	bool		isnull;
	Datum		d;
	MemoryContext old;
	Jsonb	   *result = NULL;

	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "could not run provider query");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		old = MemoryContextSwitchTo(caller);
		result = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	return result;
}

/* The container of object member key of j (an object), or NULL. */
static JsonbValue *
member(JsonbContainer *c, const char *key)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

static char *
member_text(JsonbContainer *c, const char *key)
{
	JsonbValue *v = member(c, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* The first credential named in auth.credential that the credentials have. */
static char *
find_secret(JsonbContainer *auth, Jsonb *creds)
{
	JsonbValue *names = member(auth, "credential");
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *found = NULL;

	if (names == NULL || names->type != jbvBinary)
		elog(ERROR, "request plan has no credential names");
	it = JsonbIteratorInit(names->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_ELEM || v.type != jbvString || found != NULL)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		found = member_text(&creds->root, name);
		if (found != NULL && found[0] == '\0')
			found = NULL;
	}
	if (found == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the integration's credentials have no usable token"),
				 errhint("The provider reads the first non-empty string among the credentials keys its spec lists in auth.credential.")));
	return found;
}

static void
url_encode(StringInfo out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
			|| c == '-' || c == '.' || c == '_' || c == '~')
			appendStringInfoChar(out, c);
		else
		{
			appendStringInfoChar(out, '%');
			appendStringInfoChar(out, hex[c >> 4]);
			appendStringInfoChar(out, hex[c & 15]);
		}
	}
}

/* jsonb_set(j, {k1[, k2]}, "value") */
static Jsonb *
set_string(Jsonb *j, const char *k1, const char *k2, const char *value)
{
	Datum		path[2];
	JsonbValue	v;
	ArrayType  *arr;

	path[0] = CStringGetTextDatum(k1);
	if (k2)
		path[1] = CStringGetTextDatum(k2);
	arr = construct_array(path, k2 ? 2 : 1, TEXTOID, -1, false, TYPALIGN_INT);
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	return DatumGetJsonbP(DirectFunctionCall4(jsonb_set, JsonbPGetDatum(j), PointerGetDatum(arr),
											  JsonbPGetDatum(JsonbValueToJsonb(&v)), BoolGetDatum(true)));
}

static void
forget_credentials(Jsonb *creds)
{
	explicit_bzero(creds, VARSIZE(creds));
	pfree(creds);
}

Jsonb *
providers_next_request(int64 integration_id, const char *mode, Jsonb *checkpoint)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[3] = {INT8OID, TEXTOID, JSONBOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', checkpoint ? ' ' : 'n'};
	Jsonb	   *req;
	Jsonb	   *creds;
	JsonbValue *auth;
	char	   *style;
	char	   *name;
	char	   *secret;

	values[0] = Int64GetDatum(integration_id);
	values[1] = CStringGetTextDatum(mode);
	values[2] = checkpoint ? JsonbPGetDatum(checkpoint) : (Datum) 0;
	SPI_connect();
	req = query_jsonb("SELECT synchub._provider_next_request($1, $2, $3)", 3, types, values, nulls, caller);
	SPI_finish();

	if (member(&req->root, "done") != NULL)
		return req;				/* an export with nothing left: no request */
	auth = member(&req->root, "auth");
	if (auth == NULL || auth->type != jbvBinary)
		elog(ERROR, "request plan has no auth");
	style = member_text(auth->val.binary.data, "style");
	name = member_text(auth->val.binary.data, "name");
	creds = credentials_get(integration_id);
	secret = find_secret(auth->val.binary.data, creds);
	forget_credentials(creds);

	if (strcmp(style, "query") == 0)
	{
		char	   *url = member_text(&req->root, "url");
		size_t		len = strlen(url);
		size_t		rlen = strlen(REDACTED);
		StringInfoData buf;

		if (len < rlen || strcmp(url + len - rlen, REDACTED) != 0)
			elog(ERROR, "request plan has no credential placeholder in its URL");
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, url, len - rlen);
		url_encode(&buf, secret);
		req = set_string(req, "url", NULL, buf.data);
		explicit_bzero(buf.data, buf.len);
	}
	else
	{
		char	   *value = strcmp(style, "bearer") == 0 ? psprintf("Bearer %s", secret) : pstrdup(secret);

		req = set_string(req, "headers", name, value);
		explicit_bzero(value, strlen(value));
	}
	explicit_bzero(secret, strlen(secret));
	return req;
}

Jsonb *
providers_refresh_request(int64 integration_id)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	Jsonb	   *plan;
	Jsonb	   *creds;
	Jsonb	   *result;
	JsonbValue *params;
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	StringInfoData body;
	char	   *url;

	values[0] = Int64GetDatum(integration_id);
	SPI_connect();
	plan = query_jsonb("SELECT synchub._oauth_plan($1)", 1, types, values, NULL, caller);
	SPI_finish();
	url = member_text(&plan->root, "url");
	params = member(&plan->root, "params");
	if (url == NULL || params == NULL || params->type != jbvBinary)
		elog(ERROR, "refresh plan is incomplete");

	creds = credentials_get(integration_id);
	if (member(&creds->root, "refresh_token") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the integration's credentials have no refresh_token"),
				 errhint("Set credentials with a \"refresh_token\" to let the worker refresh the access token.")));

	/*
	 * Each parameter is a literal or exactly "{key}" of the credentials; a
	 * parameter whose key the credentials lack (client_secret, say) is left
	 * out.
	 */
	initStringInfo(&body);
	it = JsonbIteratorInit(params->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		char	   *val;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || v.type != jbvString)
			continue;
		val = pnstrdup(v.val.string.val, v.val.string.len);
		if (v.val.string.len > 2 && val[0] == '{' && val[v.val.string.len - 1] == '}')
		{
			val[v.val.string.len - 1] = '\0';
			val = member_text(&creds->root, val + 1);
			if (val == NULL)
				continue;
		}
		if (body.len > 0)
			appendStringInfoChar(&body, '&');
		url_encode(&body, key);
		appendStringInfoChar(&body, '=');
		url_encode(&body, val);
		explicit_bzero(val, strlen(val));
	}
	forget_credentials(creds);

	types[0] = TEXTOID;
	values[0] = CStringGetTextDatum(url);
	values[1] = CStringGetTextDatum(body.data);
	SPI_connect();
	result = query_jsonb("SELECT pg_catalog.jsonb_build_object('method', 'POST', 'url', $1,"
						 " 'headers', pg_catalog.jsonb_build_object("
						 "     'Content-Type', 'application/x-www-form-urlencoded', 'Accept', 'application/json'),"
						 " 'body_text', $2)", 2, types, values, NULL, caller);
	SPI_finish();
	explicit_bzero(body.data, body.len);
	return result;
}

bool
providers_refresh_apply(int64 integration_id, Jsonb *response_body)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[3] = {INT8OID, JSONBOID, JSONBOID};
	Datum		values[3];
	Jsonb	   *creds = credentials_get(integration_id);
	Jsonb	   *merged;

	values[0] = Int64GetDatum(integration_id);
	values[1] = JsonbPGetDatum(creds);
	values[2] = JsonbPGetDatum(response_body);
	SPI_connect();
	merged = query_jsonb("SELECT synchub._oauth_merge($1, $2, $3)", 3, types, values, NULL, caller);
	SPI_finish();
	forget_credentials(creds);
	if (merged == NULL)
		return false;
	credentials_store(integration_id, merged);
	forget_credentials(merged);
	return true;
}

/*---- SQL wrappers: extension owner only (they return secrets) ----*/

PG_FUNCTION_INFO_V1(synchub_provider_request);
Datum
synchub_provider_request(PG_FUNCTION_ARGS)
{
	credentials_require_owner();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(providers_next_request(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
											 PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2)));
}

PG_FUNCTION_INFO_V1(synchub_provider_refresh_request);
Datum
synchub_provider_refresh_request(PG_FUNCTION_ARGS)
{
	credentials_require_owner();
	PG_RETURN_JSONB_P(providers_refresh_request(PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(synchub_provider_refresh_apply);
Datum
synchub_provider_refresh_apply(PG_FUNCTION_ARGS)
{
	credentials_require_owner();
	PG_RETURN_BOOL(providers_refresh_apply(PG_GETARG_INT64(0), PG_GETARG_JSONB_P(1)));
}
