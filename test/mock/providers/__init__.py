"""Provider modules of synchub's CRM mock (one per CRM API)."""
