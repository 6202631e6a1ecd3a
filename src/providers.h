/*-------------------------------------------------------------------------
 * providers.h
 *    Provider requests with real credentials, for the sync engine
 *    (src/providers.c).  Planning and parsing themselves are SQL
 *    (sql/install/63_provider_requests.sql).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_PROVIDERS_H
#define SYNCHUB_PROVIDERS_H

#include "postgres.h"

#include "utils/jsonb.h"

/*
 * The next request of a sync run (synchub._provider_next_request) with the
 * integration's credential in place of "[redacted]": {"method", "url",
 * "headers", "body", "timeout_ms", "rate_limit", "request_rate_limit",
 * "auth", "checkpoint"}.  The result holds a secret: never log it, store it
 * or put it in an error.  Must run as a role that may read the integration.
 */
extern Jsonb *providers_next_request(int64 integration_id, const char *mode, Jsonb *checkpoint);

/*
 * The OAuth refresh request of an integration: {"method": "POST", "url",
 * "headers", "body_text"} where body_text is the form-encoded body (it holds
 * the refresh token: never log it).  Errors if the provider has no "oauth"
 * or the credentials hold no refresh_token.
 */
extern Jsonb *providers_refresh_request(int64 integration_id);

/*
 * Store the tokens of a successful (2xx) refresh response body into the
 * integration's credentials: access_token, and refresh_token and
 * expires_at when the response has them.  Returns false (and changes
 * nothing) when the body has no access token.
 */
extern bool providers_refresh_apply(int64 integration_id, Jsonb *response_body);

#endif							/* SYNCHUB_PROVIDERS_H */
