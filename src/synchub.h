/*-------------------------------------------------------------------------
 * synchub.h
 *    Settings and entry points shared by the synchub modules.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_H
#define SYNCHUB_H

#include "postgres.h"

#define SYNCHUB_VERSION "0.1.0"

/* ---- GUC variables (defined in synchub.c) ---- */
extern bool synchub_notify;
extern int	synchub_retry_base_delay;	/* seconds */
extern int	synchub_retry_max_delay;	/* seconds */

#endif							/* SYNCHUB_H */
