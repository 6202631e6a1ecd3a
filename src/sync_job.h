/*-------------------------------------------------------------------------
 * sync_job.h
 *    The job kinds full_import and incremental_sync (src/sync_job.c).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_SYNC_JOB_H
#define SYNCHUB_SYNC_JOB_H

#include "postgres.h"

#include "http.h"
#include "worker.h"

extern bool sync_job_kind(const char *kind);
extern bool sync_job_start(SynchubJob *job, SynchubOutcome *out);
extern void sync_job_response(SynchubJob *job, SynchubHttpResult *res, SynchubOutcome *out);
extern bool sync_job_step(SynchubJob *job, SynchubOutcome *out);

#endif							/* SYNCHUB_SYNC_JOB_H */
