/*-------------------------------------------------------------------------
 * http_job.h
 *    The "http" job kind.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_HTTP_JOB_H
#define SYNCHUB_HTTP_JOB_H

#include "postgres.h"

#include "utils/numeric.h"

#include "http.h"
#include "worker.h"

extern bool synchub_numeric_int64(Numeric n, int64 min, int64 max, int64 *result);
extern bool synchub_http_job_start(SynchubJob *job, SynchubOutcome *out);
extern void synchub_http_job_finish(SynchubJob *job, SynchubHttpResult *res, SynchubOutcome *out);
extern Jsonb *synchub_http_job_result(SynchubHttpResult *res);

#endif							/* SYNCHUB_HTTP_JOB_H */
