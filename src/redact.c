/*-------------------------------------------------------------------------
 * redact.c
 *    URLs made safe for logs and error messages: scheme, host, port and
 *    path only.  User info (user:password@), the query string (api_key=...)
 *    and the fragment are dropped, since that is where credentials hide.
 *    Every URL synchub writes to a log, an error or a job row goes
 *    through here.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "redact.h"

char *
synchub_redact_url(const char *url)
{
	StringInfoData out;
	const char *p = url;
	const char *scheme_end = strstr(url, "://");
	const char *auth_end;
	const char *at;
	size_t		n;

	initStringInfo(&out);
	if (scheme_end)
	{
		appendBinaryStringInfo(&out, url, scheme_end - url + 3);
		p = scheme_end + 3;
	}
	/* the authority ends at the first '/', '?' or '#' */
	auth_end = p + strcspn(p, "/?#");
	at = memchr(p, '@', auth_end - p);
	while (at && memchr(at + 1, '@', auth_end - at - 1))
		at = memchr(at + 1, '@', auth_end - at - 1);
	if (at)
		p = at + 1;
	n = strcspn(p, "?#");
	appendBinaryStringInfo(&out, p, n);
	if (p[n] == '?')
		appendStringInfoString(&out, "?[redacted]");
	return out.data;
}
