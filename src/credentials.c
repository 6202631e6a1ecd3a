/*-------------------------------------------------------------------------
 * credentials.c
 *    Integration credentials, encrypted at rest with AES-256-GCM.
 *
 * Format of synchub.integration_credentials.ciphertext:
 *     version (1 byte, 1) | nonce (12 random bytes) | ciphertext | tag (16)
 * The associated data is "synchub:credentials:" followed by the integration
 * id as 8 big-endian bytes, so a ciphertext copied onto another integration
 * fails authentication instead of handing that integration foreign
 * credentials.  The key is row 'credentials_key' of synchub.secrets (32
 * random bytes made at CREATE EXTENSION).
 *
 * Rights: synchub.secrets and synchub.integration_credentials are readable
 * and writable by the extension owner only.  Rather than making the SQL
 * entry points SECURITY DEFINER (which would run all of their plpgsql with
 * the owner's rights), the C code switches to the owner with
 * SetUserIdAndSecContext around exactly the statements that touch those two
 * tables, after checking with the caller's own rights (and row-level
 * security) that the caller may manage the integration.  Those statements
 * are fully schema-qualified, operators included, so a caller's search_path
 * cannot put its own functions under the owner's rights.
 *
 * Secrets never reach a message: a bad credentials value is refused without
 * echoing it, plaintext buffers are zeroed after use, and the only SQL
 * function that returns plaintext refuses every role but the extension
 * owner (and superusers).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "compat.h"
#include "credentials.h"

#define CRED_VERSION	1
#define CRED_KEY_LEN	32
#define CRED_NONCE_LEN	12
#define CRED_TAG_LEN	16
#define CRED_OVERHEAD	(1 + CRED_NONCE_LEN + CRED_TAG_LEN)
#define CRED_MAX_PLAIN	65536
#define CRED_AAD_PREFIX "synchub:credentials:"
#define CRED_AAD_LEN	(sizeof(CRED_AAD_PREFIX) - 1 + 8)

static const char *owner_sql =
"SELECT e.extowner FROM pg_catalog.pg_extension e"
" WHERE e.extname OPERATOR(pg_catalog.=) 'synchub'";

/* The extension owner (the worker) may set any integration's credentials. */
static const char *access_sql =
"SELECT i.name, pg_catalog.pg_has_role(i.owner, 'USAGE')"
"  FROM synchub.integrations i WHERE i.id OPERATOR(pg_catalog.=) $1";

static const char *key_sql =
"SELECT s.value FROM synchub.secrets s"
" WHERE s.name OPERATOR(pg_catalog.=) 'credentials_key'::pg_catalog.text"
" ORDER BY s.created_at LIMIT 1";

static const char *read_sql =
"SELECT c.ciphertext FROM synchub.integration_credentials c"
" WHERE c.integration_id OPERATOR(pg_catalog.=) $1";

static const char *write_sql =
"INSERT INTO synchub.integration_credentials AS c (integration_id, key_id, ciphertext, updated_at)"
" VALUES ($1, 'credentials_key', $2, pg_catalog.now())"
" ON CONFLICT (integration_id) DO UPDATE"
"   SET key_id = excluded.key_id, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at";

/* The extension owner.  Must be called inside SPI_connect. */
static Oid
extension_owner(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute(owner_sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "extension \"synchub\" is not installed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetObjectId(d);
}

/* Copy the credentials key into key[].  Runs as the extension owner. */
static void
read_key(uint8 *key)
{
	bool		isnull;
	Datum		d;
	bytea	   *b;

	if (SPI_execute(key_sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the credentials key is missing"),
				 errdetail("Row \"credentials_key\" of synchub.secrets does not exist.")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	b = isnull ? NULL : DatumGetByteaPP(d);
	if (b == NULL || VARSIZE_ANY_EXHDR(b) != CRED_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the credentials key is not %d bytes long", CRED_KEY_LEN)));
	memcpy(key, VARDATA_ANY(b), CRED_KEY_LEN);
}

static void
make_aad(uint8 *aad, int64 integration_id)
{
	uint64		v = (uint64) integration_id;
	size_t		plen = sizeof(CRED_AAD_PREFIX) - 1;
	int			i;

	memcpy(aad, CRED_AAD_PREFIX, plen);
	for (i = 0; i < 8; i++)
		aad[plen + i] = (uint8) (v >> (56 - 8 * i));
}

static bytea *
encrypt_credentials(const uint8 *key, int64 integration_id, const char *plain, int len)
{
	bytea	   *out = (bytea *) palloc(VARHDRSZ + CRED_OVERHEAD + len);
	uint8	   *p = (uint8 *) VARDATA(out);
	uint8	   *nonce = p + 1;
	uint8	   *body = nonce + CRED_NONCE_LEN;
	uint8		aad[CRED_AAD_LEN];
	EVP_CIPHER_CTX *ctx;
	int			n = 0,
				fin = 0;
	bool		ok;

	SET_VARSIZE(out, VARHDRSZ + CRED_OVERHEAD + len);
	p[0] = CRED_VERSION;
	if (!pg_strong_random(nonce, CRED_NONCE_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	make_aad(aad, integration_id);

	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL
		&& EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRED_NONCE_LEN, NULL) == 1
		&& EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1
		&& EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) sizeof(aad)) == 1
		&& EVP_EncryptUpdate(ctx, body, &n, (const uint8 *) plain, len) == 1
		&& EVP_EncryptFinal_ex(ctx, body + n, &fin) == 1
		&& n + fin == len
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRED_TAG_LEN, body + len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not encrypt credentials")));
	return out;
}

/* Decrypt into a palloc'd, NUL-terminated buffer; false if it does not authenticate. */
static bool
decrypt_credentials(const uint8 *key, int64 integration_id, bytea *ct, char **plain)
{
	int			total = VARSIZE_ANY_EXHDR(ct);
	const uint8 *p = (const uint8 *) VARDATA_ANY(ct);
	int			len = total - CRED_OVERHEAD;
	const uint8 *nonce = p + 1;
	const uint8 *body = nonce + CRED_NONCE_LEN;
	uint8		aad[CRED_AAD_LEN];
	uint8		tag[CRED_TAG_LEN];
	char	   *out;
	EVP_CIPHER_CTX *ctx;
	int			n = 0,
				fin = 0;
	bool		ok;

	if (len < 0 || p[0] != CRED_VERSION)
		return false;
	out = palloc(len + 1);
	memcpy(tag, body + len, CRED_TAG_LEN);
	make_aad(aad, integration_id);

	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL
		&& EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRED_NONCE_LEN, NULL) == 1
		&& EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1
		&& EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) sizeof(aad)) == 1
		&& EVP_DecryptUpdate(ctx, (uint8 *) out, &n, body, len) == 1
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRED_TAG_LEN, tag) == 1
		&& EVP_DecryptFinal_ex(ctx, (uint8 *) out + n, &fin) == 1
		&& n + fin == len;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
	{
		explicit_bzero(out, len + 1);
		pfree(out);
		return false;
	}
	out[len] = '\0';
	*plain = out;
	return true;
}

/*
 * Run fn(arg) as the extension owner, inside SPI, restoring the caller's
 * identity on the way out, error or not.
 */
typedef void (*owner_fn) (void *arg);

static void
as_extension_owner(owner_fn fn, void *arg)
{
	Oid			owner = extension_owner();
	Oid			save_uid;
	int			save_sec;

	GetUserIdAndSecContext(&save_uid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		fn(arg);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_uid, save_sec);
	}
	PG_END_TRY();
}

typedef struct CredentialsOp
{
	int64		integration_id;
	char	   *plain;			/* store: in; get: out (in result_cxt) */
	int			plain_len;
	MemoryContext result_cxt;
} CredentialsOp;

static void
store_as_owner(void *arg)
{
	CredentialsOp *op = (CredentialsOp *) arg;
	uint8		key[CRED_KEY_LEN];
	Oid			types[2] = {INT8OID, BYTEAOID};
	Datum		values[2];

	read_key(key);
	values[0] = Int64GetDatum(op->integration_id);
	values[1] = PointerGetDatum(encrypt_credentials(key, op->integration_id, op->plain, op->plain_len));
	explicit_bzero(key, sizeof(key));
	if (SPI_execute_with_args(write_sql, 2, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store credentials");
}

static void
get_as_owner(void *arg)
{
	CredentialsOp *op = (CredentialsOp *) arg;
	uint8		key[CRED_KEY_LEN];
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	bytea	   *ct;
	MemoryContext old;
	bool		ok;

	values[0] = Int64GetDatum(op->integration_id);
	if (SPI_execute_with_args(read_sql, 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read credentials");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("integration " INT64_FORMAT " has no credentials", op->integration_id)));
	ct = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	read_key(key);
	old = MemoryContextSwitchTo(op->result_cxt);
	ok = decrypt_credentials(key, op->integration_id, ct, &op->plain);
	MemoryContextSwitchTo(old);
	explicit_bzero(key, sizeof(key));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt the credentials of integration " INT64_FORMAT, op->integration_id),
				 errdetail("The stored ciphertext was not made for this integration with this database's key.")));
}

static void store_checked(CredentialsOp *op);

void
credentials_store(int64 integration_id, Jsonb *credentials)
{
	CredentialsOp op;

	if (credentials == NULL || !JB_ROOT_IS_OBJECT(credentials) || JB_ROOT_IS_SCALAR(credentials))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("credentials must be a JSON object"),
				 errdetail("The value is not shown because it may hold secrets.")));

	op.integration_id = integration_id;
	op.plain = JsonbToCString(NULL, &credentials->root, VARSIZE(credentials));
	op.plain_len = strlen(op.plain);
	/* the plaintext is wiped whatever happens, an error included */
	PG_TRY();
	{
		store_checked(&op);
	}
	PG_FINALLY();
	{
		explicit_bzero(op.plain, op.plain_len);
	}
	PG_END_TRY();
	pfree(op.plain);
}

/* credentials_store, its plaintext in op: length, access, then the write. */
static void
store_checked(CredentialsOp *op)
{
	Datum		values[1];
	Oid			types[1] = {INT8OID};
	bool		isnull;
	char	   *name;
	bool		allowed;

	if (op->plain_len > CRED_MAX_PLAIN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("credentials must be at most %d bytes long as JSON text", CRED_MAX_PLAIN)));

	SPI_connect();
	/* With the caller's rights: row-level security hides others' integrations. */
	values[0] = Int64GetDatum(op->integration_id);
	if (SPI_execute_with_args(access_sql, 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up integration " INT64_FORMAT, op->integration_id);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("integration " INT64_FORMAT " does not exist", op->integration_id)));
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	allowed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (!allowed && GetUserId() != extension_owner())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for integration \"%s\"", name),
				 errdetail("Only members of the role that created an integration may set its credentials.")));

	as_extension_owner(store_as_owner, op);
	SPI_finish();
}

Jsonb *
credentials_get(int64 integration_id)
{
	CredentialsOp op;
	Jsonb	   *result;

	op.integration_id = integration_id;
	op.plain = NULL;
	op.result_cxt = CurrentMemoryContext;
	SPI_connect();
	as_extension_owner(get_as_owner, &op);
	SPI_finish();
	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(op.plain)));
	explicit_bzero(op.plain, strlen(op.plain));
	pfree(op.plain);
	return result;
}

PG_FUNCTION_INFO_V1(synchub_credentials_store);
Datum
synchub_credentials_store(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("integration id must not be null")));
	credentials_store(PG_GETARG_INT64(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	PG_RETURN_VOID();
}

void
credentials_require_owner(void)
{
	Oid			owner;

	SPI_connect();
	owner = extension_owner();
	SPI_finish();
	if (GetUserId() != owner && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read integration credentials"),
				 errdetail("Only the owner of extension \"synchub\" may read credentials.")));
}

PG_FUNCTION_INFO_V1(synchub_credentials_get);
Datum
synchub_credentials_get(PG_FUNCTION_ARGS)
{
	credentials_require_owner();
	PG_RETURN_JSONB_P(credentials_get(PG_GETARG_INT64(0)));
}
