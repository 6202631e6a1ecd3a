/*-------------------------------------------------------------------------
 * credentials.h
 *    Encrypted integration credentials (src/credentials.c).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_CREDENTIALS_H
#define SYNCHUB_CREDENTIALS_H

#include "postgres.h"

#include "utils/jsonb.h"

/*
 * The decrypted credentials of an integration (a JSON object), read with the
 * extension owner's rights.  Errors if the integration has none or they do
 * not decrypt.  The result is palloc'd in the current memory context: the
 * caller should keep it short-lived and never log it.
 */
extern Jsonb *credentials_get(int64 integration_id);

/*
 * Encrypt and store (insert or replace) an integration's credentials.  The
 * current user must be a member of the integration's owner role.
 */
extern void credentials_store(int64 integration_id, Jsonb *credentials);

/*
 * Error unless the current user is the extension owner or a superuser: the
 * guard of every SQL function that returns a secret.
 */
extern void credentials_require_owner(void);

#endif							/* SYNCHUB_CREDENTIALS_H */
