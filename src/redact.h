/*-------------------------------------------------------------------------
 * redact.h
 *    URLs made safe for logs and error messages.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_REDACT_H
#define SYNCHUB_REDACT_H

#include "postgres.h"

extern char *synchub_redact_url(const char *url);

#endif							/* SYNCHUB_REDACT_H */
