/*-------------------------------------------------------------------------
 * cursor.h
 *    Opaque, signed pagination cursors (cursor.c).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_CURSOR_H
#define SYNCHUB_CURSOR_H

#include "postgres.h"

/* Length of the digest that binds a cursor to relation, order and filter. */
#define CURSOR_BINDING_LEN	8

extern void cursor_binding(const char *description, uint8 *binding);
extern char *cursor_encode(int direction, const uint8 *binding, int nkeys,
						   const Oid *types, const Datum *values,
						   const bool *nulls);
extern int	cursor_decode(const char *cursor, const uint8 *binding, int nkeys,
						  const Oid *types, const int32 *typmods,
						  Datum *values, bool *nulls);

#endif							/* SYNCHUB_CURSOR_H */
