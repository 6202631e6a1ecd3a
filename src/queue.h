/*-------------------------------------------------------------------------
 * queue.h
 *    The job queue's C entry points (src/queue.c).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_QUEUE_H
#define SYNCHUB_QUEUE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"

#include "executor/spi.h"

/* SPI_prepare + SPI_keepplan with a generic plan; errors on failure. */
extern SPIPlanPtr queue_prepare_saved(const char *sql, int nargs, Oid *argtypes);

/* NOTIFY synchub_jobs for a row of synchub.job_queue or job_history. */
extern void queue_notify_row(HeapTuple tuple, TupleDesc desc);

#endif							/* SYNCHUB_QUEUE_H */
